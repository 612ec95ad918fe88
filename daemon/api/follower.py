"""Following the learned-distribution topic from its start, for ``gumbeld serve``.

A :class:`TopicFollower` reads every partition of the topic from the beginning, outside any
consumer group, and hands each poll's records to :class:`~daemon.api.published.Published` (the
latest value per key; a tombstone removes its key). It has caught up once every partition was
read to the end it had when following began: until then a key it does not hold may still be in
the topic (:attr:`restoring`), and ``/readyz`` says ``catch-up``. It goes on following for good.
"""
from __future__ import annotations

import asyncio
import logging

import orjson

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from ..health import Health
from .published import Published

log = logging.getLogger("gumbeld")
POLL_MS = 500
CONDITION = "catch-up"


class TopicFollower:
    def __init__(self, options: dict, topic: str, published: Published, health: Health) -> None:
        self.options, self.topic, self.published, self.health = options, topic, published, health
        self.caught_up = False
        self.skipped = self._skipped_logged = 0
        self._ends: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def restoring(self) -> bool:
        return not self.caught_up

    async def start(self) -> None:
        """Connect, and start every partition of the topic at its beginning (KafkaError if that fails)."""
        self.health.set_not_ready(CONDITION, f"reading {self.topic} to its end")
        consumer = AIOKafkaConsumer(**{**self.options, "group_id": None, "enable_auto_commit": False,
                                       "auto_offset_reset": "earliest"})
        await consumer.start()
        try:
            partitions = sorted(consumer.partitions_for_topic(self.topic) or ())
            if not partitions:
                await consumer.topics()
                partitions = sorted(consumer.partitions_for_topic(self.topic) or ())
            if not partitions:
                raise KafkaError(f"topic {self.topic} does not exist or has no partitions")
            assigned = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            self._ends = await consumer.end_offsets(assigned)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def follow(self) -> None:
        """Take every record as it comes, until cancelled."""
        consumer = self._consumer
        while True:
            polled = await consumer.getmany(timeout_ms=POLL_MS)
            records = [record for batch in polled.values() for record in batch]
            if records:
                keys, values = await asyncio.to_thread(self._snapshots, records)
                await asyncio.to_thread(self.published.take, keys, values)
            if not self.caught_up:
                await self._check_caught_up()

    def _snapshots(self, records: list) -> tuple[list[bytes], list[bytes | None]]:
        """The records that are snapshots or tombstones of a key; others are skipped and counted
        (:attr:`skipped`), so that nothing served fails to parse."""
        keys, values = [], []
        for record in records:
            if record.key is None or not _is_snapshot(record.value):
                self.skipped += 1
                continue
            keys.append(record.key)
            values.append(record.value)
        if self.skipped > self._skipped_logged:
            log.warning("%s: %d records skipped so far (no key, or not a snapshot)", self.topic, self.skipped)
            self._skipped_logged = self.skipped
        return keys, values

    async def _check_caught_up(self) -> None:
        for tp, end in self._ends.items():
            # Some brokers list the last batch's first offset as the end: a fetch's high watermark is the true one
            end = max(end, self._consumer.highwater(tp) or 0)
            if await self._consumer.position(tp) < end:
                return
        self.caught_up = True
        self.health.set_ready(CONDITION)
        log.info("caught up with %s: %d keys", self.topic, len(self.published))

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()


def _is_snapshot(value: bytes | None) -> bool:
    """A tombstone, or a JSON object with what ``/v1`` reads from a snapshot."""
    if value is None:
        return True
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    return (isinstance(record, dict) and isinstance(record.get("version"), int) and isinstance(record.get("key"), str)
            and isinstance(record.get("categories"), list) and isinstance(record.get("probabilities"), list)
            and len(record["categories"]) == len(record["probabilities"]) > 0
            and isinstance(record.get("events"), int) and isinstance(record.get("published_at"), str))
