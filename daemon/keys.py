"""Which model row trains which distribution key; keys leave by eviction and their rows are reused.

Keys are kept in order of their last event (:meth:`KeyTable.rows` moves them), so the least recently seen key and the
keys idle past a TTL are found at the front in O(1) each. Past ``max_keys`` a new key either
evicts the least recently seen one and takes its row (``evict_least_recent``) or is refused
(``dead_letter``: row −1). A freed row is reused by the next new key; the caller resets the
model's state of every row in :meth:`take_freed` before counting events into it.

>>> table = KeyTable(max_keys=2, policy="evict_least_recent")
>>> table.rows(["a", "b"], now=1.0).tolist()
[0, 1]
>>> table.rows(["a", "c"], now=2.0).tolist()        # "b" is the least recent: "c" takes its row
[0, 1]
>>> table.take_evicted(), table.take_freed()
([('b', 'max_keys')], [1])
>>> table.expire(now=10.0, ttl=5.0), table.names_by_row
(['a', 'c'], [None, None])
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np

from .arrays import grown

POLICIES = ("evict_least_recent", "dead_letter")


class KeyTable:
    def __init__(self, max_keys: int, policy: str = "evict_least_recent") -> None:
        if policy not in POLICIES:
            raise ValueError(f"key policy must be one of {POLICIES}, got {policy!r}")
        self.max_keys, self.policy = max_keys, policy
        self.names_by_row: list[str | None] = []      # None: a free row
        self.last_seen = np.zeros(0, dtype=np.float64)  # per row, clock seconds of its key's last event
        self.live = np.zeros(0, dtype=bool)              # per row, whether a key holds it
        self._recent: OrderedDict[str, int] = OrderedDict()  # name → row, least recently seen first
        self._free: list[int] = []
        self._freed: list[int] = []                   # freed since take_freed, for the model to reset
        self._evicted: list[tuple[str, str]] = []     # (name, reason) since take_evicted
        self.on_free = lambda row, name: None         # told of every freed row, as it is freed
        self._unstamped = False                       # some last_seen are NaN (restored without them)

    def __len__(self) -> int:
        return len(self._recent)

    def __contains__(self, name: str) -> bool:
        return name in self._recent

    @property
    def names(self) -> list[str]:
        """The keys, in row order."""
        return [name for name in self.names_by_row if name is not None]

    @property
    def n_rows(self) -> int:
        return len(self.names_by_row)

    def row(self, name: str) -> int | None:
        return self._recent.get(name)

    def rows(self, names: Sequence[str], now: float) -> np.ndarray:
        """Row of each name, seen at ``now``: known keys move to the back, new keys get a row, −1 if refused."""
        out = np.empty(len(names), dtype=np.int64)
        recent, evictions = self._recent, len(self._evicted)
        for i, name in enumerate(names):
            row = recent.get(name)
            if row is None:
                row = self._add(name)
            else:
                recent.move_to_end(name)
            out[i] = row
        if len(self._evicted) > evictions:  # more new keys than max_keys: one evicted another of this call
            out = np.array([row if row >= 0 and self.names_by_row[row] == name else -1
                            for row, name in zip(out.tolist(), names)], dtype=np.int64)
        seen = out[out >= 0]
        self.last_seen[seen] = now
        return out

    def expire(self, now: float, ttl: float) -> list[str]:
        """Evict every key without events for more than ``ttl`` seconds; returns their names."""
        if self._unstamped:  # keys restored without last-seen times count as seen now
            self.last_seen[np.isnan(self.last_seen)] = now
            self._unstamped = False
        gone = []
        cutoff = now - ttl
        for name, row in self._recent.items():
            if self.last_seen[row] >= cutoff:
                break
            gone.append(name)
        self.remove(gone, reason="ttl")
        return gone

    def remove(self, names: Sequence[str], reason: str | None = None) -> list[int]:
        """Forget ``names`` (unknown ones are ignored) and free their rows; returns the rows.

        With a ``reason`` the removal is an eviction that subscribers are told of (:meth:`take_evicted`).
        """
        rows = []
        for name in names:
            row = self._recent.pop(name, None)
            if row is None:
                continue
            self.names_by_row[row] = None
            self.live[row] = False
            self._free.append(row)
            self._freed.append(row)
            self.on_free(row, name)
            rows.append(row)
            if reason is not None:
                self._evicted.append((name, reason))
        return rows

    def peek_freed(self) -> list[int]:
        return list(self._freed)

    def take_freed(self) -> list[int]:
        """Rows freed since the last call, whose model state must be reset before reuse."""
        freed, self._freed = self._freed, []
        return freed

    def peek_evicted(self) -> list[tuple[str, str]]:
        return list(self._evicted)

    def take_evicted(self) -> list[tuple[str, str]]:
        """``(name, reason)`` of the keys evicted since the last call."""
        evicted, self._evicted = self._evicted, []
        return evicted

    def _add(self, name: str) -> int:
        if len(self._recent) >= self.max_keys:
            if self.policy == "dead_letter":
                return -1
            self.remove([next(iter(self._recent))], reason="max_keys")
        if self._free:
            row = self._free.pop()
            self.names_by_row[row] = name
        else:
            row = len(self.names_by_row)
            self.names_by_row.append(name)
            if row >= self.last_seen.shape[0]:
                self._grow(max(16, 2 * row))
        self.live[row] = True
        self._recent[name] = row
        return row

    def _grow(self, size: int) -> None:
        self.last_seen, self.live = grown(self.last_seen, size), grown(self.live, size)

    # -- checkpoints --------------------------------------------------------------------------
    def state(self) -> dict:
        """Keys by row (``None`` for free rows), last-seen times, and recency order."""
        return {"names": list(self.names_by_row), "last_seen": self.last_seen[: self.n_rows].tolist(),
                "recent": list(self._recent)}

    @classmethod
    def from_state(cls, state: dict, max_keys: int, policy: str) -> "KeyTable":
        """Rebuild from :meth:`state`; accepts the older form, a plain list of names."""
        table = cls(max_keys, policy)
        names = state if isinstance(state, list) else state["names"]
        table.names_by_row = list(names)
        table._grow(max(16, len(names)))
        table.live[: len(names)] = [name is not None for name in names]
        table.last_seen[: len(names)] = state["last_seen"] if isinstance(state, dict) else np.nan
        table._unstamped = bool(np.isnan(table.last_seen[: len(names)]).any())
        order = state["recent"] if isinstance(state, dict) else [n for n in names if n is not None]
        row_of = {name: row for row, name in enumerate(names) if name is not None}
        table._recent = OrderedDict((name, row_of[name]) for name in order)
        table._free = [row for row, name in enumerate(names) if name is None]
        return table
