import json
import math
import re
import tracemalloc

import numpy as np
import pytest

from daemon.categories import CategoryTable
from daemon.learning.full_supports import FullSupports
from daemon.learning.pending import Pending
from daemon.learning.learner import Learner
from daemon.snapshots import MODEL_NAME, Eviction, Publication, SnapshotBatch
from tests.daemon.snapshot_intervals import interval_fields
from gumbel_models import GANConfig

LABELS = ["red", "green", "blue"]
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CONTRACT_FIELDS = {"key", "categories", "probabilities", "empirical", "divergence", "temperature", "step",
                   "events", "effective_events", "intervals", "as_of", "published_at", "model", "version"}


def _publication(evictions=()) -> Publication:
    """A real publication: a learner trained a little on three keys, one with a masked-out category."""
    table = CategoryTable(len(LABELS))
    table.indices(LABELS)
    learner = Learner(GANConfig(n_categories=3, samples_per_step=32), table, FullSupports(3), seed=11, device="cpu",
                      round_seconds=10.0, active_set=False, clock=lambda: 1_767_225_600.25)
    counts = np.array([[90.0, 10.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 7.0], [0.0, 0.0, 0.0]])
    learner.absorb(Pending.of_counts(counts))
    model = learner.classes[3].model
    model.set_mask([0], np.array([[True, True, False]]))
    model.step(20)
    publication, _ = learner.publication(["shop", "ünïcode key", "blue-only", "quiet"], np.ones(4, dtype=bool), list(evictions),
                                         full_interval=60.0, tolerance=1e-3, labelled=np.ones(4, dtype=bool))
    return publication


def test_encoded_snapshots_parse_back_to_the_published_contract():
    publication = _publication().encode()
    assert len(publication) == 3 and len(publication.lines) == 3
    records = [json.loads(line) for line in publication.lines]
    assert [r["key"] for r in records] == ["shop", "ünïcode key", "blue-only"]  # "quiet" has no events
    for record in records:
        assert set(record) == CONTRACT_FIELDS
        assert record["categories"] == LABELS
        assert record["model"] == MODEL_NAME == "gumbel-softmax-gan"
        assert record["published_at"] == "2026-01-01T00:00:00.250Z"
        assert record["as_of"] is None  # counted without event times
        assert RFC3339_UTC.match(record["published_at"])
        assert len(record["probabilities"]) == len(record["empirical"]) == 3
        assert abs(sum(record["probabilities"]) - 1.0) <= 1e-6
        assert all(0.0 <= p <= 1.0 for p in record["probabilities"] + record["empirical"])
        assert math.isclose(sum(record["empirical"]), 1.0, abs_tol=1e-6)
        divergence = record["divergence"]
        assert set(divergence) == {"tv", "kl", "js"}
        assert 0.0 <= divergence["tv"] <= 1.0 and 0.0 <= divergence["js"] <= math.log(2) + 1e-9
        assert math.isfinite(divergence["kl"]) and divergence["kl"] >= -1e-6
        assert isinstance(record["temperature"], float) and record["temperature"] > 0
        for field in ("step", "events", "version"):
            assert type(record[field]) is int
        assert record["step"] == 20 and record["version"] == 1
    assert [r["events"] for r in records] == [100, 3, 7]
    assert records[0]["probabilities"][2] == 0.0      # a masked category is exactly 0
    assert records[0]["empirical"] == pytest.approx([0.9, 0.1, 0.0])
    # no prior: effective events are the events; each interval holds its histogram's proportion,
    # and a masked category's is exactly [0, 0]
    assert [r["effective_events"] for r in records] == [100.0, 3.0, 7.0]
    for r in records:
        intervals = r["intervals"]
        assert intervals["level"] == 0.9
        assert all(lo <= p <= hi for lo, p, hi in zip(intervals["lower"], r["empirical"], intervals["upper"]))
    assert (records[0]["intervals"]["lower"][2], records[0]["intervals"]["upper"][2]) == (0.0, 0.0)
    assert records[1]["intervals"]["upper"][0] - records[1]["intervals"]["lower"][0] > \
        records[0]["intervals"]["upper"][0] - records[0]["intervals"]["lower"][0]  # 3 events: wider than 100
    # tv as published is TV(learned, empirical) of the published vectors
    for r in records:
        tv = 0.5 * sum(abs(p - q) for p, q in zip(r["probabilities"], r["empirical"]))
        assert r["divergence"]["tv"] == pytest.approx(tv, abs=1e-5)
    # the Kafka form: keys are the distribution keys, values the same bytes as the lines
    assert publication.keys == [k.encode() for k in ("shop", "ünïcode key", "blue-only")]
    assert publication.values == publication.lines


