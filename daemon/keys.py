"""Which model row trains which distribution key, with a cap on how many keys are trained.

>>> table = KeyTable(max_keys=2)
>>> table.rows(["a", "b", "a", "c"]).tolist()
[0, 1, 0, -1]
>>> table.names
['a', 'b']
>>> table.remove(["a"]), table.rows(["b", "c"]).tolist()
([0], [0, 1])
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


class KeyTable:
    """Keys in order of first appearance; keys past ``max_keys`` get row −1 (rejected, dead-lettered)."""

    def __init__(self, max_keys: int, names: Sequence[str] = ()) -> None:
        self.max_keys = max_keys
        self.names: list[str] = []
        self._rows: dict[str, int] = {}
        for name in names:
            self._add(name)

    def __len__(self) -> int:
        return len(self.names)

    def rows(self, names: Sequence[str]) -> np.ndarray:
        """Row of each name (new names are added while there is room), −1 where the cap refuses."""
        return np.fromiter((self._rows[n] if n in self._rows else self._add(n) for n in names),
                           dtype=np.int64, count=len(names))

    def remove(self, names: Sequence[str]) -> list[int]:
        """Forget ``names``; returns their former rows. Later keys move up, keeping their order."""
        gone = sorted(self._rows[n] for n in set(names) if n in self._rows)
        self.names = [n for n in self.names if n not in set(names)]
        self._rows = {n: i for i, n in enumerate(self.names)}
        return gone

    def _add(self, name: str) -> int:
        if len(self.names) >= self.max_keys:
            return -1
        self._rows[name] = len(self.names)
        self.names.append(name)
        return self._rows[name]
