"""daemon.tools.client: the snapshot contract, its checked-in schema, and a round trip through the real broker."""
import asyncio
import json
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError

from daemon.kafka.producer import Producer
from daemon.settings import KafkaSourceSettings
from daemon.sinks.kafka import KafkaSnapshotSink
from daemon.snapshots import Eviction, Publication, SnapshotBatch
from tests.daemon.snapshot_intervals import interval_fields
from daemon.tools.client import (
    Snapshot,
    Subscription,
    latest,
    latest_of,
    parse_line,
    schema,
)
from tests.kafka_broker import create_topic

SCHEMA = Path(__file__).resolve().parents[3] / "docs" / "snapshot.schema.json"


def _publication(keys: list[str], evicted: list[str] = (), version: int = 1) -> Publication:
    rng = np.random.default_rng(len(keys) + version)
    learned, empirical = rng.dirichlet(np.ones(4), len(keys)), rng.dirichlet(np.ones(4), len(keys))
    n = len(keys)
    batch = SnapshotBatch(list(keys), [["a", "b", "c", "d"]] * len(keys), learned, empirical, np.full(n, 0.1), np.full(n, 0.02),
                          np.full(n, 0.01), 1.0, np.arange(n) + 5, np.arange(n) + 10, np.full(n, version),
                          "2026-11-28T10:00:00.000Z", **interval_fields(empirical, np.arange(n) + 10))
    return Publication(batch, [Eviction(k, "ttl", "2026-11-28T10:00:00.000Z") for k in evicted]).encode()


def test_what_the_daemon_encodes_validates_as_a_snapshot():
    publication = _publication(["k1", "k2"])
    snapshots = [Snapshot.model_validate_json(v) for v in publication.values if v is not None]
    assert [s.key for s in snapshots] == ["k1", "k2"] and snapshots[1].events == 11
    assert snapshots[0].distribution().keys() == {"a", "b", "c", "d"}
    assert snapshots[1].effective_events == 11.0 and snapshots[1].intervals.level == 0.9
    assert len(snapshots[1].intervals.lower) == len(snapshots[1].intervals.upper) == 4


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(probabilities=[0.5, 0.5]), "probabilities has 2 values for 4 categories"),
    (lambda r: r.update(empirical=[0.5, 0.5, 0.5, 0.5]), "empirical sums to 2"),
    (lambda r: r["divergence"].update(tv=1.5), "less than or equal to 1"),
    (lambda r: r.update(version=0), "greater than or equal to 1"),
    (lambda r: r.pop("key"), "key"),
    (lambda r: r["intervals"].update(lower=[0.1, 0.1, 0.1]), "3 lower and 4 upper bounds"),
    (lambda r: r["intervals"].update(lower=[0.9] * 4, upper=[0.1] * 4), "not 0 <= lower <= upper <= 1"),
    (lambda r: r["intervals"].update(level=1.0), "less than 1"),
    (lambda r: r.update(effective_events=-1.0), "greater than or equal to 0"),
])
def test_a_snapshot_breaking_the_contract_is_refused(change, message):
    record = orjson.loads(_publication(["k"]).values[0])
    change(record)
    with pytest.raises(ValidationError, match=message):
        Snapshot.model_validate(record)


def test_the_checked_in_json_schema_is_the_models():
    assert json.loads(SCHEMA.read_text()) == schema(), "regenerate: python -m daemon.tools.client > docs/snapshot.schema.json"


def test_latest_of_applies_tombstones_and_skips_malformed_values():
    values = dict(zip(["a", "b"], _publication(["a", "b"]).values))
    malformed = []
    result = latest_of([("a", values["a"]), ("b", values["b"]), ("a", None), ("c", b"{nope")], malformed)
    assert list(result) == ["b"] and [key for key, _ in malformed] == ["c"]


def test_a_json_line_is_a_snapshot_or_an_eviction_record_or_an_error():
    publication = _publication(["k"], evicted=["gone"])
    snapshot_line, eviction_line = publication.lines
    assert parse_line(snapshot_line).snapshot.key == "k"
    eviction = parse_line(eviction_line)
    assert (eviction.key, eviction.snapshot) == ("gone", None)
    for bad in (b"{nope", b'{"key": "x", "evicted": false}', b'{"evicted": true}', b"[1, 2]"):
        with pytest.raises(ValueError):
            parse_line(bad)


async def test_a_subscription_that_cannot_reach_its_broker_says_so_and_leaves_nothing_open(recwarn):
    import gc
    import socket

    with socket.socket() as free:  # bound, never listening: connections are refused
        free.bind(("127.0.0.1", 0))
        subscription = Subscription("t", bootstrap_servers=f"127.0.0.1:{free.getsockname()[1]}")
        with pytest.raises(KafkaConnectionError):
            async for _ in subscription:
                pass
    gc.collect()
    assert not [w for w in recwarn if "Unclosed AIOKafkaConsumer" in str(w.message)]


async def test_a_round_trip_through_the_broker_with_a_tombstone(kafka_broker, tmp_path):
    topic = f"client-{time.time_ns()}"
    await create_topic(kafka_broker.bootstrap, topic, 1)
    sink = KafkaSnapshotSink(Producer(KafkaSourceSettings(bootstrap_servers=kafka_broker.bootstrap),
                                      enable_idempotence=False, timeout=10.0), topic)
    subscription = Subscription(topic, bootstrap_servers=kafka_broker.bootstrap)
    updates = []

    async def follow():
        async for update in subscription:
            updates.append(update)

    follower = asyncio.create_task(follow())
    try:
        await sink.publish(_publication(["x", "y"]))
        await sink.publish(_publication(["y"], evicted=["x"], version=2))
        snapshots = await latest(topic, bootstrap_servers=kafka_broker.bootstrap)
        assert list(snapshots) == ["y"] and snapshots["y"].version == 2
        for _ in range(200):
            if len(updates) == 4:
                break
            await asyncio.sleep(0.05)
        assert [(u.key, u.snapshot and u.snapshot.version) for u in updates] == [("x", 1), ("y", 1), ("y", 2), ("x", None)]
        assert list(subscription.latest) == ["y"] and subscription.malformed == 0
    finally:
        follower.cancel()
        await sink.aclose()
