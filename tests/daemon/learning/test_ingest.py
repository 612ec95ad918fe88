import json

import numpy as np
from prometheus_client import CollectorRegistry

from daemon.event_time import Watermarks
from daemon.events import EventBatch, EventCodec
from daemon.learning.ingest import BadEventLog, Ingest
from daemon.learning.pending import Pending
from daemon.learning.keys import KeyTable
from daemon.metrics import OTHER_KEY, Metrics
from daemon.sinks.local import DeadLetterFile

LABELS = ["a", "b", "c"]


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _dense(pending: Pending) -> np.ndarray:
    """The pending counts as ``[n_rows, K]``."""
    counts = np.zeros((pending.n_rows, len(LABELS)))
    if pending.cells is not None:
        counts[pending.cells.rows, pending.cells.categories] = pending.cells.counts
    return counts


def _ingest(tmp_path, max_keys=10, policy="evict_least_recent", max_key_labels=10, clock=None, lateness_ms=None):
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_key_labels=max_key_labels, clock=lambda: 0.0)
    dead = DeadLetterFile(tmp_path / "dead.jsonl")
    ingest = Ingest(KeyTable(max_keys, policy), LABELS, metrics=metrics, dead_letters=dead,
                    bad_log=BadEventLog(10.0, clock=lambda: 0.0), clock=clock or Clock(),
                    watermarks=Watermarks(lateness_ms))
    return ingest, registry, dead


def _dead_letters(tmp_path):
    return [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]


def _events(registry, key):
    return registry.get_sample_value("gumbeld_events_total", {"key": key})


def test_bad_events_are_counted_and_dead_lettered_while_good_ones_in_the_batch_count(tmp_path):
    ingest, registry, dead = _ingest(tmp_path)
    records = [{"key": "k1", "category": "a"}, b"{oops", {"key": "k1", "category": "zzz"},
               {"key": "k2", "category": 2}, {"key": "k1", "category": None}, {"key": "k1", "category": "a"}]
    counted = ingest.add(EventCodec(LABELS).decode(records))
    dead.close()
    assert counted == 3
    pending = ingest.take()
    assert pending.n_rows == 2 and _dense(pending).tolist() == [[2, 0, 0], [0, 0, 1]]
    assert pending.reset_rows == []
    assert ingest.take().cells is None  # taken once
    letters = _dead_letters(tmp_path)
    assert [d["reason"] for d in letters] == ["not_json", "unknown_category", "wrong_type"]
    assert letters[0]["raw"] == "{oops" and letters[1]["raw"] == {"key": "k1", "category": "zzz"}
    for reason in ("not_json", "unknown_category", "wrong_type"):
        assert registry.get_sample_value("gumbeld_bad_events_total", {"reason": reason}) == 1
    assert registry.get_sample_value("gumbeld_dead_letters_written_total") == 3
    assert _events(registry, "k1") is None  # per-key counters move at report_events (each publish)
    ingest.report_events()
    assert _events(registry, "k1") == 2 and _events(registry, "k2") == 1
    ingest.report_events()  # nothing new: nothing added twice
    assert _events(registry, "k1") == 2


def test_keys_past_the_limit_are_dead_lettered_not_trained(tmp_path):
    ingest, registry, dead = _ingest(tmp_path, max_keys=1, policy="dead_letter")
    ingest.add(EventCodec(LABELS).decode([{"key": "first", "category": "a"}, {"key": "second", "category": "b"}]))
    ingest.add(EventCodec(LABELS).decode([{"key": "third", "category": "c"}, {"key": "first", "category": "a"}]))
    dead.close()
    pending = ingest.take()
    assert pending.n_rows == 1 and _dense(pending).tolist() == [[2, 0, 0]]
    letters = _dead_letters(tmp_path)
    assert [d["reason"] for d in letters] == ["key_limit", "key_limit"]
    assert [d["raw"] for d in letters] == [{"key": "second", "category": "b"}, {"key": "third", "category": "c"}]
    assert registry.get_sample_value("gumbeld_bad_events_total", {"reason": "key_limit"}) == 2
    assert ingest.keys.names == ["first"] and ingest.keys.take_evicted() == []