def test_evictions_are_tombstones_for_kafka_and_records_in_json_lines():
    evictions = [Eviction("old", "ttl", "2026-01-01T00:00:00.250Z"),
                 Eviction("crowded-out", "max_keys", "2026-01-01T00:00:00.250Z")]
    publication = _publication(evictions).encode()
    assert len(publication) == 5
    assert publication.keys[3:] == [b"old", b"crowded-out"]
    assert publication.values[3:] == [None, None]
    assert all(value is not None for value in publication.values[:3])
    assert [json.loads(line) for line in publication.lines[3:]] == [
        {"key": "old", "evicted": True, "reason": "ttl", "evicted_at": "2026-01-01T00:00:00.250Z"},
        {"key": "crowded-out", "evicted": True, "reason": "max_keys", "evicted_at": "2026-01-01T00:00:00.250Z"}]


def test_a_publication_of_evictions_only():
    empty = SnapshotBatch.empty(temperature=1.0, published_at="2026-01-01T00:00:00.000Z")
    publication = Publication(empty, [Eviction("k", "ttl", "t")]).encode()
    assert (len(publication), publication.keys, publication.values) == (1, [b"k"], [None])
    assert json.loads(publication.lines[0])["evicted"] is True
    assert Publication(empty).encode().lines == []


def test_records_at_picks_the_snapshots_asked_for():
    batch = SnapshotBatch(keys=["a", "b", "c"], categories=[["x", "y"]] * 3,
                          learned=np.array([[0.1, 0.9], [0.5, 0.5], [0.7, 0.3]]),
                          empirical=np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]),
                          tv=np.array([0.1, 0.0, 0.3]), kl=np.array([0.2, 0.0, 0.4]), js=np.array([0.01, 0.0, 0.02]),
                          temperature=1.5, steps=np.array([1, 2, 3]), events=np.array([4, 5, 6]),
                          versions=np.array([7, 8, 9]), published_at="2026-01-01T00:00:00.000Z",
                          **interval_fields(np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]), np.array([4, 5, 6])))
    picked = batch.records_at([2, 0])
    assert [(r["key"], r["probabilities"], r["step"], r["events"], r["version"], r["divergence"]["tv"])
            for r in picked] == [("c", [0.7, 0.3], 3, 6, 9, 0.3), ("a", [0.1, 0.9], 1, 4, 7, 0.1)]
    assert [(r["effective_events"], r["intervals"]) for r in picked] == [
        (6.0, {"level": 0.9, "lower": batch.lower[2].tolist(), "upper": batch.upper[2].tolist()}),
        (4.0, {"level": 0.9, "lower": batch.lower[0].tolist(), "upper": batch.upper[0].tolist()})]
    assert batch.records() == batch.records_at([0, 1, 2])


def test_a_large_publication_encodes_every_snapshot_once_in_order():
    n, k = 2_500, 3
    rng = np.random.default_rng(0)
    learned = rng.dirichlet(np.ones(k), n)
    batch = SnapshotBatch(keys=[f"k{i}" for i in range(n)], categories=[LABELS] * n, learned=learned,
                          empirical=learned, tv=np.zeros(n), kl=np.zeros(n), js=np.zeros(n), temperature=1.0,
                          steps=np.arange(n), events=np.arange(n) + 1, versions=np.full(n, 2),
                          published_at="2026-01-01T00:00:00.000Z", **interval_fields(learned, np.arange(n) + 1))
    publication = Publication(batch, [Eviction("gone", "ttl", "t")]).encode()
    assert len(publication.lines) == n + 1
    records = [json.loads(line) for line in publication.lines[:n]]
    assert [r["key"] for r in records] == batch.keys
    assert [r["events"] for r in records] == list(range(1, n + 1))
    assert publication.values[-1] is None and publication.keys[-1] == b"gone"


def test_encoded_snapshots_hold_their_own_length_not_the_encoders_buffer():
    """``/v1`` and sinks that fell behind keep every key's value: each must cost its bytes, not the
    4–8 KiB buffer orjson wrote it in (tolerance: Python's object header and allocator rounding)."""
    publication = _publication()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        publication.encode()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 2 * sum(len(value) for value in publication.values) + 4096, held
