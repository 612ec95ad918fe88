"""What ingest hands the model: events counted per distinct ``(row, category)`` cell, waiting for the trainer.

:class:`SparseCounts` gathers a stream of counted events into distinct cells, so memory follows
the cells with events, however far training falls behind; :class:`Pending` is one take of them,
with how many events each row received and its newest event time (:class:`RowEvents`), and the
rows to reset first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..event_time import TimeWeights


class Cells(NamedTuple):
    """Events per distinct ``(row, category)`` cell, sorted by row then category."""

    rows: np.ndarray        # int64 [n]
    categories: np.ndarray  # int64 [n]
    counts: np.ndarray      # float64 [n], weighed by age when forgetting in event time
    events: np.ndarray | None = None  # float64 [n] events, where ``counts`` are weighed (None: the counts)


class RowEvents(NamedTuple):
    """Per row with events (``rows`` sorted and distinct): how many arrived, and its newest event time (ms)."""

    rows: np.ndarray    # int64 [m]
    events: np.ndarray  # int64 [m]
    newest: np.ndarray  # int64 [m]

    @classmethod
    def of_cells(cls, cells: Cells, newest) -> "RowEvents":
        """The rows of ``cells``, with ``newest(rows)`` their newest times."""
        if not len(cells.rows):
            return cls(cells.rows, np.zeros(0, np.int64), np.zeros(0, np.int64))
        starts = np.flatnonzero(np.r_[True, cells.rows[1:] != cells.rows[:-1]])
        rows = cells.rows[starts]
        events = np.add.reduceat(cells.counts if cells.events is None else cells.events, starts)
        return cls(rows, np.rint(events).astype(np.int64), newest(rows))

    def at(self, rows: np.ndarray) -> "RowEvents":
        """The entries of ``rows`` (each among :attr:`rows`), in their order."""
        at = np.searchsorted(self.rows, rows)
        return RowEvents(np.asarray(rows), self.events[at], self.newest[at])


@dataclass(frozen=True)
class Pending:
    """What ingest hands the model: the rows in use, the events counted since the last take (per
    cell, and per row with its newest time), and the rows to reset (freed since then: start them
    afresh before counting).

    >>> Pending.of_counts(np.array([[0.0, 2.0], [0.0, 0.0], [1.0, 3.0]])).cells
    Cells(rows=array([0, 2, 2]), categories=array([1, 0, 1]), counts=array([2., 1., 3.]), events=None)
    """

    n_rows: int
    cells: Cells | None             # None: no events
    reset_rows: list[int] = field(default_factory=list)
    rows: RowEvents | None = None   # None: the cells' counts are their events, without times

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

    With ``weights`` (forgetting in event time) each cell also sums its events weighed relative to
    its row's newest time at that moment: a sum made earlier is weighed again, from its own
    newest time, as later events move the row's clock.

    >>> counts = SparseCounts(width=10)
    >>> counts.add(np.array([1, 0, 1]), np.array([4, 2, 4])); counts.add(np.array([0]), np.array([2]))
    >>> [a.tolist() for a in counts.take()[:3]]
    [[0, 1], [2, 4], [2.0, 2.0]]
    """

    def __init__(self, width: int, compact_after: int = 64, weights: TimeWeights | None = None) -> None:
        self.width, self.compact_after, self.weights = width, compact_after, weights
        self._cells: list[np.ndarray] = []
        self._events: list[np.ndarray] = []
        self._weighed: list[np.ndarray] = []  # with weights: each entry's weighed events, relative to
        self._times: list[np.ndarray] = []    # its time
        self._summed = True  # the one chunk left holds distinct cells
        self._dropped: list[int] = []  # rows whose counts so far are to go

    def add(self, rows: np.ndarray, categories: np.ndarray, times: np.ndarray | None = None) -> None:
        """Count events of ``rows`` and ``categories`` (``[n]`` each), at ``times`` (without: at their row's newest)."""
        self._drop()
        self._cells.append(rows * self.width + categories)
        self._events.append(np.ones(len(rows)))
        if self.weights is not None:
            self._weighed.append(self._events[-1])
            self._times.append(self.weights.watermarks.newest(rows) if times is None else times.astype(np.int64))
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
        if not self._cells:
            return Cells(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        cells, events = self._cells[0], self._events[0]
        weighed = self._weighed[0] if self._weighed else None
        self._cells, self._events, self._weighed, self._times = [], [], [], []
        rows, categories = cells // self.width, cells % self.width
        return Cells(rows, categories, events) if weighed is None else Cells(rows, categories, weighed, events)

    def _drop(self) -> None:
        if self._dropped:
            self._compact()
            if self._cells:
                keep = ~np.isin(self._cells[0] // self.width, self._dropped)
                for parts in (self._cells, self._events, self._weighed, self._times):
                    parts[:] = [parts[0][keep]] if parts else []
            self._dropped = []

    def _compact(self) -> None:
        if self._cells and not self._summed:
            every = np.concatenate(self._cells)
            cells, inverse = np.unique(every, return_inverse=True)
            self._events = [np.bincount(inverse, weights=np.concatenate(self._events))]
            if self.weights is not None:  # each weighed again relative to its row's newest time now
                weighed = np.concatenate(self._weighed) * self.weights(every // self.width, np.concatenate(self._times))
                self._weighed = [np.bincount(inverse, weights=weighed)]
                self._times = [self.weights.watermarks.newest(cells // self.width)]
            self._cells = [cells]
        self._summed = True
