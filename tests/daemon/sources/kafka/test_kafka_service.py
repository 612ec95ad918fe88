"""gumbeld against a real Kafka-protocol broker: learn, survive, dead-letter, scale out."""
import asyncio
import itertools
import json
import time

import numpy as np

from tests.daemon.process import Daemon
from tests.kafka_broker import consume_all, create_topic, produce

LABELS = ["a", "b", "c", "d"]
TRUTHS = {"k1": [0.7, 0.2, 0.1, 0.0], "k2": [0.25, 0.25, 0.25, 0.25], "k3": [0.0, 0.1, 0.3, 0.6]}
_ids = itertools.count()


def _topics(prefix: str) -> dict:
    n = next(_ids)
    return {name: f"{prefix}-{name}-{n}-{int(time.time())}" for name in ("events", "learned", "dead")}


async def _create(bootstrap: str, topics: dict) -> None:
    await create_topic(bootstrap, topics["events"], 4)
    await create_topic(bootstrap, topics["learned"], 1)
    await create_topic(bootstrap, topics["dead"], 1)


def _messages(n_per_key: int, seed: int, keys=TRUTHS) -> list[tuple[bytes, bytes]]:
    rng = np.random.default_rng(seed)
    out = []
    for key, truth in keys.items():
        for category in rng.choice(len(LABELS), size=n_per_key, p=truth):
            out.append((key.encode(), json.dumps({"category": LABELS[category]}).encode()))
    rng.shuffle(out)
    return out


def _flags(bootstrap: str, topics: dict, group: str, *extra: str) -> list[str]:
    return ["--source.kind", "kafka", "--source.kafka.bootstrap_servers", bootstrap,
            "--source.kafka.topics", json.dumps([topics["events"]]), "--source.kafka.group_id", group,
            "--source.kafka.request_timeout", "3", "--source.kafka.retry_backoff_max", "2",
            "--sinks.kafka.topic", topics["learned"], "--sinks.kafka.enable_idempotence", "false",
            "--sinks.kafka.send_timeout", "5", "--dead_letter.topic", topics["dead"],
            "--model.categories", json.dumps(LABELS), "--publish_interval", "0.5", "--checkpoint.interval", "1",
            *extra]


def _latest(snapshots: list[dict]) -> dict[str, dict]:
    latest = {}
    for snap in snapshots:
        latest[snap["key"]] = snap
    return latest


def _tv(p, q) -> float:
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


def _events_reach(daemon: Daemon, counts: dict[str, int]):
    def reached():
        latest = _latest(daemon.snapshots)
        return latest if all(k in latest and latest[k]["events"] >= n for k, n in counts.items()) else None
    return reached


async def test_three_keys_on_four_partitions_are_learned_and_published_to_the_topic(kafka_broker, tmp_path):
    bootstrap, topics = kafka_broker.bootstrap, _topics("learn")
    await _create(bootstrap, topics)
    await produce(bootstrap, topics["events"], _messages(20_000, seed=1))
    daemon = Daemon(tmp_path, *_flags(bootstrap, topics, "learn"))
    try:
        # every event counted (learning may reach the truth before the last polls are in) and learned
        await asyncio.to_thread(daemon.wait_for, lambda: (lambda l: l if len(l) == 3 and all(
            l[k]["events"] == 20_000 and _tv(l[k]["probabilities"], TRUTHS[k]) <= 0.02 for k in TRUTHS) else None)(
            _latest(daemon.snapshots)), 90)
    finally:
        assert daemon.stop()[0] == 0
    published = _latest(json.loads(r.value) for r in await consume_all(bootstrap, topics["learned"]))
    assert set(published) == set(TRUTHS)
    for key, truth in TRUTHS.items():
        assert _tv(published[key]["probabilities"], truth) <= 0.02
        assert published[key]["events"] == 20_000
    records = await consume_all(bootstrap, topics["learned"])
    assert {r.key.decode() for r in records} == set(TRUTHS)  # message key = distribution key


async def test_kill_9_mid_stream_loses_nothing_and_recounts_at_most_one_checkpoint_interval(kafka_broker, tmp_path):
    bootstrap, topics = kafka_broker.bootstrap, _topics("crash")
    await _create(bootstrap, topics)
    first_half, second_half = _messages(10_000, seed=2), _messages(10_000, seed=3)
    await produce(bootstrap, topics["events"], first_half)
    daemon = Daemon(tmp_path, *_flags(bootstrap, topics, "crash"))
    await asyncio.to_thread(daemon.wait_for, _events_reach(daemon, {k: 5_000 for k in TRUTHS}), 90)
    producing = asyncio.create_task(produce(bootstrap, topics["events"], second_half))
    await asyncio.sleep(0.5)
    daemon.kill()  # SIGKILL: no drain, no final checkpoint
    await producing
    restarted = Daemon(tmp_path, *_flags(bootstrap, topics, "crash"))
    try:
        latest = await asyncio.to_thread(restarted.wait_for, _events_reach(restarted, {k: 20_000 for k in TRUTHS}), 90)
        await asyncio.sleep(2.0)  # anything re-counted would have arrived by now
        latest = _latest(restarted.snapshots)
    finally:
        code = restarted.stop()[0]
        assert code == 0, "".join(restarted.log)[-4000:]
    for key in TRUTHS:
        recounted = latest[key]["events"] - 20_000
        assert recounted >= 0, "events were lost"
        # a checkpoint interval (1 s) holds at most everything produced in it; here all 20,000
        # events of a key arrive within ~1 s, so the bound is their number; seeking to the
        # checkpointed offsets normally makes it zero
        assert recounted <= 20_000 // 2