def test_a_new_key_past_the_limit_evicts_the_least_recent_one(tmp_path):
    ingest, _, dead = _ingest(tmp_path, max_keys=2)
    codec = EventCodec(LABELS)
    ingest.add(codec.decode([{"key": "x", "category": "a"}, {"key": "y", "category": "b"}]))
    ingest.add(codec.decode([{"key": "x", "category": "c"}]))             # x is now the most recent
    ingest.add(codec.decode([{"key": "z", "category": "c"}]))             # evicts y
    dead.close()
    assert ingest.keys.take_evicted() == [("y", "max_keys")]
    pending = ingest.take()
    assert pending.reset_rows == [1] and ingest.keys.names_by_row == ["x", "z"]
    # y's pending event left with it; row 1 now holds only z's
    assert _dense(pending).tolist() == [[1, 0, 1], [0, 0, 1]]
    assert not (tmp_path / "dead.jsonl").read_text()


def test_counts_accumulate_across_batches_and_new_keys(tmp_path):
    ingest, _, _ = _ingest(tmp_path)
    codec = EventCodec(LABELS)
    ingest.add(codec.decode([{"key": "x", "category": "a"}]))
    ingest.add(codec.decode([{"key": "y", "category": "c"}, {"key": "x", "category": "a"}]))
    pending = ingest.take()
    assert pending.n_rows == 2 and np.array_equal(_dense(pending), [[2, 0, 0], [0, 0, 1]])


def test_counting_is_exact_over_many_batches_and_10000_keys(tmp_path):
    rng = np.random.default_rng(7)
    n_keys, k = 10_000, len(LABELS)
    ingest, registry, _ = _ingest(tmp_path, max_keys=n_keys, max_key_labels=50)
    universe = np.array([f"key-{i}" for i in range(n_keys)])
    truth = np.zeros((n_keys, k), dtype=np.int64)
    taken: dict[str, np.ndarray] = {}
    for b in range(60):
        size = int(rng.integers(1, 5000))
        # Zipf-like popularity, so some keys get many events per batch and most get none
        ids = np.minimum(rng.zipf(1.3, size) - 1, n_keys - 1) if b % 2 else rng.integers(0, n_keys, size)
        categories = rng.integers(0, k, size)
        np.add.at(truth, (ids, categories), 1)
        present, local = np.unique(ids, return_inverse=True)
        batch = EventBatch(universe[present].tolist(), local.astype(np.int64), categories.astype(np.int64))
        assert ingest.add(batch) == size
        if b % 7 == 3:  # the trainer takes now and then; counts in between accumulate
            pending = ingest.take()
            assert pending.reset_rows == []
            for row, name in enumerate(ingest.keys.names_by_row[: pending.n_rows]):
                taken[name] = taken.get(name, 0) + _dense(pending)[row]
        if b % 11 == 5:
            ingest.report_events()
    ingest.add(EventBatch(["key-0"], np.zeros(1, np.int64), np.zeros(1, np.int64)))
    truth[0, 0] += 1
    pending = ingest.take()
    for row, name in enumerate(ingest.keys.names_by_row[: pending.n_rows]):
        taken[name] = taken.get(name, 0) + _dense(pending)[row]
    assert ingest.take().cells is None
    got = np.zeros_like(truth)
    for name, counts in taken.items():
        got[int(name.split("-")[1])] = counts
    assert np.array_equal(got, truth)
    assert len(ingest.keys) == int((truth.sum(axis=1) > 0).sum())
    ingest.report_events()
    labelled = ingest.labelled_rows()
    assert int(labelled.sum()) == 50
    names = ingest.keys.names_by_row
    per_key = truth.sum(axis=1)
    own = sum(_events(registry, names[row]) for row in np.flatnonzero(labelled).tolist())
    assert own == sum(per_key[int(names[row].split("-")[1])] for row in np.flatnonzero(labelled).tolist())
    assert own + _events(registry, OTHER_KEY) == truth.sum()  # every event counted once


