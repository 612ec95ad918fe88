"""The service's lifecycle — startup, main loop, shutdown (the process around it: :mod:`daemon.runner`).

Startup: build the model, resume from the checkpoint, open the sinks, serve ``/metrics``, ``/livez``
and ``/readyz``; with the Kafka source, keys of partitions assigned later are restored from the
state topics (:mod:`daemon.handover`). Main loop, until SIGTERM/SIGINT or until stdout's reader goes
away (:mod:`daemon.publishing`): **pump** events from the source into the histograms (on the event
loop), **train** in time-bounded rounds on the training thread (the keys with something to learn;
none at all once every key settled), **publish** the changed snapshots every ``publish_interval``,
**checkpoint** every ``checkpoint.interval``, and **watch** the event loop's lag. Shutdown: the main
loop's tasks are cancelled, so ingest and training stop; ``/readyz`` turns 503; the final publish
and the final checkpoint's copy of the state run on the training thread after the round already
there (it ends within ``training.round_seconds``); then the source, snapshot sinks, dead-letter sink, HTTP server and
training thread close, in that order. A startup that fails half-way closes what it had opened.
"""
from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CollectorRegistry

from gumbel_models import resolve_device

from .categories import CategoryTable
from .checkpoint import CheckpointError, CheckpointStore
from .checkpointing import Checkpointer
from .errors import StartupError
from .handover import Handover
from .http import Health, HttpServer
from .ingest import BadEventLog, Ingest, Pending
from .kafka.failures import KafkaFailures
from .keys import KeyTable
from .learner import Learner
from .loops import every, watch_loop_lag
from .metrics import Metrics
from .open_learner import OpenLearner
from .publishing import Publisher
from .service_state import check_compatible
from .settings import GumbeldSettings
from .sinks import SnapshotSink
from .threads import background_executor
from .timestamps import rfc3339
from .wiring import build_changelog, build_dead_letters, build_keys, build_learner, build_sinks, build_source

log = logging.getLogger("gumbeld")


