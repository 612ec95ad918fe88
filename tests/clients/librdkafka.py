"""librdkafka, through the ``confluent_kafka`` package, as a producer of events and a topic reader.

librdkafka is the client under most non-Java Kafka clients (Python, Go, .NET, Rust, …), with its
own codecs, batching, idempotent producer and transactions. The broker must be addressed as
``127.0.0.1``: Tansu listens on IPv4 only, and ``localhost`` may resolve to ``::1`` first.
"""
from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

FLUSH_TIMEOUT = 30.0
_groups = itertools.count()


@dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = ()  # in order; a name may repeat
    timestamp: int = 0  # the record's CreateTime, epoch ms; 0: when it is sent


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def produce(bootstrap: str, topic: str, messages: Iterable[Message], config: dict | None = None) -> list[tuple[int, int]]:
    """Send ``messages`` in order and wait until every one is acknowledged; ``config`` adds librdkafka
    settings (``{"compression.type": "zstd"}``). Returns each message's ``(partition, offset)``;
    raises on any delivery failure."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **(config or {})})
    failures: list = []
    placed: list[tuple[int, int] | None] = []
    for index, message in enumerate(messages):
        placed.append(None)
        while True:
            try:
                producer.produce(topic, value=message.value, key=message.key, headers=list(message.headers) or None,
                                 timestamp=message.timestamp,
                                 on_delivery=functools.partial(_delivered, placed, failures, index))
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
    _finish(producer, failures)
    return placed


def produce_transactions(bootstrap: str, topic: str, transactions: Iterable[Sequence[Message]],
                         transactional_id: str) -> list[tuple[int, int]]:
    """Each sequence of ``transactions`` in a transaction of its own, committed (a control record
    follows it on every partition it wrote to). Returns each message's ``(partition, offset)``."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5})
    failures: list = []
    placed: list = []
    producer.init_transactions(FLUSH_TIMEOUT)
    for messages in transactions:
        producer.begin_transaction()
        for message in messages:
            placed.append(None)
            producer.produce(topic, value=message.value, key=message.key,
                             on_delivery=functools.partial(_delivered, placed, failures, len(placed) - 1))
        producer.commit_transaction(FLUSH_TIMEOUT)
    _finish(producer, failures)
    return placed


def read(bootstrap: str, topic: str, ends: dict[int, int], timeout: float = 30.0) -> list[Record]:
    """Every record of ``topic`` from the beginning up to ``ends`` (partition → end offset, exclusive).

    The partitions are assigned, not subscribed: no group is joined and nothing is committed (the
    client still wants a ``group.id``). Raises ``TimeoutError`` when an end is not reached in time.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"gumbeld-tests-reader-{next(_groups)}",
                         "enable.auto.commit": False})
    short = {partition: end for partition, end in ends.items() if end > 0}
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in short])
        while short:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(records)} records of {topic} in {timeout:g} s; short: {short}")
            for message in consumer.consume(num_messages=1000, timeout=0.2):
                if message.error() is not None:
                    raise KafkaException(message.error())
                partition, offset = message.partition(), message.offset()
                if partition not in short or offset >= short[partition]:
                    continue
                records.append(Record(partition, offset, message.key(), message.value(), message.headers() or []))
                if offset + 1 >= short[partition]:
                    del short[partition]
    finally:
        consumer.close()
    return records


def _delivered(placed: list, failures: list, index: int, error, message) -> None:
    if error is not None:
        failures.append(error)
    else:
        placed[index] = (message.partition(), message.offset())


def _finish(producer: Producer, failures: list) -> None:
    left = producer.flush(FLUSH_TIMEOUT)
    if left or failures:
        raise RuntimeError(f"librdkafka: {left} messages not delivered in {FLUSH_TIMEOUT:g} s; failures: {failures[:5]}")
