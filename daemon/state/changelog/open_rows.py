"""State-topic rows of open categories: a key's state over its own support, and the support's labels.

With open categories (``model.categories = "open"``) a key's row is as wide as its size class
``W`` (:mod:`daemon.learning.supports`). Its value is the packed row of :mod:`.rows` over ``W``
categories, with row format 4 (2 before keys kept their event time) and no label fingerprint,
followed by the key's support::

    row over W categories (format 4, labels 0) | size u32 | label bytes u32[size] | UTF-8 labels

Labels, not indices: every instance numbers categories in its own order of appearance, so the
reader maps a row's labels into its own table (:meth:`OpenRowCodec.localise`), on the event loop
that owns the table; a row whose labels do not fit there (past ``max_categories``) is refused.

>>> import torch
>>> from gumbel_models import GANConfig, GumbelGAN
>>> from gumbel_models.rows import read_rows
>>> from daemon.categories import CategoryTable
>>> model = GumbelGAN(GANConfig(n_categories=8), 1)
>>> model.set_mask(torch.tensor([0]), torch.arange(8)[None] < 2)
>>> rows = KeyRows(np.array([8]), [["teal", "plum"]], {8: read_rows(model, torch.tensor([0]))})
>>> table = CategoryTable(max_categories=10)
>>> codec = OpenRowCodec(table)
>>> decoded = codec.decode(codec.encode(rows, versions=[3]))
>>> decoded.bad, decoded.state.supports, decoded.versions.tolist()
([], [['teal', 'plum']], [3])
>>> table.indices(["sun"]).tolist()                   # this instance met "sun" first
[0]
>>> local, refused = codec.localise(decoded.state)
>>> local.categories[8].tolist(), refused, table.labels
([[1, 2, -1, -1, -1, -1, -1, -1]], [], ['sun', 'teal', 'plum'])
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from ...categories import CategoryTable
from ...learning.key_rows import KeyRows
from .rows import OPEN_ROW_FORMAT, READABLE, DecodedRows, RowLayout, header_problem, row_header, parse_rows

_U32 = np.dtype("<u4")


class OpenRowCodec:
    """Encodes and checks open-category rows; ``table``: this instance's category table."""

    row_format = OPEN_ROW_FORMAT

    def __init__(self, table: CategoryTable, *, value_bytes: int = 4, smallest: int = 8) -> None:
        self.table, self.value_bytes, self.smallest = table, value_bytes, smallest
        self._layouts: dict[int, dict[int, RowLayout]] = {}

    def _layout(self, width: int, row_format: int = OPEN_ROW_FORMAT) -> RowLayout:
        return self._readable(width)[row_format]

    def _readable(self, width: int) -> dict[int, RowLayout]:
        """Format → the layout of rows of ``width`` in that format, for every format read."""
        if width not in self._layouts:
            self._layouts[width] = {f: RowLayout(width, 0, self.value_bytes, f) for f in READABLE[OPEN_ROW_FORMAT]}
        return self._layouts[width]

    def encode(self, rows: KeyRows, versions: Sequence[int]) -> list[bytes]:
        """One value per key of ``rows``, in their order."""
        versions = np.asarray(versions, dtype=np.int64)
        values: list[bytes] = [b""] * len(rows)
        for w, state in rows.states.items():
            at = rows.positions(w)
            for p, value in zip(at.tolist(), self._layout(w).encode(state, versions[at])):
                values[p] = value + _support_bytes(rows.supports[p])
        return values

    def decode(self, values: Sequence[bytes]) -> DecodedRows:
        """Check and parse ``values``; a row that is not a well-formed open row is refused, with why."""
        good, bad, widths, supports, by_width = [], [], [], [], {}
        for i, value in enumerate(values):
            parsed = self._parse(value)
            if isinstance(parsed, str):
                bad.append((i, parsed))
                continue
            width, row_format, labels = parsed
            good.append(i)
            widths.append(width)
            supports.append(labels)
            fixed, formats = by_width.setdefault(width, ([], []))
            fixed.append(value[: self._layout(width, row_format).itemsize])
            formats.append(row_format)
        states, versions = {}, np.zeros(len(good), dtype=np.int64)
        widths = np.asarray(widths, dtype=np.int64)
        for w, (fixed, formats) in by_width.items():
            states[w], versions[widths == w] = parse_rows(self._readable(w), fixed, formats)
        return DecodedRows(KeyRows(widths, supports, states, {}, *_codes(widths, supports)), versions, good, bad)

    @staticmethod
    def select(rows: KeyRows, positions: np.ndarray) -> KeyRows:
        return rows.select(positions)

    def localise(self, rows: KeyRows) -> tuple[KeyRows, list[tuple[int, str]]]:
        """Decoded ``rows`` with their supports as indices of this instance's table (labels new to
        it are added), and the positions refused, with why: labels past ``max_categories``.

        On the event loop, which owns the table: one lookup per distinct label, the rest in NumPy
        (:meth:`decode` found the distinct labels, off the loop).
        """
        lookup = np.append(self.table.indices(rows.vocabulary), -1)  # code −1 (padding) → −1
        found, times = np.unique(lookup[lookup >= 0], return_counts=True)
        shared = found[times > 1]  # several labels folded into one (__other__)
        categories, refused = {}, []
        for w, codes in rows.codes.items():
            local = lookup[codes]
            unfit = ((local < 0) & (codes >= 0)).any(axis=1)
            for index in shared.tolist():  # a key with two of them would have one column twice
                unfit |= (local == index).sum(axis=1) > 1
            categories[w] = local
            refused += [(p, f"its {len(rows.supports[p])} categories do not fit the table (max_categories "
                            f"{self.table.max_categories}, overflow {self.table.overflow})")
                        for p in rows.positions(w)[unfit].tolist()]
        local = replace(rows, categories=categories)
        if not refused:
            return local, []
        refused.sort()
        return local.select(np.setdiff1d(np.arange(len(rows)), [p for p, _ in refused])), refused

    def _parse(self, value: bytes) -> tuple[int, int, list[str]] | str:
        """``(width, row format, support)`` of an open row, or why it is none."""
        problem = header_problem(value, OPEN_ROW_FORMAT, self.value_bytes)
        if problem:
            return problem
        width, _, row_format = row_header(value)
        if width < self.smallest or width & (width - 1):
            return f"width {width}: not a size class (powers of two from {self.smallest})"
        fixed = self._layout(width, row_format).itemsize
        if len(value) < fixed + 4:
            return f"{len(value)} bytes, a row over {width} categories has {fixed} and then its support"
        size = int(np.frombuffer(value, dtype=_U32, count=1, offset=fixed)[0])
        if not 0 < size <= width or len(value) < fixed + 4 * (size + 1):
            return f"a support of {size} categories in a row of width {width}"
        lengths = np.frombuffer(value, dtype=_U32, count=size, offset=fixed + 4).astype(np.int64)
        text = value[fixed + 4 * (size + 1):]
        if int(lengths.sum()) != len(text):
            return f"{len(text)} bytes of labels, the row's lengths say {int(lengths.sum())}"
        try:
            ends = np.cumsum(lengths).tolist()
            labels = [text[a:b].decode("utf-8") for a, b in zip([0] + ends[:-1], ends)]
        except UnicodeDecodeError:
            return "a label that is not UTF-8"
        if len(set(labels)) != size:
            return "a label twice in one support"
        return width, row_format, labels


def _codes(widths: np.ndarray, supports: list[list[str]]) -> tuple[dict[int, np.ndarray], list[str]]:
    """Each width's supports as ``[a_W, W]`` codes (−1 padded) into the distinct labels, in order met."""
    vocabulary: dict[str, int] = {}
    codes = {}
    for w in np.unique(widths).tolist():
        at = np.flatnonzero(widths == w)
        table = np.full((len(at), w), -1, dtype=np.int64)
        for j, p in enumerate(at.tolist()):
            labels = supports[p]
            table[j, : len(labels)] = [vocabulary.setdefault(label, len(vocabulary)) for label in labels]
        codes[w] = table
    return codes, list(vocabulary)


def _support_bytes(labels: list[str]) -> bytes:
    encoded = [label.encode("utf-8") for label in labels]
    return (np.array([len(labels)] + [len(b) for b in encoded], dtype=_U32).tobytes() + b"".join(encoded))

