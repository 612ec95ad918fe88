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
>>> batch = writer.plan({"a": b"row-a"}, owners={"a": {tp}}, live={"a"}, assigned={tp}, offsets={tp: 41})
>>> [(topic, partition, key, value, dict(headers)[SOURCE_OFFSET_HEADER])
...  for topic, messages in batch.by_topic.items() for key, value, headers, partition in messages]
[('events.state', 2, b'a', b'row-a', b'41')]
>>> writer.written(batch)
>>> batch = writer.plan({}, owners={"a": {tp}}, live=set(), assigned={tp}, offsets={tp: 50})
>>> [(key, value) for key, value, *_ in batch.by_topic["events.state"]], batch.tombstones
([(b'a', None)], ['a'])

:meth:`StateWriter.plan` reads only what it is given (pass a copy of :meth:`StateWriter.written_keys`
from another thread): at 100,000 keys the messages take ~0.45 s to build, which the service does on
its training thread rather than on the event loop.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from .restore import FORMAT_HEADER, SOURCE_OFFSET_HEADER
from .rows import ROW_FORMAT


@dataclass
class StateBatch:
    """The messages of one write, per state topic, and what they record once acknowledged."""

    by_topic: dict[str, list[tuple]] = field(default_factory=dict)  # (key, value, headers, partition), as
    #   :meth:`daemon.kafka.producer.Producer.send_all` takes them; value None: a tombstone
    rows: dict[str, TopicPartition] = field(default_factory=dict)   # key → the source partition of its row
    tombstones: list[str] = field(default_factory=list)
    nbytes: int = 0                                                 # bytes of the rows' values

    def __len__(self) -> int:
        return sum(map(len, self.by_topic.values()))


class StateWriter:
    """Turns changed rows into state-topic messages and sends them (``producer``: :class:`~daemon.kafka.producer.Producer`)."""

    def __init__(self, producer, state_topics: Mapping[str, str], *, row_format: int = ROW_FORMAT) -> None:
        self.producer, self.state_topics, self.row_format = producer, dict(state_topics), row_format
        self._written: dict[str, TopicPartition] = {}  # keys with a row on a state topic → its source partition

    def written_keys(self) -> dict[str, TopicPartition]:
        """A copy of the keys with a row on a state topic, for :meth:`plan` on another thread."""
        return dict(self._written)

    def plan(self, values: Mapping[str, bytes], *, owners: Mapping[str, Collection[TopicPartition]],
             live: Collection[str], assigned: Collection[TopicPartition], offsets: Mapping[TopicPartition, int],
             written: Mapping[str, TopicPartition] | None = None) -> StateBatch:
        """Messages for the changed rows ``values`` (key → row) and for written keys no longer ``live``,
        restricted to the ``assigned`` partitions; ``offsets`` are the source positions the rows include;
        ``written``: the keys with rows (default: this writer's own, when called on the event loop)."""
        batch, headers = StateBatch(), {}
        for key, value in values.items():
            for tp in owners.get(key, ()):
                if tp in assigned and tp.topic in self.state_topics:
                    self._add(batch, headers, key, value, tp, offsets)
                    batch.rows[key] = tp
                    batch.nbytes += len(value)
        for key, tp in (self._written if written is None else written).items():
            if key not in live and tp in assigned:
                self._add(batch, headers, key, None, tp, offsets)
                batch.tombstones.append(key)
        return batch

    def _add(self, batch: StateBatch, headers: dict, key: str, value: bytes | None, tp: TopicPartition,
             offsets: Mapping[TopicPartition, int]) -> None:
        if tp not in headers:  # one list per partition, shared by its messages
            offset = offsets.get(tp)
            headers[tp] = [(FORMAT_HEADER, str(self.row_format).encode())]
            if offset is not None:
                headers[tp].insert(0, (SOURCE_OFFSET_HEADER, str(offset).encode()))
        topic = self.state_topics[tp.topic]
        batch.by_topic.setdefault(topic, []).append((key.encode(), value, headers[tp], tp.partition))

    def written(self, batch: StateBatch) -> None:
        """``batch`` was acknowledged: remember which keys have rows (dict updates, not a loop per message)."""
        self._written.update(batch.rows)
        for key in batch.tombstones:
            self._written.pop(key, None)

    def restored(self, keys: Iterable[str], tp: TopicPartition) -> None:
        """``keys`` were restored from the state partition of ``tp``: they have rows."""
        for key in keys:
            self._written[key] = tp

    def forget(self, partitions: Collection[TopicPartition]) -> None:
        """``partitions`` went to other instances: their keys' rows are theirs to write."""
        self._written = {k: tp for k, tp in self._written.items() if tp not in partitions}

    async def send(self, batch: StateBatch) -> int:
        """Send and wait for every acknowledgement (acks=all); returns the bytes of the values sent."""
        for topic, messages in batch.by_topic.items():
            await self.producer.send_all(topic, messages)
        self.written(batch)
        return batch.nbytes
