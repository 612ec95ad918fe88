"""Snapshots and dead letters to Kafka topics, each through a :class:`~daemon.kafka.producer.Producer` of its own."""
from __future__ import annotations

import asyncio
import logging

import orjson

from ..events import BadEvent
from ..kafka.producer import Producer
from ..snapshots import Publication

log = logging.getLogger("gumbeld.kafka")


class KafkaSnapshotSink:
    """Snapshots as JSON to ``topic``, message key = distribution key (a compacted topic keeps the
    latest); an evicted key gets a tombstone (null value), so compaction forgets it."""

    name = "kafka"

    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer, self.topic = producer, topic

    async def publish(self, publication: Publication) -> None:
        await self.producer.send_all(self.topic, [(key, value, []) for key, value in
                                                  zip(publication.keys, publication.values)])

    async def aclose(self) -> None:
        await self.producer.close()


class KafkaDeadLetters:
    """Bad events to ``topic``: the original key and value, and headers naming what went wrong.

    ``write`` only queues (ingest runs on the event loop and must not wait for a broker);
    ``flush`` sends the queue and is awaited before every checkpoint, so offsets are committed
    only once their dead letters are durable. Past ``max_pending`` queued letters the pump waits
    for a flush (``backpressure``) instead of growing memory.
    """

    name = "Kafka"

    def __init__(self, producer: Producer, topic: str, *, max_pending: int = 100_000) -> None:
        self.producer, self.topic, self.max_pending = producer, topic, max_pending
        self._pending: list[tuple[bytes | None, bytes, list]] = []
        self._lock = asyncio.Lock()

    def write(self, bad: list[BadEvent], at: str) -> int:
        for event in bad:
            origin = event.origin
            key = bytes.fromhex(origin["key_hex"]) if "key_hex" in origin else origin.get("key")
            headers = [("gumbeld.reason", event.reason.encode()), ("gumbeld.detail", event.detail.encode()[:1024]),
                       ("gumbeld.dead_lettered_at", at.encode())]
            headers += [(f"gumbeld.source.{name}", str(origin[name]).encode())
                        for name in ("topic", "partition", "offset", "element") if name in origin]
            self._pending.append((key.encode() if isinstance(key, str) else key, _raw_bytes(event.raw), headers))
        return len(bad)

    async def flush(self) -> None:
        async with self._lock:
            while self._pending:
                chunk = self._pending[:10_000]
                await self.producer.send_all(self.topic, chunk)
                del self._pending[:len(chunk)]

    async def backpressure(self) -> None:
        if len(self._pending) >= self.max_pending:
            await self.flush()

    async def aclose(self) -> None:
        if self._pending:
            log.error("%d dead letters not yet sent at shutdown", len(self._pending))
        await self.producer.close()


def _raw_bytes(raw) -> bytes | None:
    """The dead letter's value: the record's own bytes (None, a tombstone, stays one)."""
    if raw is None:
        return None
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode()
    return orjson.dumps(raw, default=repr)