def test_a_freed_rows_pending_counts_are_dropped_and_the_row_is_reset(tmp_path):
    clock = Clock(100.0)
    ingest, _, _ = _ingest(tmp_path, max_keys=3, clock=clock)
    codec = EventCodec(LABELS)
    ingest.add(codec.decode([{"key": "old", "category": "a"}] * 5 + [{"key": "keep", "category": "b"}]))
    assert _dense(ingest.take()).tolist() == [[5, 0, 0], [0, 1, 0]]
    clock.now = 150.0
    ingest.add(codec.decode([{"key": "old", "category": "c"}] * 4 + [{"key": "keep", "category": "b"}]))
    assert ingest.keys.remove(["old"], reason="ttl") == [0]
    pending = ingest.take()
    assert pending.reset_rows == [0]
    assert _dense(pending).tolist() == [[0, 0, 0], [0, 1, 0]]  # old's 4 pending events went with it
    # a new key reuses row 0, and only its own events are counted there
    ingest.add(codec.decode([{"key": "new", "category": "b"}] * 2))
    ingest.keys.remove(["keep"], reason="ttl")
    ingest.add(codec.decode([{"key": "newer", "category": "a"}]))
    pending = ingest.take()
    assert ingest.keys.names_by_row == ["new", "newer"]
    assert sorted(pending.reset_rows) == [1]
    assert _dense(pending).tolist() == [[0, 2, 0], [1, 0, 0]]
    assert ingest.take().reset_rows == []  # reported once


def test_expired_keys_lose_their_pending_counts(tmp_path):
    clock = Clock(0.0)
    ingest, _, _ = _ingest(tmp_path, clock=clock)
    codec = EventCodec(LABELS)
    ingest.add(codec.decode([{"key": "idle", "category": "a"}]))
    clock.now = 8.0
    ingest.add(codec.decode([{"key": "busy", "category": "c"}]))
    assert ingest.keys.expire(now=10.0, ttl=5.0) == ["idle"]
    pending = ingest.take()
    assert pending.reset_rows == [0] and _dense(pending).tolist() == [[0, 0, 0], [0, 0, 1]]


def test_events_reach_labelled_keys_counters_and_the_rest_add_to_other(tmp_path):
    ingest, registry, _ = _ingest(tmp_path, max_key_labels=2)
    codec = EventCodec(LABELS)
    ingest.add(codec.decode([{"key": k, "category": "a"} for k, n in
                             (("k0", 3), ("k1", 1), ("k2", 2), ("k3", 4)) for _ in range(n)]))
    ingest.report_events()
    assert ingest.labelled_rows().tolist() == [True, True, False, False]
    assert (_events(registry, "k0"), _events(registry, "k1"), _events(registry, OTHER_KEY)) == (3, 1, 6)
    assert _events(registry, "k2") is None and _events(registry, "k3") is None
    ingest.add(codec.decode([{"key": "k3", "category": "b"}, {"key": "k0", "category": "b"}]))
    ingest.report_events()
    assert (_events(registry, "k0"), _events(registry, OTHER_KEY)) == (4, 7)
    # k0 leaves: its series go (ingest hears of it at its next call), its label goes to a key with events since
    ingest.keys.remove(["k0"], reason="ttl")
    ingest.report_events()
    assert _events(registry, "k0") is None
    assert ingest.labelled_rows().tolist() == [False, True, False, False]
    ingest.add(codec.decode([{"key": "k2", "category": "c"}] * 5))
    ingest.report_events()
    assert _events(registry, "k2") == 5  # counted from when it got its label
    assert _events(registry, OTHER_KEY) == 7
    assert ingest.labelled_rows().tolist() == [False, True, True, False]


