"""The training thread and what lives on it: the one owner of the learner and the key table.

The learner (the model, on the device) is touched only on the training thread, a single worker,
so rounds, publications, checkpoint copies and restores run one after another and need no lock.
The key table lives on the event loop, where ingest gives each new key a row; it sits here beside
the learner because every verb that reads the model reads the table with it. The verbs, each
awaited on the event loop:

- :meth:`Training.run`: rounds while some key has something to learn, else wait for events;
- :meth:`Training.publication`: the snapshots of the keys that changed;
- :meth:`Training.hold_counts` / :meth:`Training.absorb` / :meth:`Training.learner_state`:
  what a checkpoint captures, counts in and copies;
- :meth:`Training.take_changed_rows` / :meth:`Training.restore_rows`: the state topics' rows.

Work handed to the thread is shielded: it carries counts and freed rows taken from ingest, so it
runs to its end even when the task awaiting it is cancelled at shutdown.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Callable, Sequence

import numpy as np

from ..metrics import Metrics
from ..snapshots import Eviction, Publication
from .dense import RoundStats
from .ingest import Ingest
from .pending import Pending
from .keys import KeyTable
from .learner import Learner


class Training:
    def __init__(self, learner: Learner, keys: KeyTable, ingest: Ingest, executor: Executor, *,
                 metrics: Metrics, round_seconds: float) -> None:
        self.learner, self.keys, self.ingest = learner, keys, ingest
        self.metrics, self.round_seconds, self._executor = metrics, round_seconds, executor
        self.lock = asyncio.Lock()      # held across a checkpoint, and across a partition's restore: never both
        self._held = False              # a checkpoint is capturing the state: rounds take no new counts
        self._new_events = asyncio.Event()
        self._nonfinite_seen = learner.nonfinite_total()

    async def on_thread(self, fn: Callable, *args):
        """``fn(*args)`` on the training thread, after the work already there."""
        return await asyncio.shield(asyncio.get_running_loop().run_in_executor(self._executor, fn, *args))

    # -- counts -------------------------------------------------------------------------------
    def events_arrived(self) -> None:
        """New events were counted: wake training if it waits for them."""
        self._new_events.set()

    def take(self) -> Pending:
        """The counts for the next round — none while a checkpoint holds them back."""
        return Pending(self.keys.n_rows, None, []) if self._held else self.ingest.take()

    def hold_counts(self) -> Pending:
        """Take every pending count, and hold the next ones back from rounds until
        :meth:`release_counts`: a checkpoint's copy holds exactly the events up to its offsets."""
        self._held = True
        return self.ingest.take()

    def release_counts(self) -> None:
        self._held = False

    async def absorb(self, pending: Pending) -> None:
        """Count ``pending`` (taken on the loop) into the model."""
        await self.on_thread(self.learner.absorb, pending)

    # -- rounds -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Rounds on the training thread while some key has something to learn; else wait for events.

        Events that wake no key (a settled key's new events within its tolerance) are gathered for
        a round's time before they are looked at, so a steady stream into settled keys costs at
        most one evaluation per ``training.round_seconds``, not one per batch.
        """
        while True:
            self._new_events.clear()  # before take(): an event counted after it wakes the wait below
            stats = await self.train_round()
            if stats.active == 0:  # nothing to learn: wait for events, then let them gather for a round
                await self._new_events.wait()
                await asyncio.sleep(self.round_seconds)

    async def train_round(self) -> RoundStats:
        """One round (at most ``training.round_seconds``) with the counts since the last, reported to the metrics."""
        stats = await self.on_thread(self.learner.train, self.take())
        self.metrics.set_keys(len(self.keys))
        self.metrics.set_activity(stats.active, stats.settled)
        self.metrics.observe_training(stats.steps, stats.seconds, stats.nonfinite - self._nonfinite_seen,
                                      stats.g_loss, stats.d_loss, stats.temperature, stats.key_steps)
        self._nonfinite_seen = stats.nonfinite
        return stats

    # -- publishing ---------------------------------------------------------------------------
    async def publication(self, evictions: list[Eviction], *, full_interval: float, tolerance: float,
                          labelled: np.ndarray, final: bool = False) -> tuple[Publication, dict[str, float]]:
        """The snapshots of the keys that changed (see :meth:`Learner.publication`) and ``evictions``.

        ``final`` (at shutdown) counts every pending event in first; otherwise a snapshot is the
        model as its latest round left it.
        """
        pending = self.ingest.take() if final else None
        names, named = list(self.keys.names_by_row), self.keys.live[: self.keys.n_rows].copy()
        named[self.keys.peek_freed()] = False  # not reset yet (a checkpoint holds them): not the new key's state
        return await self.on_thread(self._publication, pending, names, named, evictions,
                                    dict(full_interval=full_interval, tolerance=tolerance, labelled=labelled))

    def _publication(self, pending: Pending | None, names: Sequence, named: np.ndarray, evictions: list,
                     options: dict) -> tuple[Publication, dict[str, float]]:
        if pending is not None:
            self.learner.absorb(pending)
        return self.learner.publication(names, named, evictions, **options)

    # -- state --------------------------------------------------------------------------------
    async def learner_state(self) -> dict:
        """A copy of the learner's whole state (model and snapshot versions), for a checkpoint."""
        return await self.on_thread(self.learner.state_dict)

    async def take_changed_rows(self) -> tuple:
        """``(rows, state, versions)`` of the rows changed since the last take (see
        :meth:`Learner.take_changed_rows`); hand them back with :meth:`mark_changed` if they are not written.

        Cancelled while the thread takes them, they are marked changed again (queued behind the take).
        """
        taken: list = []
        try:
            return await self.on_thread(lambda: taken.append(self.learner.take_changed_rows()) or taken[0])
        except asyncio.CancelledError:
            await self.on_thread(lambda: taken and self.learner.mark_changed(taken[0][0]))
            raise

    async def mark_changed(self, rows: np.ndarray) -> None:
        """Rows taken by :meth:`take_changed_rows` that were not written: taken again next time."""
        await self.on_thread(self.learner.mark_changed, rows)

    async def restore_rows(self, rows: np.ndarray, state, versions: np.ndarray) -> None:
        """Set ``rows`` (just given to restored keys) to their restored states and snapshot versions;
        the rows freed before are reset first, so no restored state lands in a row that is reset after.
        Ingest judges the keys' next events against their restored newest event times."""
        pending = self.take()
        self.ingest.watermarks.restore(rows, state.newest())
        await self.on_thread(self._restore_rows, pending, rows, state, versions)

    def _restore_rows(self, pending: Pending, rows: np.ndarray, state, versions: np.ndarray) -> None:
        self.learner.absorb(pending)
        self.learner.restore_rows(rows, state, versions)
