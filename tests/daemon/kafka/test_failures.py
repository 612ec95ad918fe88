"""Failures of the Kafka path are loud: counted, logged at most once a minute per cause, on /readyz.

The reporter's rules on their own, then against the real broker: a fetch that cannot be decoded
holds its partition and says so until it works, and a broker that refuses idempotent producers is
named, turns /readyz 503 and makes SIGTERM exit non-zero (the final checkpoint's state rows fail).
"""
import asyncio
import json
import logging
import re
import time

import aiokafka.codec
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from daemon.health import Health
from daemon.kafka.failures import LOG_INTERVAL, KafkaFailures
from daemon.metrics import Metrics
from daemon.settings import KafkaSourceSettings
from daemon.sources.kafka.decode import RecordDecoder
from daemon.sources.kafka.source import KafkaSource
from tests.daemon.process import Daemon
from tests.kafka_broker import create_topic, produce


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _reporter():
    registry, health, clock = CollectorRegistry(), Health(), Clock()
    metrics = Metrics(registry, max_key_labels=1)
    return KafkaFailures(metrics, health, clock=clock), registry, health, clock


def _errors(registry, operation: str, reason: str) -> float:
    return registry.get_sample_value("gumbeld_kafka_errors_total", {"operation": operation, "reason": reason}) or 0.0


def test_every_failure_counts_but_logs_once_a_minute_per_cause(caplog):
    failures, registry, _, clock = _reporter()
    with caplog.at_level(logging.ERROR, logger="gumbeld.kafka"):
        for _ in range(5):
            failures.failed("fetch", ConnectionError("reset"), where="events:3")
            clock.now += 1.0
        failures.failed("commit", TimeoutError(), where="events:3")  # another cause logs at once
        clock.now += LOG_INTERVAL
        failures.failed("fetch", ConnectionError("reset"), where="events:3")
    assert _errors(registry, "fetch", "ConnectionError") == 6
    assert _errors(registry, "commit", "TimeoutError") == 1
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["Kafka fetch failed, events:3: ConnectionError: reset",
                     "Kafka commit failed, events:3: TimeoutError",
                     "Kafka fetch failed, events:3: ConnectionError: reset (4 more since the last report)"]


def test_readyz_turns_503_when_a_failure_repeats_and_back_when_the_operation_works():
    failures, _, health, _ = _reporter()
    failures.failed("produce", OSError("broken pipe"), where="topic learned")
    assert health.ready() == (True, [])  # once is noise: the next interval retries
    failures.failed("state_write", OSError("broken pipe"), where="topic state")
    failures.failed("produce", OSError("broken pipe"), where="topic learned")
    assert health.ready() == (False, ["kafka produce: topic learned: OSError: broken pipe"])
    failures.succeeded("state_write")  # another operation's success mends nothing here
    assert health.ready()[0] is False
    failures.succeeded("produce")
    assert health.ready() == (True, []) and failures.failing("produce") == 0


async def test_a_fetch_that_cannot_be_decoded_holds_its_partition_loudly_until_it_works(kafka_broker, monkeypatch):
    topic = f"lz4-{time.time_ns()}"
    await create_topic(kafka_broker.bootstrap, topic, 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=False,
                                compression_type="lz4")
    await producer.start()
    try:
        for i in range(20):
            await producer.send(topic, json.dumps({"category": "b"}).encode(), key=b"k")
        await producer.flush()
    finally:
        await producer.stop()
    failures, registry, health, _ = _reporter()
    settings = KafkaSourceSettings(bootstrap_servers=kafka_broker.bootstrap, topics=[topic], group_id=topic,
                                   state={"enabled": False}, session_timeout_ms=6000, rebalance_timeout_ms=2000)
    source = KafkaSource(settings, RecordDecoder(["a", "b"]), health=health,
                         metrics=Metrics(CollectorRegistry(), max_key_labels=1), failures=failures)
    monkeypatch.setattr(aiokafka.codec, "has_lz4", lambda: False)  # as without cramjam
    batches = source.batches()
    pending = asyncio.ensure_future(batches.__anext__())
    try:
        deadline = time.monotonic() + 30
        while failures.failing("fetch") < 2:
            assert time.monotonic() < deadline, "the fetch never failed"
            assert not pending.done(), "records arrived although lz4 could not be decoded"
            await asyncio.sleep(0.1)
        ready, reasons = health.ready()
        assert not ready
        assert re.fullmatch(rf"kafka fetch: partitions {topic}:0 \(records not yet read\): .*lz4.*", reasons[0]), reasons
        assert _errors(registry, "fetch", "UnsupportedCodecError") >= 2
        monkeypatch.undo()  # the codec is back: the same records arrive, none skipped
        batch = await asyncio.wait_for(pending, 30)
        assert len(batch) == 20 and source.progress.offsets[next(iter(source.progress.offsets))] == 20
        assert health.ready() == (True, [])
    finally:
        pending.cancel()
        await batches.aclose()
        await source.stop()


def test_a_broker_refusing_idempotent_producers_is_named_and_sigterm_exits_non_zero(kafka_broker, tmp_path):
    """Tansu grants no producer ids: with the defaults, snapshots and state rows cannot be written."""
    topics = {name: f"idem-{name}-{time.time_ns()}" for name in ("events", "learned")}
    for name in topics.values():
        asyncio.run(create_topic(kafka_broker.bootstrap, name, 1))
    asyncio.run(produce(kafka_broker.bootstrap, topics["events"], [(b"k", b'{"category": "1"}')] * 10))
    daemon = Daemon(tmp_path, "--source.kind", "kafka", "--source.kafka.bootstrap_servers", kafka_broker.bootstrap,
                    "--source.kafka.topics", json.dumps([topics["events"]]), "--source.kafka.group_id", topics["events"],
                    "--sinks.kafka.topic", topics["learned"], "--publish_interval", "0.5",
                    "--checkpoint.interval", "1", "--source.kafka.retry_backoff_max", "1",
                    # the broker holds a join for a share of these timeouts, waiting for other members
                    "--source.kafka.session_timeout_ms", "6000", "--source.kafka.rebalance_timeout_ms", "2000")
    try:
        def refused():
            status, body = daemon.get("/readyz")
            return status == 503 and "kafka state_write" in body and body
        body = daemon.wait_for(refused, timeout=90)
        assert "sinks.kafka.enable_idempotence = false" in body
        _, metrics = daemon.get("/metrics")
        assert re.search(r'gumbeld_kafka_errors_total\{operation="produce",reason="idempotent_producer_refused"\} [1-9]',
                         metrics), metrics
        log = "".join(daemon.log)
        assert "Kafka state_write failed" in log and "Kafka produce failed" in log
        assert "refused the idempotent producer" in log
        assert "checkpoint failed" in log and "IdempotenceRefused" in log
        assert log.count("checkpoint failed") == 1  # once a minute, although one fails every second
    finally:
        code, _ = daemon.stop()
    assert code == 1
    assert "stopped without a final checkpoint and commit" in "".join(daemon.log)
