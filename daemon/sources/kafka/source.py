"""The Kafka source: consume events in a consumer group, at least once, nothing lost.

Offsets travel with the state (:class:`~daemon.sources.kafka.progress.SourceProgress`): the
service saves them inside its checkpoint and commits them to the group only once that checkpoint
is durable. On start, and whenever a partition is assigned, the consumer seeks to the
checkpointed offset when there is one, so a crash re-counts at most what arrived after the last
checkpoint — and usually nothing.

Partitions own keys: a key is trained by the instance whose partitions carry it. The service hears
of every rebalance through its :class:`~daemon.sources.kafka.rebalance.PartitionListener`: before
partitions go, ``revoked(partitions)`` is awaited (the service checkpoints and commits); a
rebalance revokes every partition and then assigns the new set, so keys are dropped only then:
``lost(keys)`` names the keys none of whose partitions came back. aiokafka's ``stop()`` does not
call the listener: the service checkpoints and commits itself at shutdown.

State hand-over (a listener that ``restores``): a partition this process has not consumed since it
was assigned, or whose state came from the local checkpoint, is paused first thing in the
assignment callback; a task then asks ``listener.restore(partition, local_offset)`` for the offset
to resume at (the listener restores from the state topic when the local state is stale), seeks
there and resumes. The callback never waits for a restore, so heartbeats go on; a revocation
cancels the restores of the partitions it takes away. Replayed events that a restored row already
counts are skipped (:mod:`daemon.sources.kafka.replay`). ``/readyz`` says ``restoring`` meanwhile.

Broker outages: ``start()`` is retried with backoff; while the broker cannot be reached,
``health`` reports the source not ready with the reason, and everything else keeps running.
Failures to connect, fetch and commit go to ``failures`` (:mod:`daemon.kafka.failures`): counted,
logged with the partitions and the cause, and on ``/readyz`` while they repeat. A fetch that fails
(a batch the client cannot decode, a corrupt record) holds its partition where it is: nothing is
skipped, and the failure stays loud until the fetch works.

Transactions: the consumer reads with ``isolation_level`` (``read_committed`` by default), so the
records of aborted transactions are never returned where the broker reports them; control records
are never returned at all.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from ...errors import StartupError
from ...events import EventBatch
from ...kafka.backoff import Backoff, retry
from ...kafka.connection import client_options, describe
from ...kafka.failures import KafkaFailures
from ...settings import KafkaSourceSettings
from .decode import RecordDecoder
from .key_owners import partition_from_name, partition_name
from .progress import SourceProgress
from .rebalance import PartitionListener

log = logging.getLogger("gumbeld.kafka")
HEALTH = "source"
PROBE_INTERVAL = 2.0  # seconds between broker probes (end offsets → lag, reachability)
CLOSE_TIMEOUT = 3.0   # seconds closing the consumer may take at shutdown (after the final checkpoint)


class KafkaSource:
    name = "kafka"

    def __init__(self, settings: KafkaSourceSettings, decoder: RecordDecoder, *, health, metrics,
                 failures: KafkaFailures, clock: Callable[[], float] = time.time,
                 consumer_factory=AIOKafkaConsumer) -> None:
        self.settings, self.decoder = settings, decoder
        self._health, self._metrics, self._failures, self._clock = health, metrics, failures, clock
        self.listener: PartitionListener | None = None
        self.progress = SourceProgress(settings.default_key)
        self.current: set[TopicPartition] = set()   # consumed since assigned: the state in memory is theirs
        self.rebalancing = False                    # between a revocation and the next assignment
        self._assigned = False                      # partitions were assigned at least once
        self._refusal: str | None = None            # why consuming must stop (found in a rebalance callback)
        self._restores: dict[TopicPartition, asyncio.Task] = {}
        self._consumer_factory = consumer_factory
        self.consumer: AIOKafkaConsumer | None = None

    # -- position, for checkpoints -----------------------------------------------------------
    def position(self) -> dict:
        return self.progress.state()

    def restore(self, position: dict) -> None:
        self.progress.load(position)

    def listen(self, listener: PartitionListener) -> None:
        """Tell ``listener`` of every rebalance, from the start of :meth:`batches` on."""
        self.listener = listener

    # -- consuming ---------------------------------------------------------------------------
    async def batches(self) -> AsyncIterator[EventBatch]:
        await self._start()
        probe = asyncio.create_task(self._probe_forever())
        try:
            while True:
                if self._refusal is not None:
                    raise StartupError(self._refusal)
                try:
                    polled = await self.consumer.getmany(timeout_ms=500, max_records=self.settings.max_poll_records)
                except KafkaError as error:  # the client fetches again by itself; report and go on
                    self._failures.failed("fetch", error, where=self._held())
                    await asyncio.sleep(1.0)
                    continue
                self._failures.succeeded("fetch")
                if not polled:
                    continue
                batch = self.decoder.decode(self.progress.unreplayed(polled))
                self.progress.advance(polled)
                yield batch
        finally:
            probe.cancel()

    def _held(self) -> str:
        """Where a fetch error holds the stream: the assigned partitions with records not yet read."""
        held = [partition_name(tp) for tp in sorted(self.consumer.assignment())
                if (self.consumer.highwater(tp) or 0) > self.progress.offsets.get(tp, 0)]
        return f"partitions {', '.join(held)} (records not yet read)" if held else "the assigned partitions"

    async def _start(self) -> None:
        s = self.settings

        async def attempt() -> None:
            self.consumer = self._consumer_factory(
                group_id=s.group_id, group_instance_id=s.group_instance_id, enable_auto_commit=False,
                auto_offset_reset=s.auto_offset_reset, max_poll_records=s.max_poll_records,
                session_timeout_ms=s.session_timeout_ms, heartbeat_interval_ms=s.heartbeat_interval_ms,
                max_poll_interval_ms=s.max_poll_interval_ms, rebalance_timeout_ms=s.rebalance_timeout_ms,
                isolation_level=s.isolation_level, **client_options(s))
            try:
                await self.consumer.start()
            except KafkaError:
                await self._stop_quietly()
                raise

        def unreachable(error: Exception, wait: float) -> None:
            message = self._failures.failed("connect", error, where=describe(s))
            self._health.set_not_ready(HEALTH, f"Kafka unreachable at {message}; retrying in {wait:.1f} s")

        await retry(attempt, Backoff(maximum=s.retry_backoff_max), on_failure=unreachable)
        self._failures.succeeded("connect")
        if self.listener is not None:  # e.g. the state topics, before any partition is assigned
            await self.listener.prepare()
        self.consumer.subscribe(s.topics, listener=_Rebalances(self))
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
                position, last = self.progress.offsets.get(tp), self.progress.timestamps.get(tp)
                behind = max(0, end - position) if position is not None else end
                seconds = max(0.0, now - last) if behind and last is not None else 0.0
                self._metrics.set_lag(tp.topic, tp.partition, behind, seconds)

    async def commit(self, offsets: dict) -> None:
        """Commit checkpointed offsets (``position()["offsets"]``) for the partitions still assigned."""
        if self.consumer is None:
            return
        assigned = self.consumer.assignment()
        wanted = {tp: o for tp, o in ((partition_from_name(n), o) for n, o in offsets.items()) if tp in assigned}
        if not wanted:
            return
        try:
            await asyncio.wait_for(self.consumer.commit(wanted), self.settings.request_timeout)
        except (KafkaError, asyncio.TimeoutError) as error:
            where = f"partitions {', '.join(partition_name(tp) for tp in sorted(wanted))}"
            self._failures.failed("commit", error, where=where,
                                  detail=f"no answer within {self.settings.request_timeout:g} s"
                                  if isinstance(error, asyncio.TimeoutError) else None)
            raise
        self._failures.succeeded("commit")

    async def stop(self) -> None:
        restores, self._restores = list(self._restores.values()), {}
        for task in restores:  # a restore under way stops with the consumer it would resume
            task.cancel()
        await asyncio.gather(*restores, return_exceptions=True)
        await self._stop_quietly()

    async def _stop_quietly(self) -> None:
        if self.consumer is not None:
            try:  # a broker that does not answer LeaveGroup must not hold the exit: the group then
                # notices the instance gone after the session timeout instead
                await asyncio.wait_for(self.consumer.stop(), CLOSE_TIMEOUT)
            except (KafkaError, asyncio.TimeoutError) as error:
                log.warning("closing the Kafka consumer: %s", error or "no answer in time")

    # -- rebalancing -------------------------------------------------------------------------
    async def revoked(self, partitions: set[TopicPartition]) -> None:
        self.rebalancing = True
        for tp in partitions:
            task = self._restores.pop(tp, None)
            if task is not None:
                task.cancel()
        self.current -= partitions
        if self.listener is not None:
            await self.listener.revoked(partitions)

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        """Resume owned partitions at our own offsets; forget the partitions (and keys) that went."""
        lost, gone = self.progress.keep(partitions)
        for tp in lost:
            self._metrics.forget_lag(tp.topic, tp.partition)
        self._refuse_shared_keys(partitions)
        fresh = partitions - self.current if self.listener is not None and self.listener.restores else set()
        if fresh:
            self.consumer.pause(*fresh)  # first thing: no record of theirs may arrive before the restore
        for tp in partitions - fresh:
            if tp in self.progress.offsets:
                self.consumer.seek(tp, self.progress.offsets[tp])
        self.current |= partitions - fresh
        for tp in fresh:
            self._restores[tp] = asyncio.create_task(self._restore(tp), name=f"restore {partition_name(tp)}")
        log.info("assigned %s", sorted(partition_name(tp) for tp in partitions) or "no partitions")
        self.rebalancing, self._assigned = False, True
        if gone and self.listener is not None:
            await self.listener.lost(gone)

    def _refuse_shared_keys(self, partitions: set[TopicPartition]) -> None:
        """With keys read from a message field, a key may be on any partition: another member of the
        group would own some of its events. Consuming stops with a message (never two owners silently)."""
        if self.settings.key_from != "field":
            return
        every = {TopicPartition(t, p) for t in self.settings.topics for p in self.consumer.partitions_for_topic(t) or ()}
        if partitions != every:
            self._refusal = (f"source.kafka.key_from = field, but this instance was assigned {len(partitions)} of "
                             f"the {len(every)} partitions of {self.settings.topics}: another instance of group "
                             f"{self.settings.group_id!r} reads the others, and a key's events may be on any of "
                             "them. Run one instance per group, or key the messages by distribution key")

    async def _restore(self, tp: TopicPartition) -> None:
        """Restore ``tp``'s keys (see the module docstring), then resume consuming it."""
        self._health.set_not_ready("restore", "restoring")
        backoff = Backoff(maximum=self.settings.retry_backoff_max)
        try:
            while True:
                try:
                    offset = await self.listener.restore(tp, self.progress.offsets.get(tp))
                    break
                except (KafkaError, asyncio.TimeoutError, OSError) as error:  # still paused: nothing is lost
                    wait = backoff.next()
                    log.warning("restoring %s failed (%s); retrying in %.1f s", partition_name(tp),
                                error or type(error).__name__, wait)
                    await asyncio.sleep(wait)
                except Exception as error:  # not the broker: retrying would fail alike, and the partition
                    # would stay paused unread; consuming stops with the reason instead
                    log.exception("restoring %s failed", partition_name(tp))
                    self._refusal = f"restoring {partition_name(tp)} failed: {type(error).__name__}: {error}"
                    return
            if offset is not None:
                self.progress.offsets[tp] = offset
                self.consumer.seek(tp, offset)
            self.current.add(tp)
            self.consumer.resume(tp)
        finally:
            if self._restores.get(tp) is asyncio.current_task():
                del self._restores[tp]
            if not self._restores:
                self._health.set_ready("restore")

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp`` (None: never committed)."""
        return await asyncio.wait_for(self.consumer.committed(tp), self.settings.request_timeout)

    @property
    def restoring(self) -> bool:
        """Keys may be on their way here: before the first assignment, while partitions move or restore."""
        return not self._assigned or self.rebalancing or bool(self._restores)

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    def keys_of(self, tp: TopicPartition) -> list[str]:
        """The keys seen on ``tp`` alone."""
        return self.progress.owners.sole({tp})


class _Rebalances(ConsumerRebalanceListener):
    """aiokafka's listener: hands each call to the source."""

    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked) -> None:
        if revoked:
            await self.source.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        await self.source.assigned(set(assigned))