def test_events_of_an_unlabelled_key_evicted_before_the_report_still_count_under_other(tmp_path):
    # gumbeld_events_total counts events; a key past the label cap adds to __other__, whether or not
    # it is evicted before the next publish reports them.
    ingest, registry, _ = _ingest(tmp_path, max_key_labels=1)
    codec = EventCodec(LABELS)
    ingest.add(codec.decode([{"key": "labelled", "category": "a"}]))
    ingest.report_events()
    ingest.add(codec.decode([{"key": "other", "category": "a"}] * 3))
    ingest.keys.remove(["other"], reason="ttl")
    ingest.report_events()
    assert _events(registry, OTHER_KEY) == 3


def test_bad_event_log_is_rate_limited(caplog):
    now = [0.0]
    log = BadEventLog(10.0, clock=lambda: now[0])
    batch = EventCodec(LABELS).decode([b"x"])
    with caplog.at_level("WARNING", logger="gumbeld.ingest"):
        for t in (0.0, 1.0, 2.0, 11.0):
            now[0] = t
            log.report(batch.bad)
    assert len(caplog.records) == 2
    assert "'not_json': 3" in caplog.records[1].getMessage()


def test_open_categories_count_as_sparse_cells_and_a_freed_row_drops_its_own(tmp_path):
    from daemon.categories import CategoryTable
    table = CategoryTable(max_categories=100_000)
    metrics = Metrics(CollectorRegistry(), max_key_labels=10, clock=lambda: 0.0)
    keys = KeyTable(2, "evict_least_recent")
    ingest = Ingest(keys, table, metrics=metrics, dead_letters=DeadLetterFile(tmp_path / "dead.jsonl"),
                    bad_log=BadEventLog(10.0, clock=lambda: 0.0), clock=Clock(), open_width=table.max_categories)
    cats = table.indices(["x", "y", "z"])
    ingest.add(EventBatch(["k", "j"], np.array([0, 0, 1, 0]), cats[[0, 1, 2, 0]]))
    ingest.add(EventBatch(["k"], np.array([0]), cats[[2]]))
    pending = ingest.take()
    rows, categories, counts, _ = pending.cells
    assert list(zip(rows.tolist(), categories.tolist(), counts.tolist())) == [(0, 0, 2.0), (0, 1, 1.0), (0, 2, 1.0),
                                                                             (1, 2, 1.0)]
    ingest.add(EventBatch(["j"], np.array([0]), cats[[1]]))
    ingest.add(EventBatch(["new"], np.array([0, 0]), cats[[0, 0]]))   # evicts k (least recent): row 0 is new's
    pending = ingest.take()
    assert list(zip(*(a.tolist() for a in pending.cells[:3]))) == [(0, 0, 2.0), (1, 1, 1.0)]
    assert pending.reset_rows == [0]
    ingest.add(EventBatch(["j"], np.array([0]), cats[[2]]))          # new (row 0) is now the least recent
    ingest.add(EventBatch(["late"], np.array([0]), cats[[1]]))       # evicts new, whose counts are pending
    pending = ingest.take()
    assert list(zip(*(a.tolist() for a in pending.cells[:3]))) == [(0, 1, 1.0), (1, 2, 1.0)], "new's counts went with it"


def test_late_events_are_dead_lettered_and_counted_and_the_rest_of_the_batch_counts(tmp_path):
    ingest, registry, _ = _ingest(tmp_path, lateness_ms=60_000)
    batch = EventBatch(["k1", "k2"], np.array([0, 0, 1, 0, 1]), np.array([0, 1, 2, 2, 0]),
                       times=np.array([1_796_637_600_000, 1_796_637_530_000, 5, 1_796_637_540_000, 6]))
    assert ingest.add(batch) == 4
    assert _dense(ingest.take()).tolist() == [[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]
    assert registry.get_sample_value("gumbeld_bad_events_total", {"reason": "late"}) == 1
    (late,) = _dead_letters(tmp_path)
    assert late["reason"] == "late" and late["raw"] == {"key": "k1", "category": "b", "time": "2026-12-07T09:58:50.000Z"}
    assert "model.allowed_lateness" in late["detail"]
