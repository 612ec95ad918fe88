"""Per-key supports: which categories each key has seen, and where in the size classes its row lives.

A key's support is the list of global category indices (:mod:`daemon.categories`) it has seen,
in the order they reached it; column ``j`` of its row is ``support[j]``. The key lives in the
class of width ``W = size_class(len(support))`` (:mod:`gumbel_models.size_classes`), at a row of
that class. :meth:`Supports.place` turns counted cells ``(key row, category, count)`` into
per-class cells ``(class row, column, count)``: a category new to a key takes the next column, and
a key whose support outgrows its width moves to a wider class — the caller moves its state
(:class:`Move`) before counting. Every step is batched (NumPy): no loop over keys.

Within one call a key's new categories are added in the order of their global indices, which is
the order the stream first named them.

>>> supports = Supports(smallest=2)
>>> placed = supports.place(np.array([0, 0, 1]), np.array([5, 9, 5]), np.array([2.0, 1.0, 4.0]))
>>> [(w, c.rows.tolist(), c.columns.tolist()) for w, c in placed.cells.items()]
[(2, [0, 0, 1], [0, 1, 0])]
>>> placed = supports.place(np.array([0]), np.array([3]), np.array([1.0]))   # a third category: wider
>>> [(m.width, m.rows.tolist(), m.new_width, m.new_rows.tolist()) for m in placed.moves]
[(2, [0], 4, [0])]
>>> supports.support(0).tolist(), supports.support(1).tolist()
([5, 9, 3], [5])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

CELLS_PER_LOOKUP = 1 << 22  # cells × width compared at once when finding columns: bounds the memory


@dataclass(frozen=True)
class ClassCells:
    rows: np.ndarray       # int64 [n] class rows
    columns: np.ndarray    # int64 [n] columns in those rows
    counts: np.ndarray     # float64 [n]


@dataclass(frozen=True)
class Move:
    """Keys whose rows move from class ``width`` to class ``new_width`` (same order)."""
    width: int
    rows: np.ndarray
    new_width: int
    new_rows: np.ndarray


@dataclass(frozen=True)
class Placement:
    moves: list[Move]                   # apply first: the cells below are at the new rows
    grown: dict[int, np.ndarray]        # width → class rows whose support grew (unmask their new columns)
    cells: dict[int, ClassCells]        # width → the counted cells


class _SizeClass:
    """The rows of one width: each row's support (−1 padded) and size, and the key row owning it."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.categories = np.full((0, width), -1, dtype=np.int64)
        self.size = np.zeros(0, dtype=np.int64)
        self.owner = np.full(0, -1, dtype=np.int64)
        self.free: list[int] = []

    def allocate(self, owners: np.ndarray) -> np.ndarray:
        reused = [self.free.pop() for _ in range(min(len(self.free), len(owners)))]
        start, extra = len(self.owner), len(owners) - len(reused)
        if extra:
            room = max(extra, len(self.owner) // 2)  # grow by half: copying every row is O(rows)
            self.categories = np.concatenate([self.categories, np.full((room, self.width), -1, dtype=np.int64)])
            self.size = np.concatenate([self.size, np.zeros(room, dtype=np.int64)])
            self.owner = np.concatenate([self.owner, np.full(room, -1, dtype=np.int64)])
            self.free.extend(range(start + room - 1, start + extra - 1, -1))
        rows = np.asarray(reused + list(range(start, start + extra)), dtype=np.int64)
        self.owner[rows] = owners
        return rows

    def catalogue_indices(self, rows: torch.Tensor) -> torch.Tensor:
        """``[len(rows), width]`` the categories of ``rows``' columns, −1 where unused (also past the
        rows allocated): :class:`gumbel_models.target.KeyColumns`, for a pooled prior."""
        rows = rows.cpu().numpy()
        inside = rows < len(self.categories)
        indices = np.full((len(rows), self.width), -1, dtype=np.int64)
        indices[inside] = self.categories[rows[inside]]
        return torch.from_numpy(indices)

    def labels_of(self, rows: np.ndarray, labels: np.ndarray) -> list[list[str]]:
        """The support of each of ``rows`` as labels, in column order."""
        return [labels[c[:n]].tolist() for c, n in zip(self.categories[rows], self.size[rows].tolist())]

    def release(self, rows: np.ndarray) -> None:
        self.categories[rows], self.size[rows], self.owner[rows] = -1, 0, -1
        self.free.extend(rows.tolist())

    def state_dict(self) -> dict:
        return {"width": self.width, "categories": torch.from_numpy(self.categories.copy()),
                "size": torch.from_numpy(self.size.copy()), "owner": torch.from_numpy(self.owner.copy()),
                "free": list(self.free)}

    @classmethod
    def from_state(cls, state: dict) -> "_SizeClass":
        self = cls(int(state["width"]))
        self.categories = _array(state["categories"]).reshape(-1, self.width)
        self.size, self.owner = _array(state["size"]), _array(state["owner"])
        self.free = [int(r) for r in state["free"]]
        if not (len(self.size) == len(self.owner) == self.categories.shape[0]) or (self.size > self.width).any():
            raise ValueError(f"a saved size class of width {self.width} is inconsistent")
        return self


class Supports:
    def __init__(self, smallest: int = 8) -> None:
        self.smallest = smallest
        self.width = np.zeros(0, dtype=np.int64)       # [key rows] class width; 0: no events yet
        self.row = np.full(0, -1, dtype=np.int64)      # [key rows] row in that class
        self.classes: dict[int, _SizeClass] = {}

    def support(self, key_row: int) -> np.ndarray:
        """The global categories of ``key_row``, in column order."""
        if key_row >= len(self.width) or self.width[key_row] == 0:
            return np.zeros(0, dtype=np.int64)
        c = self.classes[int(self.width[key_row])]
        r = self.row[key_row]
        return c.categories[r, : c.size[r]].copy()

    # -- placing counted cells ----------------------------------------------------------------
    def place(self, key_rows: np.ndarray, categories: np.ndarray, counts: np.ndarray) -> Placement:
        """Distinct cells ``(key_rows[i], categories[i])`` with ``counts[i]`` events, sorted by key row then category."""
        self._grow(int(key_rows.max()) + 1 if len(key_rows) else 0)
        columns = self._columns(key_rows, categories)
        new = columns < 0
        moves, grown = self._add(key_rows[new], categories[new]) if new.any() else ([], {})
        columns[new] = self._columns(key_rows[new], categories[new])
        cells = {}
        widths = self.width[key_rows]
        for w in np.unique(widths).tolist():
            of = widths == w
            cells[w] = ClassCells(self.row[key_rows[of]], columns[of], counts[of].astype(np.float64))
        return Placement(moves, grown, cells)

    def _columns(self, key_rows: np.ndarray, categories: np.ndarray) -> np.ndarray:
        """Column of each cell in its key's row, −1 where the key has not seen the category."""
        columns = np.full(len(key_rows), -1, dtype=np.int64)
        widths = self.width[key_rows]
        for w in np.unique(widths[widths > 0]).tolist():
            at = np.flatnonzero(widths == w)
            table, step = self.classes[w].categories, max(1, CELLS_PER_LOOKUP // w)
            for s in range(0, len(at), step):
                part = at[s:s + step]
                hit = table[self.row[key_rows[part]]] == categories[part, None]   # [n, W]
                found = hit.any(axis=1)
                columns[part[found]] = hit[found].argmax(axis=1)
        return columns

    def _add(self, key_rows: np.ndarray, categories: np.ndarray) -> tuple[list[Move], dict[int, np.ndarray]]:
        """Append new categories to their keys' supports, moving keys that outgrow their class."""
        keys, first, added = np.unique(key_rows, return_index=True, return_counts=True)
        old_width = self.width[keys]
        old_size = np.zeros(len(keys), dtype=np.int64)
        placed = old_width > 0
        for w in np.unique(old_width[placed]).tolist():
            of = old_width == w
            old_size[of] = self.classes[w].size[self.row[keys[of]]]
        new_size = old_size + added
        # gumbel_models.size_classes.size_class, for many keys at once
        new_width = np.maximum(self.smallest, 1 << np.ceil(np.log2(new_size)).astype(np.int64))
        moves = self._move(keys, old_width, new_width)
        # the rank of each new cell among its key's new cells: its column past the old support
        rank = np.arange(len(key_rows)) - np.repeat(first, added)
        column = np.repeat(old_size, added) + rank
        grown = {}
        for w in np.unique(new_width).tolist():
            of = new_width == w
            c, rows = self.classes[w], self.row[keys[of]]
            cell_of = np.repeat(of, added)
            c.categories[np.repeat(rows, added[of]), column[cell_of]] = categories[cell_of]
            c.size[rows] = new_size[of]
            grown[w] = rows
        return moves, grown

    def _move(self, keys: np.ndarray, old_width: np.ndarray, new_width: np.ndarray) -> list[Move]:
        moves = []
        for w in np.unique(new_width).tolist():
            target = self.classes.setdefault(w, _SizeClass(w))
            for v in np.unique(old_width[new_width == w]).tolist():
                if v == w:
                    continue
                of = (new_width == w) & (old_width == v)
                movers = keys[of]
                rows = target.allocate(movers)
                if v > 0:
                    source, old_rows = self.classes[v], self.row[movers]
                    target.categories[rows, :v] = source.categories[old_rows]
                    target.size[rows] = source.size[old_rows]
                    source.release(old_rows)
                    moves.append(Move(v, old_rows, w, rows))
                self.width[movers], self.row[movers] = w, rows
        return moves

    def restore(self, key_rows: np.ndarray, width: int, categories: np.ndarray) -> np.ndarray:
        """Place keys restored elsewhere (a state topic): ``categories`` ``[n, width]``, −1 padded;
        returns their class rows. Keys placed already are released first (see :meth:`release`)."""
        key_rows = np.asarray(key_rows, dtype=np.int64)
        self._grow(int(key_rows.max()) + 1 if len(key_rows) else 0)
        target = self.classes.setdefault(width, _SizeClass(width))
        rows = target.allocate(key_rows)
        target.categories[rows] = categories
        target.size[rows] = (categories >= 0).sum(axis=1)
        self.width[key_rows], self.row[key_rows] = width, rows
        return rows

    # -- keys leaving -------------------------------------------------------------------------
    def release(self, key_rows) -> dict[int, np.ndarray]:
        """Free the rows of ``key_rows`` (evicted keys); returns width → class rows to reset."""
        key_rows = np.asarray(key_rows, dtype=np.int64)
        key_rows = key_rows[(key_rows < len(self.width))]
        key_rows = key_rows[self.width[key_rows] > 0]
        freed = {}
        for w in np.unique(self.width[key_rows]).tolist():
            of = key_rows[self.width[key_rows] == w]
            rows = self.row[of]
            self.classes[w].release(rows)
            freed[w] = rows
        self.width[key_rows], self.row[key_rows] = 0, -1
        return freed

    def _grow(self, n: int) -> None:
        if n > len(self.width):
            extra = max(n, 2 * len(self.width)) - len(self.width)
            self.width = np.concatenate([self.width, np.zeros(extra, dtype=np.int64)])
            self.row = np.concatenate([self.row, np.full(extra, -1, dtype=np.int64)])

    # -- checkpoint ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Tensors and lists (what a checkpoint holds)."""
        return {"smallest": self.smallest, "width": torch.from_numpy(self.width.copy()),
                "row": torch.from_numpy(self.row.copy()), "classes": [c.state_dict() for c in self.classes.values()]}

    def load_state_dict(self, state: dict) -> None:
        self.smallest = int(state["smallest"])
        self.width, self.row = _array(state["width"]), _array(state["row"])
        self.classes = {int(c["width"]): _SizeClass.from_state(c) for c in state["classes"]}


def _array(value) -> np.ndarray:
    """A saved tensor (or array) as a writable int64 array of its own."""
    return np.array(value.numpy() if isinstance(value, torch.Tensor) else value, dtype=np.int64)
