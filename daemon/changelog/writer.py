"""Writing the state topics: at each checkpoint, the rows of the keys that changed and a
tombstone for each key that left.

A key's row goes to the state partition numbered like the source partition its events come from,
with headers saying the source offset the row includes events up to and the row format. A key
written before and no longer held (evicted, expired, dropped as invalid) gets a tombstone, so a
compacted state topic forgets it. Keys of partitions this instance no longer holds are neither
written nor tombstoned: their owner now is another instance.

>>> from aiokafka import TopicPartition
>>> writer = StateWriter(None, {"events": "events.state"})
>>> tp = TopicPartition("events", 2)
>>> batch = writer.batch({"a": b"row-a"}, owners={"a": {tp}}, live={"a"}, assigned={tp}, offsets={tp: 41})
>>> [(m.topic, m.partition, m.key, m.value, dict(m.headers)[SOURCE_OFFSET_HEADER]) for m in batch]
[('events.state', 2, b'a', b'row-a', b'41')]
>>> writer.written(batch)
>>> [(m.key, m.value) for m in writer.batch({}, owners={"a": {tp}}, live=set(), assigned={tp}, offsets={tp: 50})]
[(b'a', None)]
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from aiokafka import TopicPartition

from .restore import FORMAT_HEADER, SOURCE_OFFSET_HEADER
from .rows import ROW_FORMAT


@dataclass(frozen=True)
class StateMessage:
    topic: str
    partition: int
    key: bytes
    value: bytes | None       # None: a tombstone
    headers: list[tuple[str, bytes]]
    source: TopicPartition    # the source partition whose keys it holds


class StateWriter:
    """Turns changed rows into state-topic messages and sends them (``producer``: :class:`~daemon.kafka.producer.Producer`)."""

    def __init__(self, producer, state_topics: Mapping[str, str], *, row_format: int = ROW_FORMAT) -> None:
        self.producer, self.state_topics, self.row_format = producer, dict(state_topics), row_format
        self._written: dict[str, TopicPartition] = {}  # keys with a row on a state topic → its source partition

    def batch(self, values: Mapping[str, bytes], *, owners: Mapping[str, Collection[TopicPartition]],
              live: Collection[str], assigned: Collection[TopicPartition],
              offsets: Mapping[TopicPartition, int]) -> list[StateMessage]:
        """Messages for the changed rows ``values`` (key → row) and for written keys no longer ``live``,
        restricted to the ``assigned`` partitions; ``offsets`` are the source positions the rows include."""
        messages = []
        for key, value in values.items():
            for tp in owners.get(key, ()):
                if tp in assigned and tp.topic in self.state_topics:
                    messages.append(self._message(key, value, tp, offsets.get(tp)))
        for key, tp in self._written.items():
            if key not in live and tp in assigned:
                messages.append(self._message(key, None, tp, offsets.get(tp)))
        return messages

    def written(self, messages: Iterable[StateMessage]) -> None:
        """``messages`` were acknowledged: remember which keys have rows."""
        for m in messages:
            key = m.key.decode()
            if m.value is None:
                self._written.pop(key, None)
            else:
                self._written[key] = m.source

    def restored(self, keys: Iterable[str], tp: TopicPartition) -> None:
        """``keys`` were restored from the state partition of ``tp``: they have rows."""
        for key in keys:
            self._written[key] = tp

    def forget(self, partitions: Collection[TopicPartition]) -> None:
        """``partitions`` went to other instances: their keys' rows are theirs to write."""
        self._written = {k: tp for k, tp in self._written.items() if tp not in partitions}

    async def send(self, messages: list[StateMessage]) -> int:
        """Send and wait for every acknowledgement (acks=all); returns the bytes of the values sent."""
        by_topic: dict[str, list] = {}
        for m in messages:
            by_topic.setdefault(m.topic, []).append((m.key, m.value, m.headers, m.partition))
        for topic, batch in by_topic.items():
            await self.producer.send_all(topic, batch)
        self.written(messages)
        return sum(len(m.value) for m in messages if m.value is not None)

    def _message(self, key: str, value: bytes | None, tp: TopicPartition, offset: int | None) -> StateMessage:
        headers = [(FORMAT_HEADER, str(self.row_format).encode())]
        if offset is not None:
            headers.insert(0, (SOURCE_OFFSET_HEADER, str(offset).encode()))
        return StateMessage(self.state_topics[tp.topic], tp.partition, key.encode(), value, headers, tp)
