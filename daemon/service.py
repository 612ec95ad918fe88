"""The service's lifecycle — startup, main loop, shutdown (the process around it: :mod:`daemon.runner`).

Startup: build the model, resume from the checkpoint, open the sinks, serve ``/metrics``, ``/livez``,
``/readyz`` and ``/v1`` (:mod:`daemon.api`); with the Kafka source, keys of partitions assigned later are restored from the
state topics (:mod:`daemon.state.handover`). Main loop, until SIGTERM/SIGINT or until stdout's reader goes
away (:mod:`daemon.publishing`): **pump** events from the source into the histograms (on the event
loop), **train** in time-bounded rounds on the training thread (:mod:`daemon.learning.training`: the keys
with something to learn; none at all once every key settled), **publish** the changed snapshots every ``publish_interval``,
**checkpoint** every ``checkpoint.interval``, and **watch** the event loop's lag. Shutdown: the main
loop's tasks are cancelled, so ingest and training stop; ``/readyz`` turns 503; the final publish
and the final checkpoint's copy of the state run on the training thread after the round already
there (it ends within ``training.round_seconds``); then the source, state topics, snapshot sinks,
dead-letter sink, HTTP server and training thread close, in that order. A startup that fails half-way closes what it had opened.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time

import numpy as np
from prometheus_client import CollectorRegistry

from gumbel_models import resolve_device

from .api.metrics import ApiMetrics
from .api.pacing import Pacer
from .api.published import Published
from .api.reads import ReadApi
from .categories import CategoryTable
from .errors import StartupError
from .health import Health
from .http import HttpServer
from .kafka.failures import KafkaFailures
from .learning.training import Training
from .loops import every, watch_loop_lag
from .metrics import Metrics
from .publishing import Publisher
from .settings import GumbeldSettings
from .sinks.sink import SnapshotSink
from .sources.source import Source
from .state.checkpoint import CheckpointStore
from .state.checkpointing import Checkpointer
from .state.handover import Handover, Rebalance
from .state.resume import resume
from .threads import background_executor
from .wiring import build_changelog, build_dead_letters, build_ingest, build_sinks, build_source

log = logging.getLogger("gumbeld")


class Service:
    def __init__(self, settings: GumbeldSettings, *, registry: CollectorRegistry | None = None,
                 clock=time.time, sinks: list[SnapshotSink] | None = None, source: Source | None = None) -> None:
        """``sinks`` and ``source`` replace the configured ones."""
        self.settings, self._clock = settings, clock
        self.registry = registry if registry is not None else CollectorRegistry()
        self.stopping = asyncio.Event()
        self._sinks_override, self._source_override = sinks, source
        self._started = False
        self.final_state_saved = False  # the last checkpoint, at shutdown, and its commit are durable
        # opened by startup, closed by shutdown: whatever startup reached
        self.executor = self.source = self.sinks = self.dead_letters = self.http = self.changelog = None
        # made by startup; shutdown uses them only once startup has finished
        self.metrics = self.health = self.training = self.ingest = self.published = None
        self.publisher = self.handover = self.checkpointer = None

    # -- startup ------------------------------------------------------------------------------
    async def startup(self) -> None:
        s = self.settings
        # open categories: one table, shared by the decoder (which adds labels) and the learner (which saves it)
        categories = CategoryTable(s.model.max_categories, s.model.category_overflow) if s.model.open else None
        self.metrics = Metrics(self.registry, max_key_labels=s.metrics.max_key_labels, clock=self._clock,
                               device=str(resolve_device(s.training.device)))
        self.health = Health(self.metrics)
        self.health.set_not_ready("model", "starting")
        failures = KafkaFailures(self.metrics, self.health)
        store = CheckpointStore(s.checkpoint.directory, clock=self._clock)
        self.executor = background_executor("gumbeld-train")
        # encoding snapshots, writing sinks and rendering /metrics (asyncio.to_thread) yield to the loop too
        asyncio.get_running_loop().set_default_executor(background_executor("gumbeld-io", workers=4))
        self.changelog = build_changelog(s, self.registry, failures, categories)
        self.source = self._source_override or build_source(s, health=self.health, metrics=self.metrics,
                                                             failures=failures, clock=self._clock, categories=categories)
        resumed = await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(
            resume, s, store, source=self.source, metrics=self.metrics, categories=categories, clock=self._clock))
        self.dead_letters = build_dead_letters(s, failures)
        self.ingest = build_ingest(s, resumed.keys, categories, metrics=self.metrics, dead_letters=self.dead_letters,
                                   clock=self._clock)
        newest = await asyncio.get_running_loop().run_in_executor(  # the keys' event clocks, as checkpointed
            self.executor, resumed.learner.newest_times, resumed.keys.n_rows)
        self.ingest.watermarks.restore(np.arange(len(newest)), newest)
        self.training = Training(resumed.learner, resumed.keys, self.ingest, self.executor, metrics=self.metrics,
                                 round_seconds=s.training.round_seconds)
        if self.changelog is not None:
            self.handover = Handover(self.changelog, source=self.source, training=self.training, clock=self._clock)
        self.sinks = self._sinks_override if self._sinks_override is not None else build_sinks(s, failures)
        if s.api.enabled:  # what /v1 answers from: the snapshots as published, taken as any sink takes them
            self.published = Published()
            self.sinks = [*self.sinks, self.published]
        self.publisher = Publisher(s, training=self.training, ingest=self.ingest, metrics=self.metrics,
                                   sinks=self.sinks, clock=self._clock, stopping=self.stopping)
        self.publisher.restore(resumed.saved.get("evictions", []) if resumed.saved else [])
        self.checkpointer = Checkpointer("open" if s.model.open else s.model.labels, training=self.training,
                                         publisher=self.publisher, source=self.source, dead_letters=self.dead_letters,
                                         store=store, handover=self.handover, metrics=self.metrics, health=self.health)
        self.source.listen(Rebalance(self.checkpointer, self.training, self.handover))
        await self._serve_http()
        self.health.set_ready("model")
        self._started = True
        log.info("gumbeld started: %s; metrics on http://%s:%d/metrics",
                 self.training.learner.describe(), s.metrics.host, self.http.port)

    async def _serve_http(self) -> None:
        m = self.settings.metrics
        a = self.settings.api
        api = None if self.published is None else ReadApi(
            a, self.published, arrivals=self.source, owned=self.training.keys, seeds=np.random.default_rng(),
            clock=self._clock, pacer=Pacer(a.max_reads_per_second) if a.max_reads_per_second > 0 else None,
            metrics=ApiMetrics(self.registry))
        self.http = HttpServer(m.host, m.port, self.registry, self.health, max_connections=m.max_connections, api=api)
        try:
            await self.http.start()
        except OSError as error:
            self.http = None
            raise StartupError(f"cannot serve metrics on {m.host}:{m.port} "
                               f"(metrics.host, metrics.port): {error.strerror or error}") from None

    # -- main loop ----------------------------------------------------------------------------
    async def main_loop(self) -> None:
        s = self.settings
        tasks = [asyncio.create_task(coro, name=coro.__name__) for coro in
                 (self.pump(), self.training.run(), every(s.publish_interval, self.publish, self.stopping),
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
                self.training.events_arrived()
            if batch.bad:
                await self.dead_letters.backpressure()
            # A backlog's polls return at once, without suspending: yield after each batch, so that
            # /livez, heartbeats and timers run between batches. Twice: a callback woken in one turn
            # (a timer's task) then runs before the next batch, not after it. Without this the loop
            # ran nothing else for 0.5-1.4 s at a time while catching up on a backlog.
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    async def publish(self, final: bool = False) -> None:
        """The changed snapshots and the evictions, to every sink (see :mod:`daemon.publishing`).

        Not while partitions move: their keys' rows were written at the revocation, and a snapshot
        published after it would be newer than what the next owner restores (its version would repeat).
        """
        if not self.source.rebalancing:
            await self.publisher.publish(final)

    async def checkpoint(self, final: bool = False) -> bool:
        """Save the whole state and commit its offsets (see :class:`~daemon.state.checkpointing.Checkpointer`)."""
        return await self.checkpointer.checkpoint(final)

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
            log.info("gumbeld stopped at step %d", self.training.learner.steps_taken)

    async def serve(self) -> int:
        """Run until stopped; the exit code is 1 when the final checkpoint or commit could not be
        written, within ``shutdown_timeout`` or at all."""
        try:
            await self.startup()
            await self.main_loop()
        finally:
            try:
                await asyncio.wait_for(self.shutdown(), timeout=self.settings.shutdown_timeout)
            except asyncio.TimeoutError:
                log.error("the shutdown took longer than shutdown_timeout (%g s) and was cut short",
                          self.settings.shutdown_timeout)
        if not self.final_state_saved:
            log.error("stopped without a final checkpoint and commit: the events consumed since the last "
                      "durable one will be consumed again at the next start")
            return 1
        return 0
