"""Reading partitions from a start offset up to their high watermark, outside any consumer group.

For whatever must see what a topic holds now, and then stop: the ingest bench, tests, state kept
in a compacted topic. A :class:`PartitionReader` has a consumer of its own (manually assigned, no
group, no commits); it reads each partition from its start offset (the beginning by default) to
the partition's end, yields the records poll by poll, and ends when every partition is read.

The end of a partition is fixed by the first fetch that answers for it: the larger of the end
offset listed when reading starts and that fetch's high watermark. Some brokers (Tansu among
them) list the first offset of the last record batch as the end offset; a fetch response carries
the true high watermark (as :meth:`daemon.sources.kafka.source.KafkaSource._probe_forever` also relies on).
Records written after the end was fixed are left out, so a topic that is being written to still
ends. A partition with no records needs one fetch round trip (``fetch_max_wait_ms``) to end::

    async with PartitionReader({"bootstrap_servers": bootstrap}, topic) as reader:
        async for records in reader:  # a list per poll, of any of the partitions
            ...
"""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

POLL_MS = 200  # the longest a poll waits for records; the end is checked after each


class PartitionReader:
    """``async with PartitionReader(options, topic) as reader: async for records in reader: ...``

    ``options``: client options (``bootstrap_servers``, TLS, SASL) and any other
    ``AIOKafkaConsumer`` arguments (e.g. ``max_poll_records``). Either ``topic`` (all its
    partitions) or ``partitions``; ``start`` maps partitions to the offset to read from (the
    others start at the beginning). ``timeout`` seconds bound the whole read, from entering the
    ``async with``: past them, iteration raises ``TimeoutError``.
    """

    def __init__(self, options: dict, topic: str | None = None, *, partitions: Sequence[TopicPartition] | None = None,
                 start: Mapping[TopicPartition, int] | None = None, timeout: float = 30.0) -> None:
        if (topic is None) == (partitions is None):
            raise ValueError("give a topic or its partitions, not both")
        self.topic, self.start, self.timeout = topic, dict(start or {}), timeout
        self.partitions: list[TopicPartition] = list(partitions or [])
        self.ends: dict[TopicPartition, int] = {}  # fixed per partition by its first fetch
        self.read = 0                               # records yielded so far
        self._options = options
        self._consumer: AIOKafkaConsumer | None = None
        self._listed: dict[TopicPartition, int] = {}
        self._deadline = 0.0

    async def __aenter__(self) -> "PartitionReader":
        self._deadline = time.monotonic() + self.timeout
        self._consumer = AIOKafkaConsumer(**{"auto_offset_reset": "earliest", **self._options,
                                             "group_id": None, "enable_auto_commit": False})
        try:
            await self._consumer.start()
            if not self.partitions:
                self.partitions = await self._partitions_of(self.topic)
            self._consumer.assign(self.partitions)
            beginning = [tp for tp in self.partitions if tp not in self.start]
            if beginning:
                await self._consumer.seek_to_beginning(*beginning)
            for tp, offset in self.start.items():
                self._consumer.seek(tp, offset)
            self._listed = await self._consumer.end_offsets(self.partitions)
        except BaseException:
            await self._consumer.stop()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self._consumer.stop()

    def __aiter__(self) -> AsyncIterator[list[ConsumerRecord]]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[list[ConsumerRecord]]:
        consumer, unread = self._consumer, set(self.partitions)
        while unread:
            if time.monotonic() > self._deadline:
                raise TimeoutError(f"read {self.read} records in {self.timeout:g} s; partitions "
                                   f"{sorted(map(str, unread))} short of their end")
            polled = await consumer.getmany(timeout_ms=POLL_MS)
            self._fix_ends(unread)
            records = []
            for tp, batch in polled.items():
                end = self.ends[tp]  # records came with a fetch, so its high watermark is known
                records.extend(batch if batch[-1].offset < end else [r for r in batch if r.offset < end])
            for tp in list(unread):
                if tp in self.ends and await consumer.position(tp) >= self.ends[tp]:
                    consumer.pause(tp)  # no more fetches of it
                    unread.discard(tp)
            if records:
                self.read += len(records)
                yield records

    def _fix_ends(self, partitions) -> None:
        for tp in partitions:
            highwater = self._consumer.highwater(tp)  # None until a fetch of the partition answered
            if tp not in self.ends and highwater is not None:
                self.ends[tp] = max(self._listed.get(tp) or 0, highwater)

    async def _partitions_of(self, topic: str) -> list[TopicPartition]:
        while True:
            found = self._consumer.partitions_for_topic(topic)
            if found:
                return [TopicPartition(topic, p) for p in sorted(found)]
            if time.monotonic() > self._deadline:
                raise TimeoutError(f"topic {topic!r} has no partitions after {self.timeout:g} s")
            await self._consumer.topics()  # refreshes the metadata
            await asyncio.sleep(0.1)


async def read_to_end(options: dict, topic: str | None = None, **kwargs) -> list[ConsumerRecord]:
    """Every record a :class:`PartitionReader` yields, in one list (per partition in offset order)."""
    async with PartitionReader(options, topic, **kwargs) as reader:
        return [record async for records in reader for record in records]
