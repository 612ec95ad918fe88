"""Pending counts: distinct cells, and in event time each event weighed by its age when taken."""
import numpy as np

from daemon.event_time import TimeWeights, Watermarks
from daemon.learning.pending import Cells, RowEvents, SparseCounts

H_MS = 1000.0


def test_weighed_counts_are_relative_to_each_rows_newest_time_when_taken_however_often_they_were_summed():
    rng = np.random.default_rng(3)
    rows, categories = rng.integers(0, 4, 900), rng.integers(0, 3, 900)
    times = rng.integers(0, 20_000, 900)  # twenty half-lives, in any order
    for compact_after in (1, 2, 64):
        marks = Watermarks(None)
        counts = SparseCounts(width=3, compact_after=compact_after, weights=TimeWeights(H_MS, marks))
        for start in range(0, 900, 50):
            batch = slice(start, start + 50)
            marks.admit(rows[batch], times[batch])     # as ingest does: the clocks first
            counts.add(rows[batch], categories[batch], times[batch])
        cells = counts.take()
        for row in range(4):
            own = rows == row
            weights = np.exp2((times[own] - times[own].max()) / H_MS)
            expected = np.bincount(categories[own], weights=weights, minlength=3)
            got = np.zeros(3)
            got[cells.categories[cells.rows == row]] = cells.counts[cells.rows == row]
            np.testing.assert_allclose(got, expected, rtol=1e-12)  # float64 sums in another order
            events = np.bincount(categories[own], minlength=3)
            assert cells.events[cells.rows == row].tolist() == events[events > 0].tolist()


def test_a_dropped_rows_weighed_counts_go_with_it():
    marks = Watermarks(None)
    counts = SparseCounts(width=3, compact_after=1, weights=TimeWeights(H_MS, marks))
    marks.admit(np.array([0, 1]), np.array([1000, 1000]))
    counts.add(np.array([0, 1]), np.array([2, 1]), np.array([1000, 1000]))
    counts.drop_row(0)
    marks.admit(np.array([1]), np.array([2000]))
    counts.add(np.array([1]), np.array([1]), np.array([2000]))
    cells = counts.take()
    assert cells.rows.tolist() == [1] and cells.counts.tolist() == [1.5] and cells.events.tolist() == [2.0]


def test_each_rows_events_and_newest_time_from_its_cells():
    cells = Cells(np.array([0, 0, 3]), np.array([1, 2, 0]), np.array([0.5, 1.0, 2.0]), np.array([1.0, 2.0, 2.0]))
    events = RowEvents.of_cells(cells, lambda rows: rows * 100)
    assert events.rows.tolist() == [0, 3] and events.events.tolist() == [3, 2] and events.newest.tolist() == [0, 300]
    assert events.at(np.array([3, 0])).events.tolist() == [2, 3]
