"""Key eviction against a real Kafka-protocol broker: tombstones on the learned-distribution topic,
and evictions that survive a restart.

The service runs in-process (``Service(settings)``), consuming a topic of the session's broker and
publishing to another, which the tests read back from the beginning with aiokafka.
"""
import asyncio
import contextlib
import itertools
import json
import time

import numpy as np
from aiokafka import AIOKafkaProducer

from daemon.service import Service
from daemon.settings import GumbeldSettings
from tests.daemon.serving import until
from tests.kafka_broker import consume_all, create_topic, produce

LABELS = ["red", "green", "blue"]
TTL = 1.5
PUBLISH_INTERVAL = 0.3
_ids = itertools.count()



def _topics(prefix: str) -> dict[str, str]:
    n = next(_ids)
    return {name: f"{prefix}-{name}-{n}-{int(time.time() * 1000)}" for name in ("events", "learned")}


def _settings(bootstrap: str, topics: dict, group: str, tmp_path, jsonl: str, **model) -> GumbeldSettings:
    return GumbeldSettings(
        source={"kind": "kafka", "kafka": {"bootstrap_servers": bootstrap, "topics": [topics["events"]],
                                           "group_id": group, "request_timeout": 3.0, "retry_backoff_max": 2.0,
                                           # a restart rejoins the group in seconds, not the default 45 s
                                           "session_timeout_ms": 6000, "heartbeat_interval_ms": 500,
                                           "rebalance_timeout_ms": 6000}},
        sinks={"stdout": False, "jsonl_path": str(tmp_path / jsonl),
               "kafka": {"topic": topics["learned"], "enable_idempotence": False, "send_timeout": 5.0}},
        dead_letter={"path": str(tmp_path / "dead.jsonl")},
        model={"categories": LABELS, **model},
        metrics={"port": 0}, publish_interval=PUBLISH_INTERVAL,
        checkpoint={"directory": str(tmp_path / "state"), "interval": 1.0})


def _messages(key: str, n: int, seed: int, p=(0.6, 0.3, 0.1)) -> list[tuple[bytes, bytes]]:
    rng = np.random.default_rng(seed)
    return [(key.encode(), json.dumps({"category": LABELS[c]}).encode()) for c in rng.choice(3, size=n, p=p)]


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _evicted(service: Service, reason: str) -> float:
    return service.registry.get_sample_value("gumbeld_keys_evicted_total", {"reason": reason}) or 0.0




async def _stop(service: Service, task: asyncio.Task) -> None:
    service.stopping.set()
    assert await asyncio.wait_for(task, timeout=30) == 0


