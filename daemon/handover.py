"""The service's side of the state topics: which keys' rows to write, and where restored rows go.

:class:`Handover` joins the :class:`~daemon.changelog.store.Changelog` (Kafka) to the key table
and the learner (the model), under the service's rules: the model is touched only on the training
thread, and a restore never interleaves with a checkpoint (``lock``).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import numpy as np

from .changelog.store import Changelog
from .changelog.writer import StateBatch
from .changelog.restore import use_local_checkpoint
from .kafka.key_owners import partition_from_name
from .kafka.source import KafkaSource

log = logging.getLogger("gumbeld")
# a whole state partition: 100,000 rows take seconds; longer means a broker problem (retried)
READ_TIMEOUT = 300.0


class Handover:
    def __init__(self, changelog: Changelog, *, source: KafkaSource, keys: Callable, learner: Callable,
                 run: Callable, take: Callable, lock: asyncio.Lock, read_timeout: float = READ_TIMEOUT,
                 clock: Callable[[], float] = time.time, timer: Callable[[], float] = time.monotonic) -> None:
        # ``keys()`` and ``learner()`` give the service's current ones: a resume replaces them
        self.changelog, self.source, self.keys, self.learner = changelog, source, keys, learner
        self._run, self._take, self.lock, self.read_timeout = run, take, lock, read_timeout
        self._clock, self._timer = clock, timer

    async def write(self, names: list, position: dict) -> None:
        """Rows of the keys changed since the last write (``names``: the key table's names by row, as
        captured with ``position``), and tombstones; on failure they are taken again next time.

        The messages are built on the training thread from what was captured with ``position`` (its
        owners and offsets, the assigned partitions, a copy of the keys with rows): at 100,000 keys
        that took 0.45 s, which on the event loop stalled ingest, ``/livez`` and heartbeats.
        """
        taken: list = []  # the rows taken, once the training thread has taken them
        assigned, written = self.source.assignment(), self.changelog.writer.written_keys()
        try:
            batch = await self._run(self._changed_rows, names, position, assigned, written, taken)
            await self.changelog.send(batch)
        except BaseException:  # also a cancelled checkpoint: the training thread may have taken them meanwhile
            # queued behind the taking on the one training thread, so ``taken`` is filled by then
            await self._run(lambda: taken and self.learner().mark_changed(taken[0]))
            raise

    def _changed_rows(self, names: list, position: dict, assigned, written: dict, taken: list) -> StateBatch:
        """On the training thread: take the changed rows, encode them, and build their messages."""
        rows, state, versions = self.learner().take_changed_rows()
        taken.append(rows)
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
        started, keys, learner = self._timer(), self.keys(), self.learner()
        committed = await self.source.committed(tp)
        own = self.source.owners.sole({tp})
        if use_local_checkpoint(local_offset, committed):
            self.changelog.writer.restored(own, tp)  # their rows may be on the topic: evictions need tombstones
            self.changelog.metrics.restored(rows=len(own), seconds=self._timer() - started, source="checkpoint")
            return local_offset
        # another instance consumed tp since: its rows are newer than these keys (no await between the
        # two lines, so no checkpoint sees the keys gone while their rows still count as ours)
        keys.remove(own)
        self.changelog.writer.forget({tp})
        restored = await self.changelog.read(tp, timeout=self.read_timeout)
        async with self.lock:
            rows = keys.rows(restored.names, self._clock())
            kept = rows >= 0  # the others were refused by max_keys_policy = dead_letter
            names = [n for n, k in zip(restored.names, kept.tolist()) if k]
            state = self.changelog.codec.select(restored.state, np.flatnonzero(kept))
            pending = self._take()  # freed rows are reset before restored states land in them
            await self._run(lambda: (learner.absorb(pending),
                                     learner.restore_rows(rows[kept], state, restored.versions[kept])))
        self.source.owners.own(names, tp)
        self.changelog.writer.restored(names, tp)
        self.source.replay.add(tp, {n: restored.rows[n] for n in names}, committed or 0)
        self.changelog.metrics.restored(rows=len(names), seconds=self._timer() - started, source="changelog")
        log.info("restored %d keys of %s:%d from the state topic in %.2f s (%d rows refused)", len(names),
                 tp.topic, tp.partition, self._timer() - started, restored.refused + int((~kept).sum()))
        return committed
