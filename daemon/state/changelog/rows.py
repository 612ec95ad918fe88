"""The state topic's record value: one key's whole learning state, a fixed header + NumPy bytes.

No pickle: a row is a packed little-endian record whose layout follows from its header alone, so
any reader (another version of gumbeld, another language) can check and parse it without running
code. For ``K`` categories and ``V``-byte values (4: float32, 8: float64), in order::

    magic "GBRW" | format u16 | V u8 | 0 u8 | K u32 | labels u32 | version i64 | events i64
    newest i64                                                      the key's newest event time (ms)
    counts f64[K] | window f64[K]                                   histogram, change window
    logits, average fV[K] | mask u8[K] | d_params fV[K+1]           generator, discriminator
    g_exp_avg, g_exp_avg_sq fV[K] | g_steps fV                      generator Adam
    d_exp_avg, d_exp_avg_sq fV[K+1] | d_steps fV                    discriminator Adam

``labels`` is the CRC-32 of the category labels (the label table's version: a row is only read by
a model over the same categories), ``version`` the key's snapshot version. The fields are those of
:mod:`gumbel_models.rows`. Rows are encoded and decoded many at a time, as one structured array.
Rows are written in format 3 (fixed categories; 4: open, :mod:`.open_rows`); rows of formats 1 and
2, written before keys kept their event time, are read too, without a newest time.

>>> import torch
>>> from gumbel_models import GANConfig, GumbelGAN
>>> from gumbel_models.rows import read_rows
>>> model = GumbelGAN(GANConfig(n_categories=3), 2)
>>> model.observe(torch.tensor([[3., 1., 0.], [0., 2., 2.]]))
>>> codec = RowCodec(["a", "b", "c"], value_bytes=4)
>>> rows = KeyRows(np.array([3, 3]), [["a", "b", "c"]] * 2, {3: read_rows(model, torch.arange(2))})
>>> values = codec.encode(rows, versions=[7, 1])
>>> len(values), len(values[0]) == codec.itemsize
(2, True)
>>> decoded = codec.decode(values)
>>> decoded.versions.tolist(), decoded.state.states[3]["counts"].tolist(), decoded.bad
([7, 1], [[3.0, 1.0, 0.0], [0.0, 2.0, 2.0]], [])
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from gumbel_models.histogram import NO_TIME
from gumbel_models.rows import ROW_FIELDS

from ...learning.key_rows import KeyRows

MAGIC = b"GBRW"
ROW_FORMAT = 3
OPEN_ROW_FORMAT = 4  # open categories: the row over the key's width, then its support (see .open_rows)
READABLE = {ROW_FORMAT: (1, 3), OPEN_ROW_FORMAT: (2, 4)}  # what each writer's readers accept
UNTIMED = (1, 2)  # formats without the newest event time
_FORMATS = {1: "fixed categories", 2: "open categories", 3: "fixed categories", 4: "open categories"}
_HEADER = [("magic", "S4"), ("format", "<u2"), ("value_bytes", "u1"), ("reserved", "u1"), ("k", "<u4"),
           ("labels", "<u4"), ("version", "<i8"), ("events", "<i8"), ("newest", "<i8")]
_PREFIX = np.dtype(_HEADER[:6])  # what identifies the layout: enough to explain a refusal
ENCODE_ROWS = 4096  # rows packed per NumPy call (~3 MB at K = 16)


def labels_fingerprint(labels: Sequence[str]) -> int:
    """CRC-32 of the category labels, in order: rows of another label table are refused."""
    return zlib.crc32("\x1f".join(labels).encode())


def row_dtype(k: int, value_bytes: int, row_format: int = ROW_FORMAT) -> np.dtype:
    """The packed layout of one row of ``row_format`` over ``k`` categories with ``value_bytes``-byte values."""
    f = f"<f{value_bytes}"
    return np.dtype((_HEADER[:-1] if row_format in UNTIMED else _HEADER) + [
        ("counts", "<f8", (k,)), ("window", "<f8", (k,)), ("logits", f, (k,)), ("average", f, (k,)),
        ("mask", "u1", (k,)), ("d_params", f, (k + 1,)), ("g_exp_avg", f, (k,)), ("g_exp_avg_sq", f, (k,)),
        ("g_steps", f, (1,)), ("d_exp_avg", f, (k + 1,)), ("d_exp_avg_sq", f, (k + 1,)), ("d_steps", f, (1,))])


@dataclass
class DecodedRows:
    state: KeyRows                   # the good rows, each over its support
    versions: np.ndarray             # [A] snapshot versions
    good: list[int]                  # positions (in the values given) of the rows decoded
    bad: list[tuple[int, str]]       # (position, why) of the rows refused


class RowLayout:
    """The packed rows over ``k`` categories of one label table (``fingerprint``) and row format."""

    def __init__(self, k: int, fingerprint: int, value_bytes: int, row_format: int = ROW_FORMAT) -> None:
        if value_bytes not in (4, 8):
            raise ValueError(f"value_bytes must be 4 or 8, got {value_bytes}")
        self.k, self.fingerprint, self.value_bytes, self.row_format = k, fingerprint, value_bytes, row_format
        self.dtype = row_dtype(k, value_bytes, row_format)
        self.itemsize = self.dtype.itemsize

    def encode(self, state: dict[str, torch.Tensor], versions: Sequence[int]) -> list[bytes]:
        """One value per row of ``state`` (``[A, …]`` per field, as ``read_rows`` returns).

        Packed :data:`ENCODE_ROWS` rows at a time: NumPy holds the interpreter lock while it packs,
        and packing 100,000 rows in one go held it ~0.2 s, stalling the event loop for as long.
        """
        n, size = len(versions), self.itemsize
        versions = np.asarray(versions, dtype=np.int64)
        fields = {}
        for field in ROW_FIELDS:
            if field not in self.dtype.names:  # an older format's layout (tests write such rows)
                continue
            value = state[field].detach()
            fields[field] = (value.float() if value.dtype == torch.bfloat16 else value).cpu().numpy()
        values: list[bytes] = []
        for start in range(0, n, ENCODE_ROWS):
            stop = min(n, start + ENCODE_ROWS)
            rows = np.zeros(stop - start, dtype=self.dtype)
            rows["magic"], rows["format"], rows["value_bytes"] = MAGIC, self.row_format, self.value_bytes
            rows["k"], rows["labels"], rows["version"] = self.k, self.fingerprint, versions[start:stop]
            for field, value in fields.items():
                rows[field] = value[start:stop].reshape(rows[field].shape)
            data = rows.tobytes()
            values += [data[i * size:(i + 1) * size] for i in range(stop - start)]
        return values

    def parse(self, values: Sequence[bytes]) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        """The state and versions of ``values``, rows of this layout already checked."""
        rows = np.frombuffer(b"".join(values), dtype=self.dtype)
        timed = self.row_format not in UNTIMED
        state = {field: torch.from_numpy(rows[field].copy()) for field in ROW_FIELDS if timed or field != "newest"}
        state["events"] = state["events"].reshape(-1)
        if not timed:
            state["newest"] = torch.full_like(state["events"], NO_TIME)
        state["mask"] = state["mask"].bool()
        return state, rows["version"].copy()


def parse_rows(layouts: dict[int, RowLayout], values: Sequence[bytes],
               formats: Sequence[int]) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """The state and versions of ``values`` (checked rows, each of the format in ``formats``, parsed
    by its layout in ``layouts``), in their order."""
    formats = np.asarray(formats, dtype=np.int64)
    if len(set(formats.tolist())) <= 1:  # the usual case: one format, no reordering
        return layouts[int(formats[0]) if len(formats) else max(layouts)].parse(values)
    parts = {f: layouts[f].parse([v for v, g in zip(values, formats.tolist()) if g == f])
             for f in np.unique(formats).tolist()}
    order = np.argsort(np.concatenate([np.flatnonzero(formats == f) for f in parts]), kind="stable")
    index = torch.from_numpy(order)
    state = {field: torch.cat([part[0][field] for part in parts.values()]).index_select(0, index)
             for field in ROW_FIELDS}
    return state, np.concatenate([part[1] for part in parts.values()])[order]


def header_problem(value: bytes, row_format: int, value_bytes: int) -> str | None:
    """What makes ``value`` no row that a reader of ``row_format`` (with ``value_bytes``-byte values)
    reads, if anything: :data:`READABLE` gives the formats it accepts."""
    if len(value) < _PREFIX.itemsize:
        return f"{len(value)} bytes: too short for a state row"
    head = np.frombuffer(value[:_PREFIX.itemsize], dtype=_PREFIX)[0]
    if bytes(head["magic"]) != MAGIC:
        return "not a state row (bad magic)"
    if int(head["format"]) not in READABLE[row_format]:
        return (f"row format {int(head['format'])} ({_FORMATS.get(int(head['format']), 'unknown')}), "
                f"this model reads {row_format} ({_FORMATS[row_format]})")
    if int(head["value_bytes"]) != value_bytes:  # model.dtype changed since it was written
        return f"{int(head['value_bytes'])}-byte values, this model stores {value_bytes}-byte ones"
    return None


def row_header(value: bytes) -> tuple[int, int, int]:
    """``(K, labels fingerprint, row format)`` of a row whose header passed :func:`header_problem`."""
    head = np.frombuffer(value[:_PREFIX.itemsize], dtype=_PREFIX)[0]
    return int(head["k"]), int(head["labels"]), int(head["format"])


class RowCodec:
    """Encodes and checks the rows of fixed categories (every key over the whole ``labels`` table);
    ``value_bytes`` 4 (float32) or 8 (float64)."""

    row_format = ROW_FORMAT

    def __init__(self, labels: Sequence[str], *, value_bytes: int = 4) -> None:
        self.layouts = {f: RowLayout(len(labels), labels_fingerprint(labels), value_bytes, f)
                        for f in READABLE[ROW_FORMAT]}
        self.layout = self.layouts[ROW_FORMAT]
        self.k, self.value_bytes, self.labels = self.layout.k, value_bytes, self.layout.fingerprint
        self.itemsize = self.layout.itemsize
        self._support = list(labels)

    def encode(self, rows: KeyRows, versions: Sequence[int]) -> list[bytes]:
        """One value per key of ``rows``, in their order."""
        return self.layout.encode(rows.states[self.k], versions) if len(rows) else []

    def decode(self, values: Sequence[bytes]) -> DecodedRows:
        """Check and parse ``values``; rows of another layout or label table are refused, each with why."""
        good, bad, formats = [], [], []
        for i, value in enumerate(values):
            problem = self._problem(value)
            if problem:
                bad.append((i, problem))
            else:
                good.append(i)
                formats.append(row_header(value)[2])
        state, versions = parse_rows(self.layouts, [values[i] for i in good], formats)
        n = len(good)
        rows = KeyRows(np.full(n, self.k), [self._support] * n, {self.k: state},
                       {self.k: np.broadcast_to(np.arange(self.k), (n, self.k))})
        return DecodedRows(rows, versions, good, bad)

    @staticmethod
    def select(rows: KeyRows, positions: np.ndarray) -> KeyRows:
        """The rows at ``positions``, in that order."""
        return rows.select(positions)

    def localise(self, rows: KeyRows) -> tuple[KeyRows, list[tuple[int, str]]]:
        """Fixed categories mean the same everywhere: every row fits as it is."""
        return rows, []

    def _problem(self, value: bytes) -> str | None:
        problem = header_problem(value, ROW_FORMAT, self.value_bytes)
        if problem:
            return problem
        k, fingerprint, row_format = row_header(value)
        if k != self.k or fingerprint != self.labels:
            return f"written for other categories ({k} labels, fingerprint {fingerprint:08x})"
        size = self.layouts[row_format].itemsize
        if len(value) != size:
            return f"{len(value)} bytes, a row of format {row_format} over {self.k} categories has {size}"
        return None