@contextlib.asynccontextmanager
async def _feeding(bootstrap: str, topic: str, key: str, every: float = 0.2):
    """Keep ``key`` alive: a few events every ``every`` seconds while the block runs."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await producer.start()
    stop = asyncio.Event()

    async def feed():
        seed = 100
        while not stop.is_set():
            seed += 1
            await asyncio.gather(*[await producer.send(topic, value, key=k) for k, value in _messages(key, 10, seed)])
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    feeder = asyncio.create_task(feed())
    try:
        yield
    finally:
        stop.set()
        await feeder
        await producer.stop()


def _by_key(records) -> dict[str, list]:
    out: dict[str, list] = {}
    for record in records:
        out.setdefault(record.key.decode(), []).append(record)
    return out


async def test_an_idle_key_gets_a_tombstone_and_stays_evicted_after_a_restart(kafka_broker, tmp_path):
    bootstrap, topics = kafka_broker.bootstrap, _topics("ttl")
    await create_topic(bootstrap, topics["events"], 2)
    await create_topic(bootstrap, topics["learned"], 1)
    await produce(bootstrap, topics["events"], _messages("a", 300, 1) + _messages("b", 300, 2, p=(0.1, 0.2, 0.7)))

    async with _feeding(bootstrap, topics["events"], "a"):
        # first run: a and b counted and published; then b, without events for TTL seconds, is evicted
        first = Service(_settings(bootstrap, topics, "ttl", tmp_path, "first.jsonl", key_ttl=TTL))
        task = asyncio.create_task(first.serve())
        await until(task, lambda: {"a", "b"} <= {r["key"] for r in _lines(tmp_path / "first.jsonl")}, 60,
                     "a and b published")
        await until(task, lambda: any(r.get("evicted") and r["key"] == "b" for r in _lines(tmp_path / "first.jsonl")),
                     30, "b evicted")
        assert "b" not in first.training.keys and "a" in first.training.keys
        assert _evicted(first, "ttl") == 1
        await asyncio.sleep(2 * PUBLISH_INTERVAL)
        await _stop(first, task)

        records = _by_key(await consume_all(bootstrap, topics["learned"]))
        assert records["b"][-1].value is None, "b's last message is a tombstone (null value, key b)"
        assert [r.value for r in records["b"][:-1]] and all(r.value is not None for r in records["b"][:-1])
        a_before = [json.loads(r.value)["version"] for r in records["a"]]
        a_events = json.loads(records["a"][-1].value)["events"]
        assert a_before == sorted(a_before) and len(set(a_before)) == len(a_before)
        eviction = next(r for r in _lines(tmp_path / "first.jsonl") if r.get("evicted"))
        assert eviction["key"] == "b" and eviction["reason"] == "ttl"

        # the restart takes longer than the TTL (a redeploy): a's events wait in the topic meanwhile
        await asyncio.sleep(TTL + 0.5)

        # second run on the same state directory: b does not come back, a goes on
        second = Service(_settings(bootstrap, topics, "ttl", tmp_path, "second.jsonl", key_ttl=TTL))
        task = asyncio.create_task(second.serve())
        await until(task, lambda: getattr(second, "_started", False), 60, "restart")
        assert "b" not in second.training.keys, "an evicted key is not restored from the checkpoint"
        await until(task, lambda: any(r.get("key") == "a" and r.get("events") not in (None, a_events)
                                       for r in _lines(tmp_path / "second.jsonl")), 60, "a's new events counted")
        await asyncio.sleep(3 * TTL)  # several publishes, longer than the TTL
        assert "b" not in second.training.keys and "a" in second.training.keys
        a_evicted_after_restart = _evicted(second, "ttl")
        await _stop(second, task)

    after = _by_key(await consume_all(bootstrap, topics["learned"]))
    assert len(after["b"]) == len(records["b"]), "b is not published again after its tombstone"
    assert not [r for r in _lines(tmp_path / "second.jsonl") if r.get("key") == "b"]

    second_run = [r for r in _lines(tmp_path / "second.jsonl") if r.get("key") == "a"]
    assert a_evicted_after_restart == 0 and not [r for r in second_run if r.get("evicted")], (
        "a, whose events kept arriving, was evicted by the TTL after the restart: "
        f"{[(r.get('version'), r.get('events'), r.get('reason')) for r in second_run[:4]]}")
    assert all(r.value is not None for r in after["a"]), "a never gets a tombstone"
    versions = [json.loads(r.value)["version"] for r in after["a"]]
    assert versions == sorted(versions) and len(set(versions)) == len(versions), "a's version only increases"
    # the final publish at the stop may have sent one more version of a than a_before saw
    assert second_run[0]["version"] > a_before[-1], "a's versions continue across the restart"


async def test_a_new_key_past_max_keys_evicts_the_least_recent_with_a_max_keys_tombstone(kafka_broker, tmp_path):
    bootstrap, topics = kafka_broker.bootstrap, _topics("maxkeys")
    await create_topic(bootstrap, topics["events"], 1)
    await create_topic(bootstrap, topics["learned"], 1)
    await produce(bootstrap, topics["events"], _messages("a", 300, 3))
    service = Service(_settings(bootstrap, topics, "maxkeys", tmp_path, "out.jsonl", max_keys=1,
                                max_keys_policy="evict_least_recent"))
    task = asyncio.create_task(service.serve())
    try:
        await until(task, lambda: any(r.get("key") == "a" for r in _lines(tmp_path / "out.jsonl")), 60, "a published")
        await produce(bootstrap, topics["events"], _messages("b", 300, 4))
        await until(task, lambda: any(r.get("key") == "b" and not r.get("evicted")
                                       for r in _lines(tmp_path / "out.jsonl")), 30, "b published")
        assert service.training.keys.names == ["b"]
        assert _evicted(service, "max_keys") == 1
        await asyncio.sleep(2 * PUBLISH_INTERVAL)
    finally:
        await _stop(service, task)

    lines = _lines(tmp_path / "out.jsonl")
    evictions = [r for r in lines if r.get("evicted")]
    assert [(r["key"], r["reason"]) for r in evictions] == [("a", "max_keys")]
    assert not [r for r in lines[lines.index(evictions[0]) + 1:] if r["key"] == "a"]
    b_snapshots = [r for r in lines if r["key"] == "b"]
    assert b_snapshots[-1]["events"] == 300, "b's events are all counted, none dead-lettered"
    assert not (tmp_path / "dead.jsonl").exists() or (tmp_path / "dead.jsonl").read_text() == ""

    records = _by_key(await consume_all(bootstrap, topics["learned"]))
    assert records["a"][-1].value is None and all(r.value is not None for r in records["a"][:-1])
    assert records["a"][:-1], "a was published before its tombstone"
    assert all(r.value is not None for r in records["b"])
    assert json.loads(records["b"][-1].value)["events"] == 300
