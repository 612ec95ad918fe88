"""The state topics of a running service: rows out at each checkpoint, rows in on assignment.

:class:`Changelog` is what the service and the Kafka source call:

- :meth:`Changelog.prepare`, once connected: create or check the state topics;
- :meth:`Changelog.write`, in each checkpoint: the rows of the keys changed since the last one,
  and tombstones, acknowledged by every in-sync replica before the checkpoint goes on;
- :meth:`Changelog.read`, when a partition comes without current local state: its state
  partition, read to the end, as the rows that hold (see :mod:`.restore`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ...kafka.connection import client_options
from ...kafka.read import PartitionReader
from ...learning.key_rows import KeyRows
from ...settings import KafkaSourceSettings
from .metrics import StateMetrics
from .open_rows import OpenRowCodec
from .restore import SOURCE_OFFSET_HEADER, Record, latest
from .rows import RowCodec
from .topic import ensure_state_topics
from .writer import StateBatch, StateWriter

log = logging.getLogger("gumbeld.kafka")


@dataclass
class RestoredRows:
    """The rows that hold on one state partition, decoded."""

    names: list[str]
    state: KeyRows                   # the rows, each over its key's support
    versions: np.ndarray             # [A] snapshot versions
    rows: dict[str, Record]          # key → its record (for the source offsets it includes)
    refused: int                     # rows that could not be read (logged)
    seconds: float


class Changelog:
    def __init__(self, settings: KafkaSourceSettings, codec: RowCodec | OpenRowCodec, *, producer,
                 metrics: StateMetrics, timer: Callable[[], float] = time.monotonic) -> None:
        """``codec``: the rows of fixed categories (:class:`~.rows.RowCodec`) or of open ones
        (:class:`~.open_rows.OpenRowCodec`)."""
        self.settings, self.metrics, self._timer = settings, metrics, timer
        self.state_topics = settings.state_topics
        self.codec = codec
        self.writer = StateWriter(producer, self.state_topics, row_format=codec.row_format)

    async def prepare(self) -> None:
        """Create missing state topics; refuse (``StateTopicError``) one partitioned unlike its source."""
        admin = AIOKafkaAdminClient(**client_options(self.settings))
        await admin.start()
        try:
            await ensure_state_topics(admin, self.state_topics, replication_factor=self.settings.state.replication_factor)
        finally:
            await admin.close()

    async def aclose(self) -> None:
        await self.writer.producer.close()

    # -- writing ------------------------------------------------------------------------------
    def encode(self, names: list[str | None], rows: np.ndarray, state, versions: np.ndarray) -> dict[str, bytes]:
        """Key → row value for the changed ``rows`` that hold a key (blocking: off the loop)."""
        held = [i for i, row in enumerate(rows.tolist()) if row < len(names) and names[row] is not None]
        if len(held) < len(rows):
            state, versions = self.codec.select(state, np.asarray(held, dtype=np.int64)), versions[held]
        values = self.codec.encode(state, versions)
        return {names[rows[i]]: value for i, value in zip(held, values)}

    async def write(self, values: Mapping[str, bytes], *, owners: Mapping[str, Collection[TopicPartition]],
                    live: Collection[str], assigned: Collection[TopicPartition],
                    offsets: Mapping[TopicPartition, int]) -> None:
        """Send the changed rows and the tombstones of keys that left; returns once all are acknowledged."""
        await self.send(self.writer.plan(values, owners=owners, live=live, assigned=assigned, offsets=offsets))

    async def send(self, batch: StateBatch) -> None:
        """Send a :meth:`StateWriter.plan <.writer.StateWriter.plan>` (built anywhere); returns once all are acknowledged."""
        if not len(batch):
            return
        nbytes = await self.writer.send(batch)
        tombstones = len(batch.tombstones)
        self.metrics.written(rows=len(batch) - tombstones, tombstones=tombstones, nbytes=nbytes)

    # -- restoring ----------------------------------------------------------------------------
    async def read(self, source: TopicPartition, *, timeout: float) -> RestoredRows:
        """The rows that hold on the state partition of ``source``, read to its end."""
        started = self._timer()
        state_partition = TopicPartition(self.state_topics[source.topic], source.partition)
        records = []
        options = {**client_options(self.settings), "max_partition_fetch_bytes": 8 << 20}
        async with PartitionReader(options, partitions=[state_partition], timeout=timeout) as reader:
            async for batch in reader:
                records.extend(Record(r.offset, r.key.decode("utf-8", "replace") if r.key else "", r.value,
                                      _source_offset(r.headers)) for r in batch)
        # a whole partition's rows (~0.3 s at 100,000 keys): decoded off the event loop
        restored = await asyncio.to_thread(self._decode, records, state_partition)
        self._localise(restored, state_partition)
        restored.seconds = self._timer() - started
        return restored

    def _localise(self, restored: RestoredRows, state_partition: TopicPartition) -> None:
        """Map the rows onto this instance's categories (open ones: its table, which the event loop owns)."""
        restored.state, refused = self.codec.localise(restored.state)
        if not refused:
            return
        for position, why in refused:
            log.error("state row of key %r on %s:%d refused: %s", restored.names[position], state_partition.topic,
                      state_partition.partition, why)
        kept = np.setdiff1d(np.arange(len(restored.names)), [p for p, _ in refused])
        restored.names = [restored.names[p] for p in kept.tolist()]
        restored.rows = {n: restored.rows[n] for n in restored.names}
        restored.versions = restored.versions[kept]
        restored.refused += len(refused)

    def _decode(self, records: list[Record], state_partition: TopicPartition) -> RestoredRows:
        held = latest(r for r in records if r.key)
        names = list(held)
        decoded = self.codec.decode([held[name].value for name in names])
        for position, why in decoded.bad:
            log.error("state row of key %r on %s:%d refused: %s", names[position], state_partition.topic,
                      state_partition.partition, why)
        good = [names[i] for i in decoded.good]
        return RestoredRows(good, decoded.state, decoded.versions, {n: held[n] for n in good}, len(decoded.bad), 0.0)


def _source_offset(headers) -> int | None:
    for name, value in headers or ():
        if name == SOURCE_OFFSET_HEADER:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None
