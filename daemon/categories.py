"""An open category set: a label takes the next index the first time the stream names it.

Labels keep their order of appearance, so an index, once given, never changes and the lists of a
key's snapshot only grow at their end. Past ``max_categories`` the ``overflow`` policy decides:
``dead_letter`` refuses the label (index −1; the caller dead-letters the event with reason
``category_limit``), ``other`` folds it into the label ``__other__``, which then holds the last of
the ``max_categories`` places. An integer category is the label of its decimal digits, so the
events ``3`` and ``"3"`` name the same category.

>>> table = CategoryTable(max_categories=4, overflow="other")
>>> table.indices(["b", "a", "b", 7]).tolist()
[0, 1, 0, 2]
>>> table.labels
['b', 'a', '7']
>>> table = CategoryTable(max_categories=3, overflow="other")
>>> table.indices(["b", "a", "c", "d", "a"]).tolist()   # "c" and "d" come too late: __other__
[0, 1, 2, 2, 1]
>>> table.labels, table.folded
(['b', 'a', '__other__'], 2)
>>> strict = CategoryTable(max_categories=2, overflow="dead_letter")
>>> strict.indices(["x", "y", "z"]).tolist(), strict.labels
([0, 1, -1], ['x', 'y'])
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

OTHER = "__other__"


class CategoryTable:
    def __init__(self, max_categories: int, overflow: str = "dead_letter") -> None:
        self.max_categories, self.overflow = max_categories, overflow
        self._index: dict[str, int] = {}
        self.labels: list[str] = []
        self.folded = 0   # events folded into __other__ so far
        self.refused = 0  # events refused (index −1) so far

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def known(self) -> dict[str, int]:
        """Label → index of the labels in the table (the table's own dict: read it, do not change it)."""
        return self._index

    @property
    def full(self) -> bool:
        """Whether a label not yet in the table would be folded or refused."""
        if self.overflow == "dead_letter":
            return len(self.labels) >= self.max_categories
        return len(self.labels) - (OTHER in self._index) >= self.max_categories - 1  # its place is kept

    def index(self, category: str | int) -> int:
        """The index of ``category``, added if new and there is room; −1 when refused."""
        label = label_of(category)
        known = self._index.get(label)
        if known is not None:
            return known
        if not self.full:
            return self._add(label)
        if self.overflow == "dead_letter":
            self.refused += 1
            return -1
        self.folded += 1
        return self._index[OTHER] if OTHER in self._index else self._add(OTHER)

    def refusal(self, category: str | int) -> str:
        """Why ``category`` was refused (index −1): the detail of its ``category_limit`` dead letter."""
        return (f"category {str(category)[:64]!r} is new and the table holds max_categories = "
                f"{self.max_categories} (model.category_overflow = dead_letter)")

    def indices(self, categories: Iterable[str | int]) -> np.ndarray:
        """:meth:`index` of each category, as int64 ``[n]``."""
        return np.fromiter((self.index(category) for category in categories), dtype=np.int64)

    def _add(self, label: str) -> int:
        self._index[label] = len(self.labels)
        self.labels.append(label)
        return self._index[label]

    # -- checkpoint ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"labels": list(self.labels), "folded": self.folded, "refused": self.refused}

    def load_state_dict(self, state: dict) -> None:
        """Restore labels in their order; refuses a table that does not fit ``max_categories``."""
        labels = [str(label) for label in state["labels"]]
        if len(labels) > self.max_categories or len(set(labels)) != len(labels):
            raise ValueError(f"a saved category table of {len(labels)} labels (distinct: {len(set(labels))}) "
                             f"does not fit max_categories = {self.max_categories}")
        self.labels, self._index = labels, {label: i for i, label in enumerate(labels)}
        self.folded, self.refused = int(state.get("folded", 0)), int(state.get("refused", 0))


def label_of(category: str | int) -> str:
    """The label of an event's category: a string as it is, an integer as its decimal digits."""
    if isinstance(category, bool) or not isinstance(category, (str, int)):
        raise TypeError(f"a category is a string or an integer, got {type(category).__name__}")
    return category if isinstance(category, str) else str(category)
