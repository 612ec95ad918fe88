"""Publishing: every interval, the keys that changed and the keys that left, to every sink.

Each ``publish_interval`` the :class:`Publisher`

1. evicts the keys idle past ``model.key_ttl`` and collects every eviction since the last publish;
2. adds the events counted since then to the per-key metrics;
3. on the training thread (:meth:`~daemon.learning.training.Training.publication`), picks the keys whose snapshot changed (new events, learned
   probabilities moved by more than ``publish_tolerance``, or not published for
   ``publish_full_interval``), read from the device in one go;
4. encodes them once, in a worker thread, and hands the same bytes to every sink;
5. updates the per-key gauges of the at most ``metrics.max_key_labels`` keys with series of their own.

A snapshot is the model as the latest training round left it: the learned distribution next to
the histogram it was trained on. Events counted since that round began join the next round and
the next snapshot (the final publish at shutdown counts them first): published at once, they
would stand next to a learned distribution that has not seen them yet (in ``gumbeld bench scale``
at 100,000 keys, p99 TV while streaming 0.030 in two runs, against 0.023 and 0.026 as the round
left it).
Nothing in it walks all keys on the event loop. What a sink failed to take (a broker down, a
full disk) goes to that sink again with its next publish, newest message per key
(:class:`~daemon.snapshots.Undelivered`); a failure is counted and logged, once a minute per sink.
The final publish, at shutdown, has no next one: it offers what failed again, a few times.
Evictions not yet taken by every sink are also part of the checkpoint, so a tombstone is delivered
at least once.
A sink whose reader went away (:class:`~daemon.sinks.local.ReaderGone`: ``gumbeld run | head`` after
``head`` exits) is not a failure to retry: it is dropped, and the service stops as on SIGTERM
(``stopping`` is set).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from aiokafka.errors import KafkaError

from .learning.ingest import Ingest
from .kafka.failures import LOG_INTERVAL, cause
from .learning.training import Training
from .logs import Throttle
from .metrics import Metrics
from .settings import GumbeldSettings
from .sinks.sink import ReaderGone
from .snapshots import Eviction, Publication, SnapshotBatch, Undelivered
from .timestamps import rfc3339

log = logging.getLogger("gumbeld")
FINAL_PUBLISH_RETRIES, FINAL_PUBLISH_RETRY = 3, 0.5  # attempts after the first, seconds apart; within shutdown_timeout
CANCELLED_DELIVERY_GRACE = 2.0  # seconds a sink may go on taking a publication after the stop cancelled it


class Publisher:
    def __init__(self, settings: GumbeldSettings, *, training: Training, ingest: Ingest, metrics: Metrics,
                 sinks: list, clock: Callable[[], float], stopping: asyncio.Event) -> None:
        self.settings, self.training, self.ingest = settings, training, ingest
        self.metrics, self.sinks, self._clock = metrics, sinks, clock
        self.stopping = stopping  # the service's graceful stop, the one SIGTERM starts
        self.unsent: list[Eviction] = []   # evictions not yet taken by every sink
        self.undelivered: dict[str, Undelivered] = {}  # sink name → what it failed to take
        self._failure_log = Throttle(LOG_INTERVAL)
        self.consuming = False             # no TTL expiry before the source delivers after a start

    async def publish(self, final: bool = False) -> None:
        """One publication; ``final`` (at shutdown) counts the pending events into it first.

        Cancelled (the stop cancels the main loop's publish), it still finishes steps 3 and 4 (a
        round and an encode at most), and the sinks that had not taken the publication owe it: the
        final publish delivers it. The keys in it were marked published at step 3, and would
        otherwise reach those sinks only once they changed again.
        """
        evictions = self.collect_evictions()                                            # 1.
        self.ingest.report_events()                                                     # 2.
        preparing = asyncio.ensure_future(self._prepare(evictions, final))              # 3., 4.
        try:
            publication, worst, own = await asyncio.shield(preparing)
        except asyncio.CancelledError:
            publication, _, _ = await preparing
            self._owe(publication, self.sinks)
            raise
        gone, settled = [], []
        if len(publication) or self.undelivered:
            try:
                failed = await self._deliver(publication, gone, settled)
            except asyncio.CancelledError:
                self._owe(publication, [sink for sink in self.sinks if sink not in settled])
                raise
            # the final publish has no next one: what a sink failed to take is offered again, a few times
            for _ in range(FINAL_PUBLISH_RETRIES if final else 0):
                if not failed:
                    break
                await asyncio.sleep(FINAL_PUBLISH_RETRY)
                failed = await self._deliver(Publication(SnapshotBatch.empty(0.0, "")), gone, [])
            if not failed:
                self.unsent = self.unsent[len(publication.evictions):]
        for record in own:                                                              # 5.
            self.metrics.set_key(record["key"], record["categories"], record["probabilities"],
                                 record["empirical"], record["divergence"])
        self.metrics.set_other_divergence(worst)
        if gone:  # last: the stop cancels this task at its next await; the other sinks had this publication
            self._readers_gone(gone)

    async def _prepare(self, evictions: list[Eviction], final: bool) -> tuple[Publication, dict, list[dict]]:
        s = self.settings
        publication, worst = await self.training.publication(                           # 3.
            evictions, full_interval=s.publish_full_interval, tolerance=s.publish_tolerance,
            labelled=self.ingest.labelled_rows(), final=final)
        own = await asyncio.to_thread(self._encode, publication)                        # 4.
        return publication, worst, own

    async def _deliver(self, publication: Publication, gone: list, settled: list) -> bool:
        """``publication`` to every sink, with what each failed to take before; whether one failed again.
        ``settled`` gets each sink that took it, failed (and owes it) or went away.

        Cancelled while a sink takes it, that sink is given ``CANCELLED_DELIVERY_GRACE`` seconds to
        finish (a Kafka sink's messages are usually on their way already: sent again, a subscriber
        would see a version twice); the sinks after it owe the publication.
        """
        failed = cancelled = False
        for sink in [sink for sink in self.sinks if sink not in gone]:
            owed = self.undelivered.get(sink.name)
            sending = asyncio.ensure_future(sink.publish(owed.joined(publication) if owed else publication))
            try:
                await asyncio.shield(sending)
            except asyncio.CancelledError:
                cancelled = True
                await asyncio.wait({sending}, timeout=CANCELLED_DELIVERY_GRACE)
                if not sending.done():
                    sending.cancel()
                    await asyncio.wait({sending})
                    raise  # this sink and the ones after it owe the publication
            except Exception:
                pass  # examined below, as the sink's outcome
            settled.append(sink)
            error = None if sending.cancelled() else sending.exception()
            if isinstance(error, ReaderGone):
                gone.append(sink)
            elif isinstance(error, (OSError, KafkaError, asyncio.TimeoutError)):  # learning goes on; next interval retries
                self._failed(sink.name, publication, error)
                failed = True
            elif error is not None:
                raise error
            else:
                self.undelivered.pop(sink.name, None)
                self.metrics.snapshots_published(sink.name, len(publication.snapshots))
            if cancelled:
                raise asyncio.CancelledError
        return failed

    def _owe(self, publication: Publication, sinks: list) -> None:
        """``sinks`` did not take ``publication`` (its publish was cancelled): the next publish carries it."""
        if len(publication):
            for sink in sinks:
                self.undelivered.setdefault(sink.name, Undelivered()).add(publication)

    def _failed(self, sink: str, publication: Publication, error: BaseException) -> None:
        self.undelivered.setdefault(sink, Undelivered()).add(publication)
        self.metrics.publish_failed(sink)
        held = self._failure_log.allow(sink)
        if held is not None:
            log.error("publishing to %s failed (%d messages to send again with the next publish): %s%s", sink,
                      len(self.undelivered[sink]), cause(error), Throttle.since(held))

    def _readers_gone(self, sinks: list) -> None:
        """Publish no more to ``sinks``, whose readers went away, and stop the service gracefully."""
        for sink in sinks:
            log.info("%s was closed by its reader: stopping", sink.name)
        self.sinks = [sink for sink in self.sinks if sink not in sinks]
        self.stopping.set()

    def collect_evictions(self) -> list[Eviction]:
        """Expire idle keys; every eviction since the last publish, unsent ones first."""
        ttl = self.settings.model.key_ttl
        if ttl is not None and self.consuming:
            self.training.keys.expire(self._clock(), ttl)
        at = rfc3339(self._clock())
        fresh = [Eviction(name, reason, at) for name, reason in self.training.keys.take_evicted()]
        for eviction in fresh:
            self.metrics.keys_evicted(eviction.reason)
        self.unsent = self.unsent + fresh  # until every sink took them (a cancelled publish keeps them)
        return list(self.unsent)

    def _encode(self, publication: Publication) -> list[dict]:
        """Encode for the sinks; returns the records of the keys with metric series of their own."""
        publication.encode()
        labelled = self.metrics.labelled_keys()
        if not labelled:
            return []
        batch = publication.snapshots
        return batch.records_at(i for i, key in enumerate(batch.keys) if key in labelled)

    # -- checkpoints --------------------------------------------------------------------------
    def state(self) -> list[dict]:
        """Evictions not yet delivered (including those not yet collected)."""
        pending = self.unsent + [Eviction(n, r, rfc3339(self._clock())) for n, r in self.training.keys.peek_evicted()]
        return [e.record() for e in pending]

    def restore(self, records: list[dict]) -> None:
        self.unsent = [Eviction(r["key"], r["reason"], r["evicted_at"]) for r in records]
