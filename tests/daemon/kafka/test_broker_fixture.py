"""The test broker speaks enough Kafka for the daemon: partitioned topics, keys, consumer groups."""
from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from tests.kafka_broker import consume_all, create_topic, produce


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_keyed_messages_round_trip_through_a_partitioned_topic(kafka_broker):
    topic = _unique("fixture-round-trip")
    await create_topic(kafka_broker.bootstrap, topic, partitions=4)
    sent = [(f"key-{i % 10}".encode(), f"value-{i}".encode()) for i in range(1000)]

    await produce(kafka_broker.bootstrap, topic, sent)
    records = await consume_all(kafka_broker.bootstrap, topic, timeout=30)

    assert sorted((r.key, r.value) for r in records) == sorted(sent)
    assert {r.partition for r in records} == {0, 1, 2, 3}
    partitions_of_key: dict[bytes, set[int]] = {}
    for record in records:
        partitions_of_key.setdefault(record.key, set()).add(record.partition)
    assert all(len(p) == 1 for p in partitions_of_key.values())  # one key, one partition
    per_partition = Counter(r.partition for r in records)
    for partition in range(4):  # offsets are dense from 0 within each partition
        offsets = sorted(r.offset for r in records if r.partition == partition)
        assert offsets == list(range(per_partition[partition]))


async def test_a_group_member_commits_and_a_later_consumer_resumes_there(kafka_broker):
    topic, group = _unique("fixture-commit"), _unique("fixture-group")
    await create_topic(kafka_broker.bootstrap, topic, partitions=1)
    await produce(kafka_broker.bootstrap, topic, [(b"k", b"%d" % i) for i in range(20)])
    partition = TopicPartition(topic, 0)

    member = AIOKafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, group_id=group,
                              enable_auto_commit=False, auto_offset_reset="earliest")
    await member.start()  # joins the group and gets the partition assigned
    try:
        assert member.assignment() == {partition}
        await member.commit({partition: OffsetAndMetadata(7, "")})
    finally:
        await member.stop()

    resumed = AIOKafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=group, enable_auto_commit=False)
    await resumed.start()
    try:
        assert await resumed.committed(partition) == 7
        resumed.assign([partition])  # without a committed offset this would start at the beginning
        records = []
        for _ in range(50):  # bounded: a broker that loses the records fails the test, never hangs it
            records += (await resumed.getmany(partition, timeout_ms=200)).get(partition, [])
            if len(records) >= 13:
                break
        assert [r.value for r in records] == [b"%d" % i for i in range(7, 20)]
    finally:
        await resumed.stop()


async def test_a_paused_broker_answers_nothing_until_resumed(pausable_kafka_broker):
    broker = pausable_kafka_broker
    topic = _unique("fixture-outage")
    await create_topic(broker.bootstrap, topic, partitions=1)

    broker.pause()
    try:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(produce(broker.bootstrap, topic, [(b"k", b"during")]), timeout=1.0)
    finally:
        broker.resume()

    await produce(broker.bootstrap, topic, [(b"k", b"after")])
    assert [r.value for r in await consume_all(broker.bootstrap, topic)] == [b"after"]
