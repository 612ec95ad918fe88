"""Ingest: count each batch of events into per-key histograms waiting for the trainer.

Runs on the event loop and costs O(batch) work, however many keys there are. Counts aggregate as
distinct ``(row, category)`` cells (:class:`~.pending.SparseCounts`) until the trainer takes them
(:class:`~.pending.Pending`), so memory follows the cells with events — not rows × K, which may be a whole
catalogue — however far training falls behind, and no event is dropped: every good event is
counted once, every bad one is dead-lettered and counted by reason. An event older than its key's
watermark (:class:`~daemon.event_time.Watermarks`) is one of those: ``late``.

Forgetting in event time, each event counts with its weight relative to its key's newest time
(:class:`~daemon.event_time.TimeWeights`), and :class:`~.pending.Pending` hands the model each key's newest
time with the counts, so the model decays what it counted before by as much.
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from ..arrays import grown
from ..event_time import TimeWeights, Watermarks
from ..events import BadEvent, EventBatch
from ..metrics import OTHER_KEY
from ..timestamps import rfc3339
from .keys import KeyTable
from .pending import Pending, RowEvents, SparseCounts

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
    def __init__(self, keys: KeyTable, labels, *, metrics, dead_letters, bad_log: BadEventLog,
                 clock: Callable[[], float], open_width: int | None = None,
                 watermarks: Watermarks | None = None, half_life_ms: float | None = None) -> None:
        """``labels``: the categories' labels (a list, or the open :class:`~daemon.categories.CategoryTable`,
        whose ``labels`` grow); ``open_width``: open categories, at most this many (sparse counts);
        ``watermarks``: each key's newest event time, and which events are late (none without);
        ``half_life_ms``: forgetting in event time, each event weighed by its age (:class:`TimeWeights`)."""
        self.keys, self.labels = keys, labels
        self.watermarks = Watermarks(None) if watermarks is None else watermarks
        self._metrics, self._dead_letters, self._bad_log = metrics, dead_letters, bad_log
        self._clock = clock
        self._open = open_width is not None
        weights = None if half_life_ms is None else TimeWeights(half_life_ms, self.watermarks)
        self._counts = SparseCounts(open_width if self._open else len(labels), weights=weights)
        self._has_pending = False
        self._unreported = np.zeros(0, dtype=np.int64)   # events per row not yet added to the metrics
        self._labelled = np.zeros(0, dtype=bool)         # rows whose key has metric series of its own
        self._other_unreported = 0                        # events of keys gone before report_events
        self._touched = np.zeros(0, dtype=bool)           # rows with pending counts

    def add(self, batch: EventBatch) -> int:
        """Count the batch's good events, dead-letter its bad ones; returns the number counted."""
        rows = self.keys.rows(batch.key_names, self._clock())[batch.keys] if len(batch) else np.zeros(0, np.int64)
        self._forget_left()  # keys this batch evicted: before their rows count the new keys' events
        bad = list(batch.bad)
        refused = rows < 0
        if refused.any():
            bad += [BadEvent("key_limit", f"more than {self.keys.max_keys} keys (model.max_keys)",
                             {"key": batch.key_names[k], "category": self._label(c)})
                    for k, c in zip(batch.keys[refused], batch.categories[refused])]
            events = np.flatnonzero(~refused)
            rows, categories = rows[events], batch.categories[events]
        else:
            events, categories = None, batch.categories
        times = None
        if batch.times is not None and len(rows):
            times = batch.times if events is None else batch.times[events]
            on_time = self.watermarks.admit(rows, times)
            if not on_time.all():
                late = np.flatnonzero(~on_time)
                bad += self._late(batch, late if events is None else events[late], rows[late], times[late])
                rows, categories, times = rows[on_time], categories[on_time], times[on_time]
        counted = int(rows.shape[0])
        if counted:
            self._count(rows, categories, times)
        if bad:
            self._dead_letter(bad)
        return counted

    def _late(self, batch: EventBatch, events: np.ndarray, rows: np.ndarray, times: np.ndarray) -> list[BadEvent]:
        """Bad events of the late ``events`` of ``batch`` (its records' when it has them)."""
        newest, names, late = self.watermarks.newest(rows), self.keys.names_by_row, []
        for event, row, time, last in zip(events.tolist(), rows.tolist(), times.tolist(), newest.tolist()):
            detail = (f"event time {rfc3339(time / 1000)} is before key {names[row]!r}'s watermark "
                      f"{rfc3339((last - self.watermarks.lateness_ms) / 1000)} (its newest event less "
                      "model.allowed_lateness)")
            if batch.provenance is not None:
                late.append(BadEvent("late", detail, *batch.provenance.of(event)))
            else:
                late.append(BadEvent("late", detail, {"key": names[row], "time": rfc3339(time / 1000),
                                                      "category": self._label(int(batch.categories[event]))}))
        return late

    def _label(self, category: int) -> str:
        return (self.labels.labels if self._open else self.labels)[category]

    def _count(self, rows: np.ndarray, categories: np.ndarray, times: np.ndarray | None) -> None:
        """Add to the pending counts in O(batch): a batch touches few of possibly many rows."""
        self._grow(self.keys.n_rows)
        self._counts.add(rows, categories, times)
        self._touched[rows] = True
        np.add.at(self._unreported, rows, 1)
        self._has_pending = True

    def _grow(self, n_rows: int) -> None:
        if self._touched.shape[0] < n_rows:
            size = max(n_rows, 2 * self._touched.shape[0])
            for name in ("_unreported", "_labelled", "_touched"):
                setattr(self, name, grown(getattr(self, name), size))

    def _forget_left(self) -> None:
        """Keys that left the table: their pending counts go with them, and their metric series."""
        for row, name in self.keys.take_left():
            self.watermarks.forget([row])
            if row < self._touched.shape[0]:
                if self._touched[row]:
                    self._counts.drop_row(row)
                self._touched[row] = False
                if not self._labelled[row]:  # counted already; its series is __other__, which stays
                    self._other_unreported += int(self._unreported[row])
                self._unreported[row] = 0
                self._labelled[row] = False
            self._metrics.forget_key(name)

    def _dead_letter(self, bad: list[BadEvent]) -> None:
        self._dead_letters.write(bad, rfc3339(self._clock()))
        reasons: dict[str, int] = {}
        for event in bad:
            reasons[event.reason] = reasons.get(event.reason, 0) + 1
        for reason, n in reasons.items():
            self._metrics.count_bad(reason, n)
        self._metrics.dead_lettered(len(bad))
        self._bad_log.report(bad)

    def report_events(self) -> None:
        """Add the events counted since the last call to the per-key metrics (bounded work per key label)."""
        self._forget_left()
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
        self._forget_left()
        return grown(self._labelled, self.keys.n_rows)[: self.keys.n_rows].copy()

    def take(self) -> Pending:
        """The pending counts and rows to reset since the last take; resets both."""
        self._forget_left()
        n_rows = self.keys.n_rows
        reset = self.keys.take_freed()
        if not self._has_pending:
            return Pending(n_rows, None, reset)
        self._touched[:] = False
        self._has_pending = False
        cells = self._counts.take()
        return Pending(n_rows, cells, reset, RowEvents.of_cells(cells, self.watermarks.newest))
