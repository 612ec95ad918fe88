"""The service's lifecycle — startup, main loop, shutdown (the process around it: :mod:`daemon.runner`).

Startup: build the model, resume from the checkpoint, open the sinks, serve ``/metrics``,
``/livez`` and ``/readyz``. Main loop, until SIGTERM/SIGINT: **pump** events from the source into
the histograms (on the event loop), **train** in rounds on the training thread, **publish**
snapshots every ``publish_interval``, **checkpoint** every ``checkpoint.interval``. Shutdown:
``/readyz`` turns 503, ingest stops, the current round finishes, then the final checkpoint and
the final publish; a second signal exits at once.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from gumbel_models import GumbelGAN, resolve_device

from .checkpoint import CheckpointError, CheckpointStore
from .http import Health, HttpServer
from .ingest import BadEventLog, Ingest
from .keys import KeyTable
from .learner import Learner, rfc3339
from .metrics import Metrics
from .settings import GumbeldSettings
from .sinks import SnapshotSink
from .wiring import build_dead_letters, build_sinks, build_source

log = logging.getLogger("gumbeld")
CHECKPOINT_VERSION = 1


class StartupError(Exception):
    """The service cannot start; the message says why and what to do."""


class Service:
    def __init__(self, settings: GumbeldSettings, *, registry: CollectorRegistry | None = None,
                 clock=time.time, sinks: list[SnapshotSink] | None = None, source=None) -> None:
        self.settings, self._clock = settings, clock
        self.registry = registry if registry is not None else CollectorRegistry()
        self.stopping = asyncio.Event()
        self._new_events = asyncio.Event()
        self._sinks_override, self._source_override = sinks, source
        self._idle_steps = 0
        self._nonfinite_seen = 0
        self._checkpointing = False

    # -- startup ------------------------------------------------------------------------------
    async def startup(self) -> None:
        s = self.settings
        self.labels = s.model.labels
        self.metrics = Metrics(self.registry, max_key_labels=s.metrics.max_key_labels, clock=self._clock,
                               device=str(resolve_device(s.training.device)))
        self.health = Health(on_change=self.metrics.set_ready)
        self.health.set_not_ready("model", "starting")
        self.source = self._source_override or build_source(s, health=self.health, metrics=self.metrics,
                                                             clock=self._clock, on_revoke=self.on_revoke,
                                                             on_lost=self.on_lost)
        self.store = CheckpointStore(s.checkpoint.directory, clock=self._clock)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gumbeld-train")
        self.learner, self.keys = self._new_learner(), KeyTable(s.model.max_keys)
        await self._run(self._resume)
        self.dead_letters = build_dead_letters(s)
        self.ingest = Ingest(self.keys, self.labels, metrics=self.metrics, dead_letters=self.dead_letters,
                             bad_log=BadEventLog(s.dead_letter.log_interval, self._clock),
                             now_rfc3339=lambda: rfc3339(self._clock()))
        self.sinks = self._sinks_override if self._sinks_override is not None else build_sinks(s)
        self.http = HttpServer(s.metrics.host, s.metrics.port, self.registry, self.health)
        try:
            await self.http.start()
        except OSError as error:
            raise StartupError(f"cannot serve metrics on {s.metrics.host}:{s.metrics.port} "
                               f"(metrics.host, metrics.port): {error.strerror or error}") from None
        self.health.set_ready("model")
        model = self.learner.model
        log.info("gumbeld started: %d categories, device %s, %s; metrics on http://%s:%d/metrics",
                 len(self.labels), model.device, model, s.metrics.host, self.http.port)

    def _new_learner(self) -> Learner:
        s = self.settings
        model = GumbelGAN(s.model.gan_config(), 0, seed=s.training.seed, device=s.training.device)
        return Learner(model, self.labels, clock=self._clock)

    def _resume(self) -> None:
        s = self.settings.checkpoint
        try:
            saved = self.store.load()
        except CheckpointError as error:
            if not s.fresh_start:
                raise StartupError(str(error)) from None
            log.warning("starting fresh, ignoring the checkpoint: %s", error)
            return
        if saved is None:
            log.info("no checkpoint in %s: starting fresh", s.directory)
            return
        try:
            self._check_compatible(saved)
            self.keys = KeyTable(self.settings.model.max_keys, saved["keys"])
            self.learner.load_state_dict(saved["learner"])
            self.source.restore(saved.get("source", {}))
        except (KeyError, ValueError, TypeError, RuntimeError) as error:
            if not s.fresh_start:
                raise StartupError(f"checkpoint in {s.directory} does not fit this configuration: {error}. "
                                   "Remove it or set checkpoint.fresh_start=true to start anew.") from None
            log.warning("starting fresh, checkpoint does not fit: %s", error)
            self.learner, self.keys = self._new_learner(), KeyTable(self.settings.model.max_keys)
            return
        self._nonfinite_seen = int(self.learner.model.nonfinite.item())
        if self.store.saved_at is not None:
            self.metrics.checkpoint_restored(self.store.saved_at)
        log.info("resumed from checkpoint: %d keys, step %d", len(self.keys), self.learner.model.t)

    def _check_compatible(self, saved: dict) -> None:
        if saved.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"service state version {saved.get('version')!r}, expected {CHECKPOINT_VERSION}")
        if list(saved["categories"]) != self.labels:
            raise ValueError(f"it was trained on categories {list(saved['categories'])}, "
                             f"the configuration has {self.labels}")

    # -- main loop ----------------------------------------------------------------------------
    async def main_loop(self) -> None:
        tasks = [asyncio.create_task(coro, name=coro.__name__) for coro in
                 (self.pump(), self.train(), self.every(self.settings.publish_interval, self.publish),
                  self.every(self.settings.checkpoint.interval, self.checkpoint))]
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
            if self.ingest.add(batch):
                self._new_events.set()
            if batch.bad:
                await self.dead_letters.backpressure()

    async def train(self) -> None:
        t = self.settings.training
        while True:
            self._new_events.clear()  # before take(): an event counted after it wakes the wait below
            n_keys, counts = self._take()
            if counts is not None:
                self._idle_steps = 0
            elif n_keys == 0 or (t.idle_after_steps and self._idle_steps >= t.idle_after_steps):
                await self._new_events.wait()
                continue
            stats = await self._run(self.learner.train, n_keys, counts, t.steps_per_round)
            self._idle_steps += stats.steps
            self.metrics.set_keys(n_keys)
            self.metrics.observe_training(stats.steps, stats.seconds, stats.nonfinite - self._nonfinite_seen,
                                          stats.g_loss, stats.d_loss, stats.temperature)
            self._nonfinite_seen = stats.nonfinite

    async def every(self, interval: float, action) -> None:
        while True:
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=interval)
                return
            except asyncio.TimeoutError:
                await action()

    async def publish(self) -> None:
        """Snapshot every key with events, including events not yet trained on, to every sink."""
        names = list(self.keys.names)
        snapshots = await self._run(self._absorbed, self._take(), lambda: self.learner.snapshots(names))
        if not snapshots:
            return
        for sink in self.sinks:
            try:
                await sink.publish(snapshots)
            except (OSError, KafkaError, asyncio.TimeoutError) as error:  # learning goes on; next interval retries
                log.error("publishing to %s failed: %s", sink.name, error or type(error).__name__)
                self.metrics.publish_failed(sink.name)
                continue
            self.metrics.snapshots_published(sink.name, len(snapshots))
        for snap in snapshots:
            self.metrics.set_key(snap["key"], snap["categories"], snap["probabilities"], snap["empirical"],
                                 snap["divergence"])

    async def checkpoint(self) -> None:
        """Save the whole state with the offsets it includes, then commit those offsets.

        1. capture, on the loop: pending counts, key names, source position (consistent together);
        2. make the dead letters of those events durable;
        3. on the training thread: count the pending events into the model, write the checkpoint;
        4. commit the checkpointed offsets to the consumer group.
        A crash between any two steps loses nothing: offsets never get ahead of saved state.
        """
        self._checkpointing = True  # training takes no new counts until the state is saved
        try:
            names = list(self.keys.names)                                                    # 1.
            position = self.source.position()
            pending = self.ingest.take()
            try:
                await self.dead_letters.flush()                                              # 2.
            finally:
                await self._run(self.learner.train, *pending, 0)  # counted events join the model regardless
            await self._run(lambda: self.store.save(self._state(names, position)))           # 3. (state read on the training thread)
            self.metrics.checkpoint_written()
        except (OSError, KafkaError, asyncio.TimeoutError) as error:
            self.metrics.checkpoint_failed()
            log.error("checkpoint failed, will retry at the next interval: %s", error or type(error).__name__)
            return
        finally:
            self._checkpointing = False
        try:
            await self.source.commit(position.get("offsets", {}))                            # 4.
        except (KafkaError, asyncio.TimeoutError) as error:
            log.warning("offset commit failed (the checkpoint has them; next commit catches up): %s",
                        error or type(error).__name__)

    async def on_revoke(self, partitions) -> None:
        """Partitions are leaving: checkpoint and commit what was consumed from them."""
        await self.checkpoint()

    async def on_lost(self, keys: list[str]) -> None:
        """The partitions carrying ``keys`` went to other instances: stop training and publishing them."""
        await self.drop_keys(keys)
        log.info("dropped %d keys whose partitions moved to other instances", len(keys))

    def drop_keys(self, names: list[str]):
        """Forget keys (no await inside: the key table, pending counts and the queued model change agree)."""
        rows = self.keys.remove(names)
        self.ingest.remove_rows(rows)
        for name in names:
            self.metrics.forget_key(name)
        return self._run(self.learner.remove_rows, rows)

    def _take(self) -> tuple[int, object]:
        """Pending counts for the model — none while a checkpoint is saving: the saved state must hold
        exactly the events up to the offsets it records."""
        return (len(self.keys), None) if self._checkpointing else self.ingest.take()

    def _state(self, names: list[str], position: dict) -> dict:
        return {"version": CHECKPOINT_VERSION, "categories": self.labels, "keys": names,
                "learner": self.learner.state_dict(), "source": position}

    def _absorbed(self, pending: tuple, action):
        """On the training thread: count ``pending`` (taken on the loop) into the model, then ``action()``.

        Keys, counts and source position are captured together on the loop, so what is saved or
        published is consistent: every event counted up to that moment, nothing after it.
        """
        self.learner.train(*pending, 0)
        return action()

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -- shutdown -----------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Drain: the current round has finished (main loop joined); then checkpoint and publish."""
        self.health.draining()
        await self.publish()
        await self.checkpoint()
        await self.source.stop()
        for sink in self.sinks:
            await sink.aclose()
        await self.dead_letters.aclose()
        await self.http.stop()
        self.executor.shutdown(wait=True)
        log.info("gumbeld stopped at step %d", self.learner.model.t)

    async def serve(self) -> int:
        await self.startup()
        try:
            await self.main_loop()
        finally:
            await asyncio.wait_for(self.shutdown(), timeout=self.settings.shutdown_timeout)
        return 0
