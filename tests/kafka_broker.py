"""A real Kafka-protocol broker for tests, and small async helpers to use it.

By default a local Tansu broker (see :mod:`daemon.bench.tansu`) is started; it is memory-only
and lacks the idempotent producer, so producers here use ``enable_idempotence=False``. A local
broker can be paused (SIGSTOP) and resumed (SIGCONT) to simulate an outage: a restart would lose
its topics. An external cluster (Apache Kafka, Redpanda) can be used instead, without pause.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code
from aiokafka.structs import ConsumerRecord

from daemon.bench.tansu import TansuBroker, start_tansu


class KafkaBroker:
    """A broker reachable at ``bootstrap``; ``pause``/``resume`` only for a local Tansu process."""

    def __init__(self, bootstrap: str, tansu: TansuBroker | None = None) -> None:
        self.bootstrap, self._tansu = bootstrap, tansu

    @classmethod
    def start_local(cls, *, timeout: float = 30.0) -> "KafkaBroker":
        tansu = start_tansu(timeout=timeout)
        return cls(tansu.bootstrap, tansu)

    @classmethod
    def external(cls, bootstrap: str) -> "KafkaBroker":
        return cls(bootstrap)

    @property
    def local(self) -> bool:
        return self._tansu is not None

    def pause(self) -> None:
        """Freeze the broker: connections stay open but nothing is answered, as in a network outage."""
        os.kill(self._local_process().pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self._local_process().pid, signal.SIGCONT)

    def stop(self) -> None:
        if self._tansu is not None:
            self._tansu.stop()

    def _local_process(self):
        if self._tansu is None:
            raise RuntimeError(f"the broker at {self.bootstrap} is external; only a local Tansu broker can pause")
        return self._tansu.process


async def create_topic(bootstrap: str, name: str, partitions: int, config: dict[str, str] | None = None) -> None:
    """Create ``name`` with ``partitions`` partitions (replication 1); an existing topic is an error."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})])
    finally:
        await admin.close()
    for topic, code, *message in response.topic_errors:
        if code:
            error = for_code(code)
            raise error(f"cannot create topic {topic!r}: {message[0] if message else error.__name__}")


async def produce(bootstrap: str, topic: str, messages: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Send ``(key, value)`` messages and wait until the broker has acknowledged every one."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        deliveries = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, topic: str, timeout: float = 10.0) -> list[ConsumerRecord]:
    """Every record of a topic nobody is writing to, from the beginning (no consumer group).

    The end is the larger of the end offsets and the high watermark of the fetches: Tansu's end
    offsets stop at the first record of the last record batch. Raises ``TimeoutError`` if the
    end is not reached within ``timeout`` seconds.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic, timeout)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        while not await _reached(consumer, end):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(records)} records of {topic!r} in {timeout:g}s, "
                                   f"short of the end offsets {sorted(end.values())}")
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def _reached(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    for partition, offset in end.items():
        highwater = consumer.highwater(partition)  # None until a fetch of the partition answered
        if highwater is None or await consumer.position(partition) < max(offset, highwater):
            return False
    return True


async def _partitions(consumer: AIOKafkaConsumer, topic: str, timeout: float) -> list[TopicPartition]:
    deadline = time.monotonic() + timeout
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic!r} has no partitions after {timeout:g}s")
        await consumer.topics()  # refreshes the metadata
        await asyncio.sleep(0.1)

