"""The checkpoint protocol: the whole state with the offsets it includes, then their commit.

:class:`Checkpointer` runs it every ``checkpoint.interval``, before partitions are revoked, and
once more at shutdown. While it captures and copies the state, training takes no new counts
(:meth:`~daemon.learning.training.Training.hold_counts`), so the saved state holds exactly the events up to
the offsets it records.
"""
from __future__ import annotations

import asyncio
import logging

from aiokafka.errors import KafkaError

from ..kafka.failures import LOG_INTERVAL, cause
from ..learning.training import Training
from ..logs import Throttle
from .service_state import service_state

log = logging.getLogger("gumbeld")
FINAL_COMMIT_ATTEMPTS, FINAL_COMMIT_RETRY = 3, 0.5  # seconds between attempts; within shutdown_timeout


class Checkpointer:
    """Saves the state of ``training`` to ``store`` (and, with ``handover``, the changed keys' rows
    to the state topics) and commits the offsets to ``source``."""

    def __init__(self, labels, *, training: Training, publisher, source, dead_letters, store, handover,
                 metrics, health) -> None:
        self.labels, self.training, self.publisher = labels, training, publisher
        self.source, self.dead_letters, self.store, self.handover = source, dead_letters, store, handover
        self.metrics, self.health = metrics, health
        self._saved = None   # what the last checkpoint holds: learner revision, position, keys, evictions
        self._failure_log = Throttle(LOG_INTERVAL)  # a failure repeating every interval logs once a minute

    async def checkpoint(self, final: bool = False) -> bool:
        """Save the whole state with the offsets it includes, and commit those offsets; returns
        whether both are durable (a failure is logged with its cause, counted and on ``/readyz``).

        1. capture, on the loop: pending counts, key table, source position (consistent together);
        2. make the dead letters of those events durable; count the pending events into the model
           (nothing more to do if nothing changed since the last checkpoint);
        3. with state topics: write the rows of the changed keys (and tombstones), acks=all;
        4. copy the model's state on the training thread (from then on training takes new counts
           again); with state topics: commit the offsets, then save the local checkpoint; without:
           save the local checkpoint, then commit. The save runs on a worker thread, so training
           does not pause for it.
        A crash between any two steps loses nothing and counts nothing twice. Offsets never get
        ahead of the state that holds their events: of the local checkpoint without state topics;
        of the rows with them, which a new owner restores (a row written ahead of the commit says
        so, and the events it counts are skipped on replay). The local checkpoint is saved after
        the commit, so a checkpoint that got as far as the commit holds the newest state, and one
        that did not is passed over for the rows (see :mod:`daemon.state.changelog.restore`).
        """
        training = self.training
        async with training.lock:
            step = "taking the state"
            try:
                keys, evictions = training.keys.state(), self.publisher.state()         # 1.
                position = self.source.position()
                pending = training.hold_counts()
                step = f"flushing the dead letters to {self.dead_letters.name}"
                try:
                    await self.dead_letters.flush()                                      # 2.
                finally:
                    await training.absorb(pending)  # counted events join the model regardless
                saved = (training.learner.revision, position, keys["names"], evictions)
                if saved == self._saved and not final:  # idle: the checkpoint already holds this state
                    self.metrics.checkpoint_current()
                    return True
                if self.handover is not None:
                    step = "writing the state topic to Kafka"
                    await self.handover.write(keys["names"], position)                   # 3.
                state = service_state(self.labels, keys, evictions, await training.learner_state(), position)
                training.release_counts()  # the state is a copy now: training takes counts again
                committed = await self._commit(position, final) if self.handover is not None else True  # 4.
                step = "saving the checkpoint file"
                await asyncio.to_thread(self.store.save, state)  # not on the training thread: it trains on
                self._saved = saved
                self.metrics.checkpoint_written()
                self.health.set_ready("checkpoint")
            except (OSError, KafkaError, asyncio.TimeoutError) as error:
                self._failed(f"{step}: {cause(error)}", final)
                return False
            finally:
                training.release_counts()
            return await self._commit(position, final) if self.handover is None else committed

    def _failed(self, reason: str, final: bool) -> None:
        """``reason``: the step that failed and why."""
        self.metrics.checkpoint_failed()
        self.health.set_not_ready("checkpoint", f"the last checkpoint failed {reason}")
        held = self._failure_log.allow(reason)
        if held is not None or final:
            log.error("checkpoint failed, will retry %s: %s%s", "never: stopping" if final else
                      "at the next interval", reason, Throttle.since(held or 0))

    async def _commit(self, position: dict, final: bool = False) -> bool:
        """Commit ``position``'s offsets; a failure is reported by the source (the saved state has
        the offsets, and the next commit catches up). The final commit has no next one: it is tried
        again, a few times, as a group that is rebalancing refuses commits for a moment."""
        for attempt in range(FINAL_COMMIT_ATTEMPTS if final else 1):
            if attempt:
                await asyncio.sleep(FINAL_COMMIT_RETRY)
            try:
                await self.source.commit(position.get("offsets", {}))
                return True
            except (KafkaError, asyncio.TimeoutError):
                continue
        return False
