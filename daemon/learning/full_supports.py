"""Supports of fixed categories: every key's support is the whole table, in the table's order.

The same interface as :class:`~daemon.learning.supports.Supports`, for ``model.categories`` given
up front: one size class, as wide as the table; column ``j`` of every row is category ``j``; and a
key's row in that class is its own key row, so nothing is looked up, placed or moved.

>>> supports = FullSupports(3)
>>> placed = supports.place(np.array([0, 2]), np.array([1, 0]), np.array([4.0, 1.0]))
>>> [(w, c.rows.tolist(), c.columns.tolist()) for w, c in placed.cells.items()], placed.moves
([(3, [0, 2], [1, 0])], [])
>>> supports.support(2).tolist(), supports.classes[3].owner.tolist()
([0, 1, 2], [0, 1, 2])
"""
from __future__ import annotations

import numpy as np

from .supports import ClassCells, Placement


class _WholeTable:
    """The one size class: its rows are the key rows, each over every category."""

    def __init__(self, width: int) -> None:
        self.width, self.rows = width, 0
        self._columns = np.arange(width, dtype=np.int64)

    @property
    def owner(self) -> np.ndarray:
        return np.arange(self.rows, dtype=np.int64)

    @property
    def size(self) -> np.ndarray:
        return np.full(self.rows, self.width, dtype=np.int64)

    @property
    def categories(self) -> np.ndarray:
        """``[rows, width]``, a read-only view: every row is ``0 … width − 1``."""
        return np.broadcast_to(self._columns, (self.rows, self.width))

    def labels_of(self, rows: np.ndarray, labels: np.ndarray) -> list[list[str]]:
        """The labels of each of ``rows``, in column order: one list, shared."""
        shared = labels[: self.width].tolist()
        return [shared] * len(rows)


class FullSupports:
    def __init__(self, width: int) -> None:
        self.smallest = width
        self.classes = {width: _WholeTable(width)}
        self._whole = self.classes[width]

    @property
    def width(self) -> np.ndarray:
        """``[key rows]`` the class width of each (every one the table's)."""
        return np.full(self._whole.rows, self._whole.width, dtype=np.int64)

    @property
    def row(self) -> np.ndarray:
        return self._whole.owner

    def support(self, key_row: int) -> np.ndarray:
        return self._whole._columns.copy()

    def place(self, key_rows: np.ndarray, categories: np.ndarray, counts: np.ndarray) -> Placement:
        """The cells at their key rows, each in the column of its category."""
        self._grow(int(key_rows.max()) + 1 if len(key_rows) else 0)
        cells = ClassCells(key_rows, categories, counts.astype(np.float64))
        return Placement([], {}, {self._whole.width: cells} if len(key_rows) else {})

    def restore(self, key_rows: np.ndarray, width: int, categories: np.ndarray) -> np.ndarray:
        """Keys restored elsewhere: their rows are their key rows."""
        key_rows = np.asarray(key_rows, dtype=np.int64)
        self._grow(int(key_rows.max()) + 1 if len(key_rows) else 0)
        return key_rows

    def release(self, key_rows) -> dict[int, np.ndarray]:
        """The rows of keys that left, to reset (they stay: the next key of that key row takes them)."""
        key_rows = np.asarray(key_rows, dtype=np.int64)
        key_rows = key_rows[key_rows < self._whole.rows]
        return {self._whole.width: key_rows} if len(key_rows) else {}

    def _grow(self, n: int) -> None:
        self._whole.rows = max(self._whole.rows, n)

    def state_dict(self) -> dict:
        return {"whole_table": self._whole.width, "rows": self._whole.rows}

    def load_state_dict(self, state: dict) -> None:
        if state.get("whole_table") != self._whole.width:
            raise ValueError("the checkpoint's categories are not this configuration's fixed categories")
        self._whole.rows = int(state["rows"])
