"""Running gumbeld against the real broker for the client tests: topic names, events, flags, and
what the daemon published."""
from __future__ import annotations

import asyncio
import itertools
import json
import time

import numpy as np

from tests.clients.librdkafka import Message
from tests.daemon.process import Daemon
from tests.kafka_broker import consume_all, create_topic

LABELS = ["a", "b", "c", "d"]
TRUTH = [0.4, 0.3, 0.2, 0.1]
_ids = itertools.count()


def unique_name(prefix: str) -> str:
    return f"clients-{prefix}-{next(_ids)}-{int(time.time() * 1000)}"


def create_topics(bootstrap: str, topics, partitions: int) -> None:
    async def create() -> None:
        for topic in topics:
            await create_topic(bootstrap, topic, partitions)
    asyncio.run(create())


def random_events(keys: list[str], n: int, seed: int) -> list[Message]:
    """``n`` JSON events ``{"category": …}``, each keyed by one of ``keys`` at random (fixed seed)."""
    rng = np.random.default_rng(seed)
    return [Message(keys[k].encode(), json.dumps({"category": LABELS[c]}).encode())
            for k, c in zip(rng.integers(len(keys), size=n), rng.choice(len(LABELS), size=n, p=TRUTH))]


def daemon_flags(bootstrap: str, topics: list[str], learned: str, dead: str, *extra: str) -> list[str]:
    return ["--source.kind", "kafka", "--source.kafka.bootstrap_servers", bootstrap,
            "--source.kafka.topics", json.dumps(topics), "--source.kafka.group_id", unique_name("group"),
            "--source.kafka.request_timeout", "3", "--source.kafka.retry_backoff_max", "2",
            # the broker holds a join for a share of the rebalance timeout, waiting for other members
            "--source.kafka.session_timeout_ms", "6000", "--source.kafka.rebalance_timeout_ms", "2000",
            "--sinks.kafka.topic", learned, "--sinks.kafka.enable_idempotence", "false",  # Tansu lacks aiokafka's
            "--sinks.kafka.send_timeout", "5", "--dead_letter.topic", dead,               # InitProducerId
            "--model.categories", json.dumps(LABELS), "--publish_interval", "0.3", "--checkpoint.interval", "1",
            *extra]


def latest_snapshots(lines: list[dict]) -> dict[str, dict]:
    """Each key's newest snapshot among the daemon's stdout lines (eviction records end a key)."""
    latest: dict[str, dict] = {}
    for line in lines:
        if line.get("evicted"):
            latest.pop(line["key"], None)
        else:
            latest[line["key"]] = line
    return latest


def wait_counted(daemon: Daemon, expected: dict[str, int], timeout: float = 60.0) -> None:
    """Wait until every key of ``expected`` has a snapshot counting at least its events."""
    def reached() -> bool:
        latest = latest_snapshots(list(daemon.snapshots))
        return all(key in latest and latest[key]["events"] >= n for key, n in expected.items())
    daemon.wait_for(reached, timeout)


def stop_cleanly(daemon: Daemon) -> None:
    code, _ = daemon.stop()
    assert code == 0, "".join(daemon.log)[-4000:]


def records_of(bootstrap: str, topic: str) -> list:
    """The records of ``topic`` as aiokafka reads them: the reference the other readers must match."""
    return asyncio.run(consume_all(bootstrap, topic, timeout=20))
