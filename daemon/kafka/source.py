"""The Kafka source: consume events in a consumer group, at least once, nothing lost.

Offsets travel with the state: each batch advances ``offsets`` (next offset per partition), the
service saves them inside its checkpoint and commits them to the group only after that
checkpoint is durable. On start, and whenever a partition is assigned, the consumer seeks to the
checkpointed offset when there is one, so a crash re-counts at most what arrived after the last
checkpoint — and usually nothing.

Partitions own keys: a key is trained by the instance whose partitions carry it. When partitions
are revoked, ``on_revoke(partitions)`` is awaited before they go (the service checkpoints and
commits). A rebalance revokes every partition and then assigns the new set, so keys are dropped
only then: ``on_lost(keys)`` names the keys none of whose partitions came back. aiokafka's
``stop()`` does not call the listener: the service checkpoints and commits itself at shutdown.

Broker outages: ``start()`` is retried with backoff; while the broker cannot be reached,
``health`` reports the source not ready with the reason, and everything else keeps running.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator, Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from ..events import EventBatch
from ..settings import KafkaSourceSettings
from .backoff import Backoff, retry
from .connection import client_options, describe
from .decode import RecordDecoder

log = logging.getLogger("gumbeld.kafka")
HEALTH = "source"
PROBE_INTERVAL = 2.0  # seconds between broker probes (end offsets → lag, reachability)


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


def _partition(name: str) -> TopicPartition:
    topic, partition = name.rsplit(":", 1)
    return TopicPartition(topic, int(partition))


class KafkaSource:
    name = "kafka"

    def __init__(self, settings: KafkaSourceSettings, decoder: RecordDecoder, *, health, metrics,
                 on_revoke: Callable[[set], Awaitable[None]] | None = None,
                 on_lost: Callable[[list[str]], Awaitable[None]] | None = None,
                 clock: Callable[[], float] = time.time, consumer_factory=AIOKafkaConsumer) -> None:
        self.settings, self.decoder = settings, decoder
        self._health, self._metrics, self._clock = health, metrics, clock
        self.on_revoke, self.on_lost = on_revoke, on_lost
        self._consumer_factory = consumer_factory
        self.consumer: AIOKafkaConsumer | None = None
        self.offsets: dict[TopicPartition, int] = {}      # next offset to consume, per partition
        self.owners: dict[str, set[TopicPartition]] = {}   # key → partitions it was seen on
        self._last_timestamp: dict[TopicPartition, float] = {}

    # -- position, for checkpoints -----------------------------------------------------------
    def position(self) -> dict:
        return {"offsets": {_name(tp): offset for tp, offset in self.offsets.items()},
                "owners": {key: sorted(_name(tp) for tp in tps) for key, tps in self.owners.items()}}

    def restore(self, position: dict) -> None:
        self.offsets = {_partition(n): int(o) for n, o in position.get("offsets", {}).items()}
        self.owners = {k: {_partition(n) for n in v} for k, v in position.get("owners", {}).items()}

    # -- consuming ---------------------------------------------------------------------------
    async def batches(self) -> AsyncIterator[EventBatch]:
        await self._start()
        probe = asyncio.create_task(self._probe_forever())
        try:
            while True:
                try:
                    polled = await self.consumer.getmany(timeout_ms=500, max_records=self.settings.max_poll_records)
                except KafkaError as error:  # the client reconnects by itself; report and go on
                    self._health.set_not_ready(HEALTH, f"Kafka fetch failed: {error}")
                    await asyncio.sleep(1.0)
                    continue
                if not polled:
                    continue
                records = [record for batch in polled.values() for record in batch]
                batch = self.decoder.decode(records)
                self._advance(polled)
                yield batch
        finally:
            probe.cancel()

    def _advance(self, polled: dict) -> None:
        for tp, records in polled.items():
            self.offsets[tp] = records[-1].offset + 1
            self._last_timestamp[tp] = records[-1].timestamp / 1000.0
            for key in {r.key for r in records}:
                name = key.decode("utf-8", "replace") if isinstance(key, bytes) else self.settings.default_key
                if name is not None:
                    self.owners.setdefault(name, set()).add(tp)

    async def _start(self) -> None:
        s = self.settings

        async def attempt() -> None:
            self.consumer = self._consumer_factory(
                group_id=s.group_id, group_instance_id=s.group_instance_id, enable_auto_commit=False,
                auto_offset_reset=s.auto_offset_reset, max_poll_records=s.max_poll_records,
                session_timeout_ms=s.session_timeout_ms, heartbeat_interval_ms=s.heartbeat_interval_ms,
                max_poll_interval_ms=s.max_poll_interval_ms, rebalance_timeout_ms=s.rebalance_timeout_ms,
                **client_options(s))
            try:
                await self.consumer.start()
            except KafkaError:
                await self._stop_quietly()
                raise

        def unreachable(error: Exception, wait: float) -> None:
            self._health.set_not_ready(HEALTH, f"Kafka unreachable at {describe(s)}: {error}; "
                                               f"retrying in {wait:.1f} s")
            log.warning("cannot reach Kafka at %s (%s); retrying in %.1f s", describe(s), error, wait)

        await retry(attempt, Backoff(maximum=s.retry_backoff_max), on_failure=unreachable)
        self.consumer.subscribe(s.topics, listener=_Listener(self))
        self._health.set_ready(HEALTH)
        log.info("consuming %s from %s as group %s", s.topics, describe(s), s.group_id)

    async def _probe_forever(self) -> None:
        """Reachability and lag: end offsets of the assigned partitions every few seconds."""
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            assigned = self.consumer.assignment()
            if not assigned:
                continue
            try:
                ends = await asyncio.wait_for(self.consumer.end_offsets(list(assigned)), self.settings.request_timeout)
            except (KafkaError, asyncio.TimeoutError) as error:
                self._health.set_not_ready(HEALTH, f"Kafka unreachable at {describe(self.settings)}: "
                                                   f"{error or 'timed out'}")
                continue
            self._health.set_ready(HEALTH)
            now = self._clock()
            for tp, end in ends.items():
                # some brokers answer ListOffsets with the last batch's start; fetches know better
                end = max(end, self.consumer.highwater(tp) or 0)
                position = self.offsets.get(tp)
                behind = max(0, end - position) if position is not None else end
                seconds = max(0.0, now - self._last_timestamp[tp]) if behind and tp in self._last_timestamp else 0.0
                self._metrics.set_lag(tp.topic, tp.partition, behind, seconds)

    async def commit(self, offsets: dict) -> None:
        """Commit checkpointed offsets (``position()["offsets"]``) for the partitions still assigned."""
        if self.consumer is None:
            return
        assigned = self.consumer.assignment()
        wanted = {tp: o for tp, o in ((_partition(n), o) for n, o in offsets.items()) if tp in assigned}
        if wanted:
            await asyncio.wait_for(self.consumer.commit(wanted), self.settings.request_timeout)

    async def stop(self) -> None:
        await self._stop_quietly()

    async def _stop_quietly(self) -> None:
        if self.consumer is not None:
            try:
                await self.consumer.stop()
            except KafkaError as error:
                log.warning("closing the Kafka consumer: %s", error)

    # -- rebalancing -------------------------------------------------------------------------
    async def revoked(self, partitions: set[TopicPartition]) -> None:
        if self.on_revoke is not None:
            await self.on_revoke(partitions)

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        """Resume owned partitions at our own offsets; forget the partitions (and keys) that went."""
        lost = (set(self.offsets) | {tp for tps in self.owners.values() for tp in tps}) - partitions
        gone = [key for key, tps in self.owners.items() if not tps & partitions]
        for tp in lost:
            self.offsets.pop(tp, None)
            self._last_timestamp.pop(tp, None)
            self._metrics.forget_lag(tp.topic, tp.partition)
        for key in gone:
            del self.owners[key]
        for tps in self.owners.values():
            tps &= partitions
        for tp in partitions:
            if tp in self.offsets:
                self.consumer.seek(tp, self.offsets[tp])
        log.info("assigned %s", sorted(_name(tp) for tp in partitions) or "no partitions")
        if gone and self.on_lost is not None:
            await self.on_lost(gone)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked) -> None:
        if revoked:
            await self.source.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        await self.source.assigned(set(assigned))
