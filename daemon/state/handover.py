"""What the service does when partitions move: state rows out at checkpoints, restored rows in.

:class:`Rebalance` is the service's :class:`~daemon.sources.kafka.rebalance.PartitionListener`: before
partitions go it checkpoints and commits; the keys of partitions that went to other instances are
dropped (not evicted: they live on there, so no tombstone); with state topics, the keys of newly
assigned partitions are restored by the :class:`Handover`.

:class:`Handover` joins the :class:`~daemon.state.changelog.store.Changelog` (Kafka) to the key table
and the learner (the model), under the service's rules: the model is touched only on the training
thread, and a restore never interleaves with a checkpoint (``lock``).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import numpy as np

from ..learning.training import Training
from ..sources.kafka.key_owners import partition_from_name
from ..sources.kafka.source import KafkaSource
from .changelog.restore import use_local_checkpoint
from .changelog.store import Changelog
from .changelog.writer import StateBatch
from .checkpointing import Checkpointer

log = logging.getLogger("gumbeld")
# a whole state partition: 100,000 rows take seconds; longer means a broker problem (retried)
READ_TIMEOUT = 300.0


class Handover:
    def __init__(self, changelog: Changelog, *, source: KafkaSource, training: Training,
                 read_timeout: float = READ_TIMEOUT, clock: Callable[[], float] = time.time,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.changelog, self.source, self.training, self.read_timeout = changelog, source, training, read_timeout
        self._clock, self._timer = clock, timer

    async def write(self, names: list, position: dict) -> None:
        """Rows of the keys changed since the last write (``names``: the key table's names by row, as
        captured with ``position``), and tombstones; on failure they are taken again next time.

        The messages are built on a worker thread from what was captured with ``position`` (its
        owners and offsets, the assigned partitions, a copy of the keys with rows): at 100,000 keys
        that took 0.45 s, which on the event loop stalled ingest, ``/livez`` and heartbeats.
        """
        assigned, written = self.source.assignment(), self.changelog.writer.written_keys()
        rows, state, versions = await self.training.take_changed_rows()
        try:
            batch = await asyncio.to_thread(self._messages, names, position, assigned, written, rows, state, versions)
            await self.changelog.send(batch)
        except BaseException:  # also a cancelled checkpoint
            await self.training.mark_changed(rows)
            raise

    def _messages(self, names: list, position: dict, assigned, written: dict, rows, state, versions) -> StateBatch:
        """The taken rows, encoded, and their messages (off the event loop)."""
        values = self.changelog.encode(names, rows, state, versions)
        partitions: dict[str, object] = {}  # "topic:partition" → TopicPartition, parsed once each
        owners = {key: [partitions.get(name) or partitions.setdefault(name, partition_from_name(name))
                        for name in position.get("owners", {}).get(key, ())] for key in values}
        offsets = {partition_from_name(name): offset for name, offset in position.get("offsets", {}).items()}
        return self.changelog.writer.plan(values, owners=owners, live=set(filter(None, names)), assigned=assigned,
                                          offsets=offsets, written=written)

    async def restore(self, tp, local_offset: int | None) -> int | None:
        """The keys of source partition ``tp``, newly assigned: the local state if it is the newest,
        else the state partition's rows instead; returns the offset to resume at."""
        started, keys = self._timer(), self.training.keys
        committed = await self.source.committed(tp)
        own = self.source.keys_of(tp)
        if use_local_checkpoint(local_offset, committed):
            self.changelog.writer.restored(own, tp)  # their rows may be on the topic: evictions need tombstones
            self.changelog.metrics.restored(rows=len(own), seconds=self._timer() - started, source="checkpoint")
            return local_offset
        # another instance consumed tp since: its rows are newer than these keys (no await between the
        # two lines, so no checkpoint sees the keys gone while their rows still count as ours)
        keys.remove(own)
        self.changelog.writer.forget({tp})
        restored = await self.changelog.read(tp, timeout=self.read_timeout)
        async with self.training.lock:
            rows = keys.rows(restored.names, self._clock())
            kept = rows >= 0  # the others were refused by max_keys_policy = dead_letter
            names = [n for n, k in zip(restored.names, kept.tolist()) if k]
            state = self.changelog.codec.select(restored.state, np.flatnonzero(kept))
            await self.training.restore_rows(rows[kept], state, restored.versions[kept])
        self.source.progress.took_over(tp, {n: restored.rows[n].source_offset for n in names}, committed or 0)
        self.changelog.writer.restored(names, tp)
        self.changelog.metrics.restored(rows=len(names), seconds=self._timer() - started, source="changelog")
        log.info("restored %d keys of %s:%d from the state topic in %.2f s (%d rows refused)", len(names),
                 tp.topic, tp.partition, self._timer() - started, restored.refused + int((~kept).sum()))
        return committed


class Rebalance:
    """The service's side of a rebalance (see the module docstring); ``handover``: with state topics."""

    def __init__(self, checkpointer: Checkpointer, training: Training, handover: Handover | None) -> None:
        self.checkpointer, self.training, self.handover = checkpointer, training, handover
        self.restores = handover is not None

    async def prepare(self) -> None:
        if self.handover is not None:
            await self.handover.changelog.prepare()

    async def revoked(self, partitions: set) -> None:
        await self.checkpointer.checkpoint()

    async def lost(self, keys: list[str]) -> None:
        self.training.keys.remove(keys)  # their rows are reset before reuse
        log.info("dropped %d keys whose partitions moved to other instances", len(keys))

    async def restore(self, tp, local_offset: int | None) -> int | None:
        return await self.handover.restore(tp, local_offset)
