"""Which model row trains which distribution key; keys leave by eviction and their rows are reused.

Keys are kept in order of their last event (:meth:`KeyTable.rows` moves them), so the least recently seen key and the
keys idle past a TTL are found at the front in O(1) each. Each row also holds the sequence number of its key's latest
sighting (``seen_order``), so a checkpoint captures that order as an array copy: walking the ordered dict of 100,000
keys took 42 ms on the event loop, copying the array takes 0.1 ms. Past ``max_keys`` a new key either
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
import torch

from ..arrays import grown


class KeyTable:
    def __init__(self, max_keys: int, policy: str = "evict_least_recent") -> None:
        self.max_keys, self.policy = max_keys, policy
        self.names_by_row: list[str | None] = []      # None: a free row
        self.last_seen = np.zeros(0, dtype=np.float64)  # per row, clock seconds of its key's last event
        self.live = np.zeros(0, dtype=bool)              # per row, whether a key holds it
        self.seen_order = np.zeros(0, dtype=np.int64)   # per row, sequence number of its key's latest sighting
        self._sightings = 0                              # the next sequence number
        self._recent: OrderedDict[str, int] = OrderedDict()  # name → row, least recently seen first
        self._free: list[int] = []
        self._freed: list[int] = []                   # freed since take_freed, for the model to reset
        self._evicted: list[tuple[str, str]] = []     # (name, reason) since take_evicted
        self._left: list[tuple[int, str]] = []        # (row, name) freed since take_left
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
        # the order of the loop above, in which the ordered dict moved them: the later, the more recent
        self.seen_order[seen] = np.arange(self._sightings, self._sightings + len(seen))
        self._sightings += len(seen)
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
            self._left.append((row, name))
            rows.append(row)
            if reason is not None:
                self._evicted.append((name, reason))
        return rows

    def take_left(self) -> list[tuple[int, str]]:
        """``(row, name)`` of every key that left since the last call, in order (ingest forgets their counts)."""
        left, self._left = self._left, []
        return left

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
        self.seen_order = grown(self.seen_order, size)

    # -- checkpoints --------------------------------------------------------------------------
    def state(self) -> dict:
        """Keys by row (``None`` for free rows), and per row the last-seen time and ``seen_order``.

        Taken on the event loop: a list copy and two array copies (tensors, which a checkpoint
        holds as they are), where lists of 100,000 floats and names took 51 ms.
        """
        n = self.n_rows
        return {"names": list(self.names_by_row), "last_seen": torch.from_numpy(self.last_seen[:n].copy()),
                "seen_order": torch.from_numpy(self.seen_order[:n].copy())}

    @classmethod
    def from_state(cls, state: dict | list, max_keys: int, policy: str) -> "KeyTable":
        """Rebuild from :meth:`state`; accepts the older forms: a dict whose ``recent`` lists the
        names in recency order, and a plain list of names (in recency order, no last-seen times)."""
        table = cls(max_keys, policy)
        names = state if isinstance(state, list) else state["names"]
        n = len(names)
        table.names_by_row = list(names)
        table._grow(max(16, n))
        table.live[:n] = [name is not None for name in names]
        table.last_seen[:n] = np.asarray(state["last_seen"], dtype=np.float64) if isinstance(state, dict) else np.nan
        table._unstamped = bool(np.isnan(table.last_seen[:n]).any())
        held = np.flatnonzero(table.live[:n])
        if isinstance(state, dict) and "seen_order" in state:
            table.seen_order[:n] = np.asarray(state["seen_order"], dtype=np.int64)
            held = held[np.argsort(table.seen_order[held], kind="stable")]
        elif isinstance(state, dict):  # names in recency order
            row_of = {name: row for row, name in enumerate(names) if name is not None}
            held = np.asarray([row_of[name] for name in state["recent"]], dtype=np.int64)
        table.seen_order[held] = np.arange(len(held))
        table._sightings = len(held)
        table._recent = OrderedDict((names[row], row) for row in held.tolist())
        table._free = [row for row, name in enumerate(names) if name is None]
        return table
