"""Ingest: count each batch of events into per-key histograms waiting for the trainer.

Runs on the event loop and costs O(batch) work, however many keys there are. Counts aggregate as
distinct ``(row, category)`` cells (:class:`SparseCounts`) until the trainer takes them
(:class:`Pending`), so memory follows the cells with events — not rows × K, which may be a whole
catalogue — however far training falls behind, and no event is dropped: every good event is
counted once, every bad one is dead-lettered and counted by reason. An event older than its key's
watermark (:class:`~daemon.event_time.Watermarks`) is one of those: ``late``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from ..arrays import grown
from ..event_time import Watermarks
from ..events import BadEvent, EventBatch
from ..metrics import OTHER_KEY
from ..timestamps import rfc3339
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


class Cells(NamedTuple):
    """Events per distinct ``(row, category)`` cell, sorted by row then category."""

    rows: np.ndarray        # int64 [n]
    categories: np.ndarray  # int64 [n]
    counts: np.ndarray      # float64 [n]


@dataclass(frozen=True)
class Pending:
    """What ingest hands the model: the rows in use, the events counted since the last take, and the
    rows to reset (freed since then: start them afresh before counting).

    >>> Pending.of_counts(np.array([[0.0, 2.0], [0.0, 0.0], [1.0, 3.0]])).cells
    Cells(rows=array([0, 2, 2]), categories=array([1, 0, 1]), counts=array([2., 1., 3.]))
    """

    n_rows: int
    cells: Cells | None             # None: no events
    reset_rows: list[int] = field(default_factory=list)

    @classmethod
    def of_counts(cls, counts: np.ndarray, reset_rows: list[int] = ()) -> "Pending":
        """The events of ``counts`` ``[rows, K]`` (tools and benches that count by themselves)."""
        rows, categories = np.nonzero(counts)
        return cls(counts.shape[0], Cells(rows, categories, counts[rows, categories].astype(np.float64)),
                   list(reset_rows))


class SparseCounts:
    """Events per distinct ``(row, category)`` cell: memory follows the cells with events, not
    rows × K (K may be a whole catalogue). Batches are appended as they come and summed when
    taken, or when ``compact_after`` batches have gathered (so memory stays bounded by the
    distinct cells). The counts of dropped rows (keys that left) are removed before the next
    batch is added, in one pass however many rows left.

    >>> counts = SparseCounts(width=10)
    >>> counts.add(np.array([1, 0, 1]), np.array([4, 2, 4])); counts.add(np.array([0]), np.array([2]))
    >>> [a.tolist() for a in counts.take()]
    [[0, 1], [2, 4], [2.0, 2.0]]
    """

    def __init__(self, width: int, compact_after: int = 64) -> None:
        self.width, self.compact_after = width, compact_after
        self._cells: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._summed = True  # the one chunk left holds distinct cells
        self._dropped: list[int] = []  # rows whose counts so far are to go

    def add(self, rows: np.ndarray, categories: np.ndarray) -> None:
        self._drop()
        self._cells.append(rows * self.width + categories)
        self._counts.append(np.ones(len(rows)))
        self._summed = False
        if len(self._cells) >= self.compact_after:
            self._compact()

    def drop_row(self, row: int) -> None:
        """Forget the counts of ``row`` (its key left) — those added so far; a new key may take the row."""
        self._dropped.append(row)

    def take(self) -> Cells:
        """The distinct cells, sorted; empties the counts."""
        self._drop()
        self._compact()
        cells, counts = (self._cells[0], self._counts[0]) if self._cells else (np.zeros(0, np.int64), np.zeros(0))
        self._cells, self._counts = [], []
        return Cells(cells // self.width, cells % self.width, counts)

    def _drop(self) -> None:
        if self._dropped:
            self._compact()
            if self._cells:
                keep = ~np.isin(self._cells[0] // self.width, self._dropped)
                self._cells, self._counts = [self._cells[0][keep]], [self._counts[0][keep]]
            self._dropped = []

    def _compact(self) -> None:
        if self._cells and not self._summed:
            cells, inverse = np.unique(np.concatenate(self._cells), return_inverse=True)
            self._cells, self._counts = [cells], [np.bincount(inverse, weights=np.concatenate(self._counts))]
        self._summed = True


class Ingest:
    def __init__(self, keys: KeyTable, labels, *, metrics, dead_letters, bad_log: BadEventLog,
                 clock: Callable[[], float], open_width: int | None = None,
                 watermarks: Watermarks | None = None) -> None:
        """``labels``: the categories' labels (a list, or the open :class:`~daemon.categories.CategoryTable`,
        whose ``labels`` grow); ``open_width``: open categories, at most this many (sparse counts);
        ``watermarks``: each key's newest event time, and which events are late (none without)."""
        self.keys, self.labels = keys, labels
        self.watermarks = Watermarks(None) if watermarks is None else watermarks
        self._metrics, self._dead_letters, self._bad_log = metrics, dead_letters, bad_log
        self._clock = clock
        self._open = open_width is not None
        self._counts = SparseCounts(open_width if self._open else len(labels))
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
        if batch.times is not None and len(rows):
            times = batch.times if events is None else batch.times[events]
            on_time = self.watermarks.admit(rows, times)
            if not on_time.all():
                late = np.flatnonzero(~on_time)
                bad += self._late(batch, late if events is None else events[late], rows[late], times[late])
                rows, categories = rows[on_time], categories[on_time]
        counted = int(rows.shape[0])
        if counted:
            self._count(rows, categories)
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

    def _count(self, rows: np.ndarray, categories: np.ndarray) -> None:
        """Add to the pending counts in O(batch): a batch touches few of possibly many rows."""
        self._grow(self.keys.n_rows)
        self._counts.add(rows, categories)
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
        return Pending(n_rows, self._counts.take(), reset)