class Service:
    def __init__(self, settings: GumbeldSettings, *, registry: CollectorRegistry | None = None,
                 clock=time.time, sinks: list[SnapshotSink] | None = None, source=None) -> None:
        self.settings, self._clock = settings, clock
        self.registry = registry if registry is not None else CollectorRegistry()
        self.stopping = asyncio.Event()
        self._new_events = asyncio.Event()
        self._sinks_override, self._source_override = sinks, source
        self._nonfinite_seen = 0
        self._started = False
        self.final_state_saved = False  # the last checkpoint, at shutdown, and its commit are durable
        self._state_lock = asyncio.Lock()  # a checkpoint and a restore never interleave
        # opened by startup, closed by shutdown: whatever startup reached
        self.executor = self.source = self.sinks = self.dead_letters = self.http = self.changelog = None
        # made by startup; shutdown uses them only once startup has finished
        self.labels = self.categories = self.metrics = self.health = self.failures = self.store = None
        self.learner = self.keys = self.ingest = self.publisher = self.handover = self.checkpointer = None

    # -- startup ------------------------------------------------------------------------------
    async def startup(self) -> None:
        s = self.settings
        self.labels = "open" if s.model.open else s.model.labels
        # open categories: one table, shared by the decoder (which adds labels) and the learner (which saves it)
        self.categories = CategoryTable(s.model.max_categories, s.model.category_overflow) if s.model.open else None
        self.metrics = Metrics(self.registry, max_key_labels=s.metrics.max_key_labels, clock=self._clock,
                               device=str(resolve_device(s.training.device)))
        self.health = Health(on_change=self.metrics.set_ready)
        self.health.set_not_ready("model", "starting")
        self.failures = KafkaFailures(self.metrics, self.health)
        self.store = CheckpointStore(s.checkpoint.directory, clock=self._clock)
        self.executor = background_executor("gumbeld-train")
        # encoding snapshots, writing sinks and rendering /metrics (asyncio.to_thread) yield to the loop too
        asyncio.get_running_loop().set_default_executor(background_executor("gumbeld-io", workers=4))
        self.changelog = None if self._source_override else build_changelog(s, self.registry, self.failures,
                                                                            self.categories)
        self.source = self._source_override or build_source(s, health=self.health, metrics=self.metrics,
                                                             failures=self.failures,
                                                             clock=self._clock, on_revoke=self.on_revoke,
                                                             on_lost=self.on_lost, changelog=self.changelog,
                                                             restorer=self.restore_partition,
                                                             categories=self.categories)
        self.learner, self.keys = self._new_learner(), self._new_keys()
        if self.changelog is not None:
            self.handover = Handover(self.changelog, source=self.source, keys=lambda: self.keys,
                                     learner=lambda: self.learner, run=self._run, take=self._take,
                                     lock=self._state_lock, clock=self._clock)
        saved = await self._run(self._resume)
        self.dead_letters = build_dead_letters(s, self.failures)
        self.ingest = Ingest(self.keys, self.categories or self.labels, metrics=self.metrics,
                             dead_letters=self.dead_letters, bad_log=BadEventLog(s.dead_letter.log_interval, self._clock),
                             now_rfc3339=lambda: rfc3339(self._clock()), clock=self._clock,
                             open_width=s.model.max_categories if s.model.open else None)
        self.sinks = self._sinks_override if self._sinks_override is not None else build_sinks(s, self.failures)
        self.publisher = Publisher(s, keys=self.keys, ingest=self.ingest, learner=self.learner, metrics=self.metrics,
                                   sinks=self.sinks, run=self._run, take=self._take, clock=self._clock, stop=self.stopping.set)
        self.publisher.restore(saved.get("evictions", []) if saved else [])
        self.checkpointer = Checkpointer(self.labels, keys=self.keys, learner=self.learner, ingest=self.ingest,
                                         publisher=self.publisher, source=self.source, dead_letters=self.dead_letters,
                                         store=self.store, handover=self.handover, metrics=self.metrics,
                                         health=self.health, run=self._run, lock=self._state_lock)
        self.http = HttpServer(s.metrics.host, s.metrics.port, self.registry, self.health,
                               max_connections=s.metrics.max_connections)
        try:
            await self.http.start()
        except OSError as error:
            self.http = None
            raise StartupError(f"cannot serve metrics on {s.metrics.host}:{s.metrics.port} "
                               f"(metrics.host, metrics.port): {error.strerror or error}") from None
        self.health.set_ready("model")
        self._started = True
        log.info("gumbeld started: %s; metrics on http://%s:%d/metrics",
                 self.learner.describe(), s.metrics.host, self.http.port)

    def _new_learner(self) -> Learner | OpenLearner:
        return build_learner(self.settings, self.categories, clock=self._clock)

    def _new_keys(self, state=None) -> KeyTable:
        return build_keys(self.settings, state)

    def _resume(self) -> dict | None:
        s = self.settings.checkpoint
        try:
            saved = self.store.load()
        except CheckpointError as error:
            if not s.fresh_start:
                raise StartupError(str(error)) from None
            log.warning("starting fresh, ignoring the checkpoint: %s", error)
            return None
        if saved is None:
            log.info("no checkpoint in %s: starting fresh", s.directory)
            return None
        try:
            check_compatible(saved, self.labels)
            self.keys = self._new_keys(saved["keys"])
            self.learner.load_state_dict(saved["learner"])
            self.source.restore(saved.get("source", {}))
        except (KeyError, ValueError, TypeError, RuntimeError) as error:
            if not s.fresh_start:
                raise StartupError(f"checkpoint in {s.directory} does not fit this configuration: {error}. "
                                   "Remove it or set checkpoint.fresh_start=true to start anew.") from None
            log.warning("starting fresh, checkpoint does not fit: %s", error)
            self.learner, self.keys = self._new_learner(), self._new_keys()
            return None
        self._nonfinite_seen = self.learner.nonfinite_total()
        if self.store.saved_at is not None:
            self.metrics.checkpoint_restored(self.store.saved_at)
            # downtime is not idleness: the keys' events may be waiting in the source
            self.keys.last_seen[: self.keys.n_rows] += max(0.0, self._clock() - self.store.saved_at)
        log.info("resumed from checkpoint: %d keys, step %d", len(self.keys), self.learner.steps_taken)
        return saved

    # -- main loop ----------------------------------------------------------------------------
    async def main_loop(self) -> None:
        s = self.settings
        tasks = [asyncio.create_task(coro, name=coro.__name__) for coro in
                 (self.pump(), self.train(), every(s.publish_interval, self.publish, self.stopping),
                  every(s.checkpoint.interval, self.checkpoint, self.stopping),
                  watch_loop_lag(self.metrics.observe_loop_lag))]
        stop = asyncio.create_task(self.stopping.wait())
        pending, failed = {stop, *tasks}, []
        while not stop.done():  # a finite source ends its pump; the rest goes on until stopped
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            failed = [t for t in done if t is not stop and t.exception() is not None]
            if failed:
                break
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stop.cancel()
        if failed:
            raise failed[0].exception()

    async def pump(self) -> None:
        async for batch in self.source.batches():
            self.publisher.consuming = True
            if self.ingest.add(batch):
                self._new_events.set()
            if batch.bad:
                await self.dead_letters.backpressure()
            # A backlog's polls return at once, without suspending: yield after each batch, so that
            # /livez, heartbeats and timers run between batches. Twice: a callback woken in one turn
            # (a timer's task) then runs before the next batch, not after it. Without this the loop
            # ran nothing else for 0.5-1.4 s at a time while catching up on a backlog.
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    async def train(self) -> None:
        """Rounds on the training thread while some key has something to learn; else wait for events.

        Events that wake no key (a settled key's new events within its tolerance) are gathered for
        a round's time before they are looked at, so a steady stream into settled keys costs at
        most one evaluation per ``training.round_seconds``, not one per batch.
        """
        while True:
            self._new_events.clear()  # before take(): an event counted after it wakes the wait below
            stats = await self._run(self.learner.train, self._take())
            self.metrics.set_keys(len(self.keys))
            self.metrics.set_activity(stats.active, stats.settled)
            self.metrics.observe_training(stats.steps, stats.seconds, stats.nonfinite - self._nonfinite_seen,
                                          stats.g_loss, stats.d_loss, stats.temperature, stats.key_steps)
            self._nonfinite_seen = stats.nonfinite
            if stats.active == 0:  # nothing to learn: wait for events, then let them gather for a round
                await self._new_events.wait()
                await asyncio.sleep(self.settings.training.round_seconds)

    async def publish(self, final: bool = False) -> None:
        """The changed snapshots and the evictions, to every sink (see :mod:`daemon.publishing`).

        Not while partitions move: their keys' rows were written at the revocation, and a snapshot
        published after it would be newer than what the next owner restores (its version would repeat).
        """
        if not self.source.rebalancing:
            await self.publisher.publish(final)

    async def checkpoint(self, final: bool = False) -> bool:
        """Save the whole state and commit its offsets (see :class:`~daemon.checkpointing.Checkpointer`)."""
        return await self.checkpointer.checkpoint(final)

    async def on_revoke(self, partitions) -> None:
        """Partitions are leaving: checkpoint and commit what was consumed from them."""
        await self.checkpoint()

    async def on_lost(self, keys: list[str]) -> None:
        """The partitions carrying ``keys`` went to other instances: stop training and publishing them.

        Not an eviction: the keys live on elsewhere, so no tombstone. Their rows are reset before reuse.
        """
        self.keys.remove(keys)
        log.info("dropped %d keys whose partitions moved to other instances", len(keys))

    async def restore_partition(self, tp, local_offset: int | None) -> int | None:
        """Keys of a newly assigned partition (see :class:`~daemon.handover.Handover`)."""
        return await self.handover.restore(tp, local_offset)

    def _take(self) -> Pending:
        """Pending counts for the model — none while a checkpoint is saving: the saved state must hold
        exactly the events up to the offsets it records."""
        saving = self.checkpointer is not None and self.checkpointer.saving
        return Pending(self.keys.n_rows, None, []) if saving else self.ingest.take()

    async def _run(self, fn, *args):
        # shielded: work handed to the training thread carries counts and freed rows taken from
        # ingest; it must run even when the task awaiting it is cancelled at shutdown
        return await asyncio.shield(asyncio.get_running_loop().run_in_executor(self.executor, fn, *args))

    # -- shutdown -----------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Drain: the main loop has ended (training with it); publish and checkpoint, then close the
        source, snapshot sinks, dead-letter sink, HTTP server and training thread — whatever
        startup opened, also after a startup that failed half-way."""
        if self._started:
            self.health.draining()
            await self.publish(final=True)
            self.final_state_saved = await self.checkpoint(final=True)
        if self.source is not None:
            await self.source.stop()
        if self.changelog is not None:
            await self.changelog.aclose()
        for sink in self.sinks or []:
            await sink.aclose()
        if self.dead_letters is not None:
            await self.dead_letters.aclose()
        if self.http is not None:
            await self.http.stop()
        if self.executor is not None:
            self.executor.shutdown(wait=True)
        if self._started:
            log.info("gumbeld stopped at step %d", self.learner.steps_taken)

    async def serve(self) -> int:
        """Run until stopped; the exit code is 1 when the final checkpoint or commit could not be written."""
        try:
            await self.startup()
            await self.main_loop()
        finally:
            await asyncio.wait_for(self.shutdown(), timeout=self.settings.shutdown_timeout)
        if not self.final_state_saved:
            log.error("stopped without a final checkpoint and commit: the events consumed since the last "
                      "durable one will be consumed again at the next start")
            return 1
        return 0
