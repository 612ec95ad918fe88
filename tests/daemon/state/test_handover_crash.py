"""kill -9 of an instance in the middle of a hand-over: its keys go on elsewhere, every count exact.

Instances are real ``python -m daemon run`` processes (SIGKILL needs a process); the second one has
a state directory of its own, so what it knows of the first one's keys comes from the state topic.
"""
import asyncio
import json
import time
from collections import Counter

import numpy as np

from tests.daemon.process import Daemon
from tests.kafka_broker import create_topic, produce

LABELS = ["a", "b", "c"]
KEYS = [f"key-{i}" for i in range(8)]


def _messages(n: int, seed: int) -> tuple[list[tuple[bytes, bytes]], Counter]:
    rng = np.random.default_rng(seed)
    keys, categories = rng.integers(len(KEYS), size=n), rng.choice(3, size=n, p=(0.5, 0.3, 0.2))
    return ([(KEYS[k].encode(), json.dumps({"category": LABELS[c]}).encode()) for k, c in zip(keys, categories)],
            Counter(KEYS[k] for k in keys))


def _flags(bootstrap: str, topic: str, group: str) -> list[str]:
    return ["--source.kind", "kafka", "--source.kafka.bootstrap_servers", bootstrap,
            "--source.kafka.topics", json.dumps([topic]), "--source.kafka.group_id", group,
            "--source.kafka.request_timeout", "3", "--source.kafka.retry_backoff_max", "2",
            "--source.kafka.session_timeout_ms", "6000", "--source.kafka.heartbeat_interval_ms", "500",
            "--source.kafka.rebalance_timeout_ms", "6000", "--sinks.kafka.enable_idempotence", "false",
            "--model.categories", json.dumps(LABELS), "--publish_interval", "0.3", "--checkpoint.interval", "1"]


def _events(daemon: Daemon) -> dict[str, int]:
    latest = {}
    for snapshot in daemon.snapshots:
        latest[snapshot["key"]] = snapshot["events"]
    return latest


async def test_kill_9_during_a_hand_over_loses_nothing_and_counts_nothing_twice(kafka_broker, tmp_path):
    bootstrap, topic, group = kafka_broker.bootstrap, f"crash-{time.time_ns()}", f"g-{time.time_ns()}"
    await create_topic(bootstrap, topic, 4)
    first_part, first = _messages(4000, 1)
    await produce(bootstrap, topic, first_part)
    a = Daemon(tmp_path / "a", *_flags(bootstrap, topic, group))
    await asyncio.to_thread(a.wait_for, lambda: _events(a) == dict(first), 90)

    second_part, second = _messages(4000, 2)
    producing = asyncio.create_task(produce(bootstrap, topic, second_part))
    b = Daemon(tmp_path / "b", *_flags(bootstrap, topic, group))
    await asyncio.to_thread(b.wait_for, lambda: any("assigned" in line for line in b.log), 60)
    a.kill()  # mid hand-over: no drain, no final checkpoint, no leaving the group
    await producing
    expected = dict(first + second)
    try:
        await asyncio.to_thread(b.wait_for, lambda: _events(b) == expected, 90)
        await asyncio.sleep(2.0)  # anything counted twice would show by now
        assert _events(b) == expected
    finally:
        assert b.stop()[0] == 0
