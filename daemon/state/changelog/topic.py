"""The state topics: one compacted topic per source topic, partitioned like it.

Partition ``p`` of a state topic holds the rows of the keys read from partition ``p`` of its source
topic, so whoever is assigned a source partition restores from the state partition of the same
number. :func:`ensure_state_topics` creates missing state topics (``cleanup.policy=compact``) and
refuses one whose partition count differs from its source topic's: its rows would be read by the
wrong instances.
"""
from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

log = logging.getLogger("gumbeld.kafka")
STATE_TOPIC_CONFIG = {"cleanup.policy": "compact"}
DEFAULT_REPLICAS = 3


class StateTopicError(Exception):
    """A state topic cannot be used: the message says which and what to do."""


async def partition_counts(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """Partitions of each of ``topics`` that exists (listing first: a metadata request for a
    missing topic may create it on brokers that auto-create topics)."""
    existing = set(await admin.list_topics()) & set(topics)
    if not existing:
        return {}
    counts = {}
    for described in await admin.describe_topics(sorted(existing)):
        if described["error_code"]:
            error = for_code(described["error_code"])
            raise StateTopicError(f"cannot describe topic {described['topic']!r}: {error.__name__}")
        counts[described["topic"]] = len(described["partitions"])
    return counts


async def ensure_state_topics(admin: AIOKafkaAdminClient, state_topics: dict[str, str], *,
                              replication_factor: int | None) -> dict[str, int]:
    """Create the missing state topics (``source → state`` names) like their source topics, with
    ``replication_factor`` replicas (``None``: 3, or the number of brokers if fewer); returns the
    partition count of each source topic. Raises :class:`StateTopicError` when a source topic does
    not exist or a state topic has another partition count."""
    sources = await partition_counts(admin, list(state_topics))
    missing_sources = sorted(set(state_topics) - set(sources))
    if missing_sources:
        raise StateTopicError(f"source topic(s) {', '.join(missing_sources)} do not exist: their state "
                              "topics would have no partition count to follow")
    for attempt in range(2):  # another instance may create the same topic meanwhile
        existing = await partition_counts(admin, list(state_topics.values()))
        for source, state in state_topics.items():
            if state in existing and existing[state] != sources[source]:
                raise StateTopicError(
                    f"state topic {state!r} has {existing[state]} partitions but its source topic {source!r} has "
                    f"{sources[source]}: rows would go to the wrong instances. Delete {state!r} (its keys then "
                    "restart from the local checkpoints) or name another with source.kafka.state.topic")
        missing = [(source, state) for source, state in state_topics.items() if state not in existing]
        if not missing:
            return sources
        if replication_factor is None:  # the usual production replication, within what the cluster has
            replication_factor = min(DEFAULT_REPLICAS, len((await admin.describe_cluster())["brokers"]))
        wanted = [NewTopic(state, sources[source], replication_factor, topic_configs=STATE_TOPIC_CONFIG)
                  for source, state in missing]
        response = await admin.create_topics(wanted)
        raced = False
        for topic, code, *message in response.topic_errors:
            if code == TopicAlreadyExistsError.errno:
                raced = True
            elif code:
                error = for_code(code)
                raise StateTopicError(f"cannot create state topic {topic!r}: "
                                      f"{message[0] if message and message[0] else error.__name__}")
            else:
                log.info("created state topic %s (%d partitions, compacted)", topic, sources[
                    next(s for s, t in state_topics.items() if t == topic)])
        if not raced:
            return sources
    return sources
