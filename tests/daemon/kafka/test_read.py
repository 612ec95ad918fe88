"""PartitionReader against the real test broker: from a start offset to the high watermark, then stop."""
from __future__ import annotations

import time
import uuid

import pytest
from aiokafka import TopicPartition

from daemon.kafka.read import PartitionReader, read_to_end
from tests.kafka_broker import create_topic, produce


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_reads_every_record_of_every_partition_and_ends_at_empty_ones_too(kafka_broker):
    topic = _unique("read-all")
    await create_topic(kafka_broker.bootstrap, topic, partitions=4)
    sent = [(b"one-key", b"%d" % i) for i in range(300)]  # one key: one partition, three stay empty
    await produce(kafka_broker.bootstrap, topic, sent)

    async with PartitionReader({"bootstrap_servers": kafka_broker.bootstrap}, topic, timeout=30) as reader:
        records = [r async for batch in reader for r in batch]
        assert reader.read == 300
        assert sorted(reader.ends.values()) == [0, 0, 0, 300]  # the high watermarks, whatever was listed

    assert [(r.key, r.value) for r in records] == sent
    assert [r.offset for r in records] == list(range(300))


async def test_reads_from_the_given_offset(kafka_broker):
    topic = _unique("read-from")
    await create_topic(kafka_broker.bootstrap, topic, partitions=1)
    await produce(kafka_broker.bootstrap, topic, [(b"k", b"%d" % i) for i in range(50)])
    partition = TopicPartition(topic, 0)

    records = await read_to_end({"bootstrap_servers": kafka_broker.bootstrap}, partitions=[partition],
                                start={partition: 42}, timeout=30)
    assert [r.offset for r in records] == list(range(42, 50))
    assert await read_to_end({"bootstrap_servers": kafka_broker.bootstrap}, partitions=[partition],
                             start={partition: 50}, timeout=30) == []


async def test_an_empty_topic_ends_at_once(kafka_broker):
    topic = _unique("read-empty")
    await create_topic(kafka_broker.bootstrap, topic, partitions=2)
    started = time.monotonic()
    assert await read_to_end({"bootstrap_servers": kafka_broker.bootstrap}, topic, timeout=30) == []
    assert time.monotonic() - started < 5


async def test_records_written_after_the_end_was_fixed_are_not_read(kafka_broker):
    topic = _unique("read-moving")
    await create_topic(kafka_broker.bootstrap, topic, partitions=1)
    await produce(kafka_broker.bootstrap, topic, [(b"k", b"before-%d" % i) for i in range(20)])

    values = []
    async with PartitionReader({"bootstrap_servers": kafka_broker.bootstrap}, topic, timeout=30) as reader:
        async for batch in reader:
            if not values:  # the end is fixed by now: what is written next is past it
                await produce(kafka_broker.bootstrap, topic, [(b"k", b"after-%d" % i) for i in range(20)])
            values += [r.value for r in batch]
    assert values == [b"before-%d" % i for i in range(20)]


async def test_options_name_a_topic_or_partitions():
    with pytest.raises(ValueError):
        PartitionReader({"bootstrap_servers": "localhost:9"})
    with pytest.raises(ValueError):
        PartitionReader({"bootstrap_servers": "localhost:9"}, "t", partitions=[TopicPartition("t", 0)])
