"""State topics on the real broker: created like their source topics, refused when they differ."""
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from daemon.state.changelog.topic import (
    StateTopicError,
    ensure_state_topics,
    partition_counts,
)
from tests.kafka_broker import create_topic


def _name(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}"


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    return admin


async def test_a_missing_state_topic_is_created_with_the_source_partitions(kafka_broker):
    source, state = _name("events"), _name("events-state")
    await create_topic(kafka_broker.bootstrap, source, 3)
    admin = await _admin(kafka_broker.bootstrap)
    try:
        assert await ensure_state_topics(admin, {source: state}, replication_factor=None) == {source: 3}
        assert await partition_counts(admin, [state]) == {state: 3}
        # a second start finds it and leaves it
        assert await ensure_state_topics(admin, {source: state}, replication_factor=1) == {source: 3}
    finally:
        await admin.close()


async def test_a_state_topic_partitioned_unlike_its_source_is_refused(kafka_broker):
    source, state = _name("events"), _name("events-state")
    await create_topic(kafka_broker.bootstrap, source, 4)
    await create_topic(kafka_broker.bootstrap, state, 2, {"cleanup.policy": "compact"})
    admin = await _admin(kafka_broker.bootstrap)
    try:
        with pytest.raises(StateTopicError, match=r"has 2 partitions but its source topic .* has 4"):
            await ensure_state_topics(admin, {source: state}, replication_factor=1)
    finally:
        await admin.close()


async def test_a_missing_source_topic_is_refused_and_nothing_created(kafka_broker):
    source, state = _name("absent"), _name("absent-state")
    admin = await _admin(kafka_broker.bootstrap)
    try:
        with pytest.raises(StateTopicError, match="do not exist"):
            await ensure_state_topics(admin, {source: state}, replication_factor=1)
        assert await partition_counts(admin, [source, state]) == {}
    finally:
        await admin.close()
