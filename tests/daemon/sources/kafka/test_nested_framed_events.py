"""gumbeld against a real broker: Segment-style nested events behind a schema-registry frame."""
import asyncio
import json
import struct
import time

import numpy as np

from tests.daemon.process import Daemon
from tests.kafka_broker import consume_all, create_topic, produce

LABELS = ["a", "b", "c"]
COUNTS = {"user-1": 600, "user-2": 300}
SCHEMA_ID = 42


def _framed(event: dict) -> bytes:
    """As Confluent's JSON Schema serializer writes a value: magic byte 0, schema id, the JSON."""
    return struct.pack(">bI", 0, SCHEMA_ID) + json.dumps(event).encode()


def _track(user: str, category: str, i: int) -> dict:
    return {"type": "track", "event": "Product Viewed", "userId": user, "messageId": f"m-{user}-{i}",
            "properties": {"category": category, "price": 9.5}, "context": {"library": {"name": "analytics.js"}}}


async def test_nested_framed_events_are_counted_exactly_and_bad_frames_dead_lettered(kafka_broker, tmp_path):
    bootstrap, suffix = kafka_broker.bootstrap, f"{int(time.time() * 1000)}"
    events, dead = f"segment-events-{suffix}", f"segment-dead-{suffix}"
    await create_topic(bootstrap, events, 2)
    await create_topic(bootstrap, dead, 1)
    rng = np.random.default_rng(11)
    drawn = {user: rng.integers(0, len(LABELS), size=n) for user, n in COUNTS.items()}
    good = [(None, _framed(_track(user, LABELS[c], i))) for user, cs in drawn.items() for i, c in enumerate(cs)]
    unframed = json.dumps(_track("user-1", "a", -1)).encode()  # a producer without the serializer
    bad = [(None, unframed)] * 3 + [(None, b"\x00\x00\x01")] * 2 + [(None, _framed({"type": "identify"}))]
    messages = good + bad
    rng.shuffle(messages)
    await produce(bootstrap, events, messages)
    daemon = Daemon(tmp_path, "--source.kind", "kafka", "--source.kafka.bootstrap_servers", bootstrap,
                    "--source.kafka.topics", json.dumps([events]), "--source.kafka.group_id", f"segment-{suffix}",
                    "--source.kafka.value_framing", "confluent", "--source.kafka.key_from", "field",
                    "--source.kafka.key_field", "userId", "--source.kafka.category_field", "properties.category",
                    "--source.kafka.state.enabled", "false", "--source.kafka.request_timeout", "3",
                    # the test broker answers a group's first join after about half the session timeout
                    "--source.kafka.session_timeout_ms", "6000", "--source.kafka.heartbeat_interval_ms", "500",
                    "--dead_letter.topic", dead, "--sinks.kafka.enable_idempotence", "false",
                    "--model.categories", json.dumps(LABELS), "--publish_interval", "0.3",
                    "--checkpoint.interval", "0.5")

    def latest():
        return {s["key"]: s for s in daemon.snapshots}
    try:
        await asyncio.to_thread(daemon.wait_for, lambda: all(
            latest().get(k, {}).get("events", 0) >= n for k, n in COUNTS.items()), 60)
        await asyncio.sleep(1.0)  # a checkpoint flushes the dead letters; anything counted twice shows by now
    finally:
        assert daemon.stop()[0] == 0
    snapshots = latest()
    assert {k: s["events"] for k, s in snapshots.items()} == COUNTS
    for user, categories in drawn.items():  # each event's category came from its nested field
        counts = np.asarray(snapshots[user]["empirical"]) * COUNTS[user]
        assert np.round(counts).tolist() == np.bincount(categories, minlength=len(LABELS)).tolist()
    letters = [(dict(r.headers), r.value) for r in await consume_all(bootstrap, dead)]
    assert sorted((h["gumbeld.reason"].decode(), h["gumbeld.detail"].decode(), value) for h, value in letters) == [
        ("bad_framing", "2 bytes short of the 5-byte schema-registry frame (got 3 bytes)", b"\x00\x00\x01")] * 2 + [
        ("bad_framing", "magic byte 0x7b ('{'), expected 0x00: the value is not schema-registry framed", unframed)] * 3 + [
        ("missing_field", "no 'userId' field and no default key is set", _framed({"type": "identify"}))]
