"""A real Kafka-protocol broker for tests, and small async helpers to use it.

By default a local Tansu broker (see :mod:`daemon.tools.bench.tansu`) is started; it is memory-only
and lacks the idempotent producer, so producers here use ``enable_idempotence=False``. A local
broker can be paused (SIGSTOP) and resumed (SIGCONT) to simulate an outage: a restart would lose
its topics. An external cluster (Apache Kafka, Redpanda) can be used instead, without pause.
"""
from __future__ import annotations

import asyncio
import os
import signal
from typing import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code
from aiokafka.structs import ConsumerRecord

from daemon.kafka.read import read_to_end
from daemon.tools.bench.tansu import TansuBroker, start_tansu


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
    """Every record of ``topic`` up to its high watermark, from the beginning (no consumer group).

    Raises ``TimeoutError`` if the end is not reached within ``timeout`` seconds.
    """
    return await read_to_end({"bootstrap_servers": bootstrap}, topic, timeout=timeout)
