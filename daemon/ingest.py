"""Ingest: count each batch of events into per-key histograms waiting for the trainer.

Runs on the event loop and costs O(batch) NumPy work. Counts aggregate in one ``[keys, K]``
array until the trainer takes them, so memory stays bounded however far training falls behind,
and no event is dropped: every good event is counted once, every bad one is dead-lettered and
counted by reason.
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from .events import BadEvent, EventBatch
from .keys import KeyTable

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


class Ingest:
    def __init__(self, keys: KeyTable, labels: list[str], *, metrics, dead_letters, bad_log: BadEventLog,
                 now_rfc3339: Callable[[], str]) -> None:
        self.keys, self.labels = keys, labels
        self._metrics, self._dead_letters, self._bad_log, self._now = metrics, dead_letters, bad_log, now_rfc3339
        self._pending = np.zeros((0, len(labels)), dtype=np.float64)
        self._has_pending = False

    def add(self, batch: EventBatch) -> int:
        """Count the batch's good events, dead-letter its bad ones; returns the number counted."""
        rows = self.keys.rows(batch.key_names)[batch.keys] if len(batch) else np.zeros(0, np.int64)
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
        n_keys, k = len(self.keys), len(self.labels)
        if self._pending.shape[0] < n_keys:
            grown = np.zeros((n_keys, k), dtype=np.float64)
            grown[: self._pending.shape[0]] = self._pending
            self._pending = grown
        counts = np.bincount(rows * k + categories, minlength=n_keys * k).reshape(n_keys, k)
        self._pending += counts
        self._has_pending = True
        per_key = counts.sum(axis=1)
        self._metrics.count_events({self.keys.names[i]: int(per_key[i]) for i in np.flatnonzero(per_key)})

    def _dead_letter(self, bad: list[BadEvent]) -> None:
        self._dead_letters.write(bad, self._now())
        reasons: dict[str, int] = {}
        for event in bad:
            reasons[event.reason] = reasons.get(event.reason, 0) + 1
        for reason, n in reasons.items():
            self._metrics.count_bad(reason, n)
        self._metrics.dead_lettered(len(bad))
        self._bad_log.report(bad)

    def remove_rows(self, rows: list[int]) -> None:
        """Keys at ``rows`` were dropped from the key table: drop their pending counts too."""
        rows = [r for r in rows if r < self._pending.shape[0]]
        self._pending = np.delete(self._pending, rows, axis=0)

    def take(self) -> tuple[int, np.ndarray | None]:
        """``(keys known, counts [keys, K] since the last take or None)``; resets the pending counts."""
        n_keys = len(self.keys)
        if not self._has_pending:
            return n_keys, None
        counts = np.zeros((n_keys, len(self.labels)), dtype=np.float64)
        counts[: self._pending.shape[0]] = self._pending
        self._pending = np.zeros_like(counts)
        self._has_pending = False
        return n_keys, counts
