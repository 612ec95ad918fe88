"""Ingest: count each batch of events into per-key histograms waiting for the trainer.

Runs on the event loop and costs O(batch) work, however many keys there are. Counts aggregate in
one ``[rows, K]`` array until the trainer takes them, so memory stays bounded however far training falls behind,
and no event is dropped: every good event is counted once, every bad one is dead-lettered and
counted by reason.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .arrays import grown
from .events import BadEvent, EventBatch
from .keys import KeyTable
from .metrics import OTHER_KEY

log = logging.getLogger("gumbeld.ingest")


class BadEventLog:
    """Logs bad events at most once per ``interval`` seconds, with counts by reason since the last line."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval, self._clock = interval, clock
        self._last: float | None = None
        self._since: dict[str, int] = {}

    def report(self, bad: list[BadEvent]) -> None:
        for event in bad:
            self._since[event.reason] = self._since.get(event.reason, 0) + 1
        now = self._clock()
        if self._last is None or now - self._last >= self.interval:
            log.warning("bad events dead-lettered %s; latest: %s (%s)",
                        dict(sorted(self._since.items())), bad[-1].reason, bad[-1].detail)
            self._last, self._since = now, {}


@dataclass(frozen=True)
class Pending:
    """What ingest hands the model: rows in use, new counts per row and category, rows to reset."""

    n_rows: int
    counts: np.ndarray | None       # [n_rows, K] (or [len(rows), K]) events since the last take; None: none
    reset_rows: list[int]           # rows freed since the last take: start them afresh before counting
    rows: np.ndarray | None = None  # the rows of ``counts``, when only the rows with events are given

    def dense(self) -> np.ndarray | None:
        """The counts as ``[n_rows, K]``, zero for rows without events."""
        if self.counts is None or self.rows is None:
            return self.counts
        dense = np.zeros((self.n_rows, self.counts.shape[1]))
        dense[self.rows] = self.counts
        return dense


class Ingest:
    def __init__(self, keys: KeyTable, labels: list[str], *, metrics, dead_letters, bad_log: BadEventLog,
                 now_rfc3339: Callable[[], str], clock: Callable[[], float]) -> None:
        self.keys, self.labels = keys, labels
        self._metrics, self._dead_letters, self._bad_log, self._now = metrics, dead_letters, bad_log, now_rfc3339
        self._clock = clock
        self._pending = np.zeros((0, len(labels)), dtype=np.float64)
        self._has_pending = False
        self._unreported = np.zeros(0, dtype=np.int64)   # events per row not yet added to the metrics
        self._labelled = np.zeros(0, dtype=bool)         # rows whose key has metric series of its own
        self._other_unreported = 0                        # events of keys gone before report_events
        self._touched = np.zeros(0, dtype=bool)           # rows with pending counts
        keys.on_free = self._forget_row

    def add(self, batch: EventBatch) -> int:
        """Count the batch's good events, dead-letter its bad ones; returns the number counted."""
        rows = self.keys.rows(batch.key_names, self._clock())[batch.keys] if len(batch) else np.zeros(0, np.int64)
        bad = list(batch.bad)
        refused = rows < 0
        if refused.any():
            bad += [BadEvent("key_limit", f"more than {self.keys.max_keys} keys (model.max_keys)",
                             {"key": batch.key_names[k], "category": self.labels[c]})
                    for k, c in zip(batch.keys[refused], batch.categories[refused])]
            rows, categories = rows[~refused], batch.categories[~refused]
        else:
            categories = batch.categories
        counted = int(rows.shape[0])
        if counted:
            self._count(rows, categories)
        if bad:
            self._dead_letter(bad)
        return counted

    def _count(self, rows: np.ndarray, categories: np.ndarray) -> None:
        """Add to the pending counts in O(batch): a batch touches few of possibly many rows."""
        self._grow(self.keys.n_rows)
        k = len(self.labels)
        cells, per_cell = np.unique(rows * k + categories, return_counts=True)
        self._pending.reshape(-1)[cells] += per_cell
        self._touched[cells // k] = True
        np.add.at(self._unreported, cells // k, per_cell)
        self._has_pending = True

    def _grow(self, n_rows: int) -> None:
        if self._pending.shape[0] < n_rows:
            size = max(n_rows, 2 * self._pending.shape[0])
            for name in ("_pending", "_unreported", "_labelled", "_touched"):
                setattr(self, name, grown(getattr(self, name), size))

    def _forget_row(self, row: int, name: str) -> None:
        """A key left the table: its pending counts go with it, and its metric series."""
        if row < self._pending.shape[0]:
            self._pending[row] = 0.0
            self._touched[row] = False
            if not self._labelled[row]:  # counted already; its series is __other__, which stays
                self._other_unreported += int(self._unreported[row])
            self._unreported[row] = 0
            self._labelled[row] = False
        self._metrics.forget_key(name)

    def _dead_letter(self, bad: list[BadEvent]) -> None:
        self._dead_letters.write(bad, self._now())
        reasons: dict[str, int] = {}
        for event in bad:
            reasons[event.reason] = reasons.get(event.reason, 0) + 1
        for reason, n in reasons.items():
            self._metrics.count_bad(reason, n)
        self._metrics.dead_lettered(len(bad))
        self._bad_log.report(bad)

    def report_events(self) -> None:
        """Add the events counted since the last call to the per-key metrics (bounded work per key label)."""
        rows = np.flatnonzero(self._unreported)
        gone, self._other_unreported = self._other_unreported, 0
        if not rows.size and not gone:
            return
        names, counts = self.keys.names_by_row, self._unreported[rows]
        own = self._labelled[rows]
        room = self._metrics.label_room()
        if room and not own.all():  # the first keys seen get their own series while there is room
            for row in rows[~own][:room].tolist():
                self._labelled[row] = self._metrics.claim_label(names[row])
            own = self._labelled[rows]
        by_key = {names[row]: n for row, n in zip(rows[own].tolist(), counts[own].tolist())}
        others = int(counts[~own].sum()) + gone
        if others:
            by_key[OTHER_KEY] = by_key.get(OTHER_KEY, 0) + others
        self._metrics.count_events(by_key)
        self._unreported[rows] = 0

    def labelled_rows(self) -> np.ndarray:
        """``[rows]`` bool: rows whose key has metric series of its own (a copy)."""
        return grown(self._labelled, self.keys.n_rows)[: self.keys.n_rows].copy()

    def take(self) -> Pending:
        """The pending counts and rows to reset since the last take; resets both."""
        n_rows = self.keys.n_rows
        reset = self.keys.take_freed()
        if not self._has_pending:
            return Pending(n_rows, None, reset)
        rows = np.flatnonzero(self._touched[:n_rows])  # O(rows) flags, then O(touched) copies
        counts = self._pending[rows]
        self._pending[rows] = 0.0
        self._touched[rows] = False
        self._has_pending = False
        return Pending(n_rows, counts, reset, rows)
