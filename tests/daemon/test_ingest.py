import json

import numpy as np
from prometheus_client import CollectorRegistry

from daemon.events import EventCodec
from daemon.ingest import BadEventLog, Ingest
from daemon.keys import KeyTable
from daemon.metrics import Metrics
from daemon.sinks import DeadLetterFile

LABELS = ["a", "b", "c"]


def _ingest(tmp_path, max_keys=10):
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_key_labels=10, clock=lambda: 0.0)
    dead = DeadLetterFile(tmp_path / "dead.jsonl")
    ingest = Ingest(KeyTable(max_keys), LABELS, metrics=metrics, dead_letters=dead,
                    bad_log=BadEventLog(10.0, clock=lambda: 0.0), now_rfc3339=lambda: "2026-01-01T00:00:00Z")
    return ingest, registry, dead


def _dead_letters(tmp_path):
    return [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]


def test_bad_events_are_counted_and_dead_lettered_while_good_ones_in_the_batch_count(tmp_path):
    ingest, registry, dead = _ingest(tmp_path)
    records = [{"key": "k1", "category": "a"}, b"{oops", {"key": "k1", "category": "zzz"},
               {"key": "k2", "category": 2}, {"key": "k1", "category": None}, {"key": "k1", "category": "a"}]
    counted = ingest.add(EventCodec(LABELS).decode(records))
    dead.close()
    assert counted == 3
    n_keys, counts = ingest.take()
    assert n_keys == 2 and counts.tolist() == [[2, 0, 0], [0, 0, 1]]
    assert ingest.take()[1] is None  # taken once
    letters = _dead_letters(tmp_path)
    assert [d["reason"] for d in letters] == ["not_json", "unknown_category", "wrong_type"]
    assert letters[0]["raw"] == "{oops" and letters[1]["raw"] == {"key": "k1", "category": "zzz"}
    for reason in ("not_json", "unknown_category", "wrong_type"):
        assert registry.get_sample_value("gumbeld_bad_events_total", {"reason": reason}) == 1
    assert registry.get_sample_value("gumbeld_events_total", {"key": "k1"}) == 2


def test_keys_past_the_limit_are_dead_lettered_not_trained(tmp_path):
    ingest, registry, dead = _ingest(tmp_path, max_keys=1)
    ingest.add(EventCodec(LABELS).decode([{"key": "first", "category": "a"}, {"key": "second", "category": "b"}]))
    dead.close()
    n_keys, counts = ingest.take()
    assert n_keys == 1 and counts.tolist() == [[1, 0, 0]]
    assert _dead_letters(tmp_path)[0]["reason"] == "key_limit"
    assert registry.get_sample_value("gumbeld_bad_events_total", {"reason": "key_limit"}) == 1


def test_counts_accumulate_across_batches_and_new_keys(tmp_path):
    ingest, _, _ = _ingest(tmp_path)
    codec = EventCodec(LABELS)
    ingest.add(codec.decode([{"key": "x", "category": "a"}]))
    ingest.add(codec.decode([{"key": "y", "category": "c"}, {"key": "x", "category": "a"}]))
    n_keys, counts = ingest.take()
    assert n_keys == 2 and np.array_equal(counts, [[2, 0, 0], [0, 0, 1]])


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