async def test_malformed_messages_are_dead_lettered_with_reasons_and_good_ones_counted(kafka_broker, tmp_path):
    bootstrap, topics = kafka_broker.bootstrap, _topics("bad")
    await _create(bootstrap, topics)
    good = _messages(2_000, seed=4, keys={"k1": TRUTHS["k1"]})
    kinds = {"not_json": b"{nope", "wrong_type": b'{"category": 3.5}', "unknown_category": b'{"category": "zz"}',
             "empty": b"", "oversized": b'{"category": "a", "pad": "' + b"x" * 5_000 + b'"}'}
    bad = [(b"k1", value) for value in kinds.values() for _ in range(20)]  # 100 of 2,100: ~5%
    mixed = good + bad
    np.random.default_rng(5).shuffle(mixed)
    await produce(bootstrap, topics["events"], mixed)
    daemon = Daemon(tmp_path, *_flags(bootstrap, topics, "bad", "--source.kafka.max_message_bytes", "4096"))
    try:
        latest = await asyncio.to_thread(daemon.wait_for, _events_reach(daemon, {"k1": 2_000}), 90)
        await asyncio.sleep(1.5)  # a checkpoint flushes the dead letters
        latest = _latest(daemon.snapshots)
    finally:
        assert daemon.stop()[0] == 0
    assert latest["k1"]["events"] == 2_000
    letters = await consume_all(bootstrap, topics["dead"])
    reasons = [dict(r.headers)["gumbeld.reason"].decode() for r in letters]
    assert sorted(reasons) == sorted(reason for reason in kinds for _ in range(20))
    for record in letters:
        headers = dict(record.headers)
        assert headers["gumbeld.source.topic"].decode() == topics["events"]
        assert int(headers["gumbeld.source.offset"]) >= 0 and "gumbeld.source.partition" in headers
        assert record.key == b"k1"
        if headers["gumbeld.reason"] == b"not_json":
            assert record.value == kinds["not_json"]


async def test_a_paused_broker_flips_readiness_and_loses_nothing(pausable_kafka_broker, tmp_path):
    broker = pausable_kafka_broker
    bootstrap, topics = broker.bootstrap, _topics("pause")
    await _create(bootstrap, topics)
    await produce(bootstrap, topics["events"], _messages(3_000, seed=6))
    daemon = Daemon(tmp_path, *_flags(bootstrap, topics, "pause"))
    try:
        await asyncio.to_thread(daemon.wait_for, _events_reach(daemon, {k: 3_000 for k in TRUTHS}), 90)
        assert daemon.get("/readyz")[0] == 200
        broker.pause()
        try:
            status, reason = await asyncio.to_thread(
                daemon.wait_for, lambda: (lambda r: r if r[0] == 503 else None)(daemon.get("/readyz")), 30)
            assert "Kafka" in reason
            assert daemon.get("/metrics")[0] == 200 and daemon.get("/livez")[0] == 200
            await asyncio.sleep(20 - 5)
        finally:
            broker.resume()
        await asyncio.to_thread(daemon.wait_for, lambda: daemon.get("/readyz")[0] == 200, 60)
        await produce(bootstrap, topics["events"], _messages(2_000, seed=7))
        await asyncio.to_thread(daemon.wait_for, _events_reach(daemon, {k: 5_000 for k in TRUTHS}), 90)
    finally:
        assert daemon.stop()[0] == 0


async def test_two_instances_split_the_partitions_and_each_key_has_one_publisher(kafka_broker, tmp_path):
    bootstrap, topics = kafka_broker.bootstrap, _topics("group")
    await _create(bootstrap, topics)
    keys = {f"key{i}": TRUTHS["k2"] for i in range(12)}
    await produce(bootstrap, topics["events"], _messages(500, seed=8, keys=keys))
    flags = _flags(bootstrap, topics, "group", "--source.kafka.session_timeout_ms", "10000",
                   "--source.kafka.heartbeat_interval_ms", "500")
    one = Daemon(tmp_path / "one", *flags)
    await asyncio.to_thread(one.wait_for, lambda: len(_latest(one.snapshots)) == len(keys), 90)
    two = Daemon(tmp_path / "two", *flags)
    try:
        await asyncio.to_thread(two.wait_for, lambda: _assignments(two) >= 1, 90)
        await asyncio.to_thread(one.wait_for, lambda: _assignments(one) >= 2, 90)
        since = time.time()  # every key gets new events now: its owner, and only it, publishes it
        await produce(bootstrap, topics["events"], _messages(500, seed=9, keys=keys))

        def recent():
            return {name: {s["key"] for s in d.snapshots if _epoch(s["published_at"]) >= since}
                    for name, d in (("one", one), ("two", two))}
        await asyncio.to_thread(one.wait_for, lambda: recent()["one"] | recent()["two"] == set(keys), 60)
        await asyncio.sleep(2.0)  # a second owner, were there one, would have published by now
        recent = recent()
    finally:
        assert one.stop()[0] == 0 and two.stop()[0] == 0
    assert recent["one"] and recent["two"], "both instances own partitions"
    assert not recent["one"] & recent["two"], "no key is published by both"
    assert recent["one"] | recent["two"] == set(keys)


def _assignments(daemon: Daemon) -> int:
    return sum("gumbeld.kafka: assigned" in line for line in daemon.log)


def _epoch(rfc3339: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
