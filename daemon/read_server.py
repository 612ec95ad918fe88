"""``gumbeld serve``: ``/v1`` for every key of the learned-distribution topic, with no state of its own.

Startup: serve ``/livez``, ``/readyz``, ``/metrics`` and ``/v1`` on ``metrics.host:metrics.port``,
then follow ``sinks.kafka.topic`` (through ``source.kafka``'s connection) from its start
(:class:`~daemon.api.follower.TopicFollower`), reconnecting with a backoff while the brokers do not
answer. Ready once it has read the topic to the end it had. Runs until SIGTERM/SIGINT; run as many
as reads need.
"""
from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from .api.follower import CONDITION, TopicFollower
from .api.metrics import ApiMetrics, FollowerCollector
from .api.published import Published
from .api.reads import ReadApi
from .errors import StartupError
from .health import Health
from .http import HttpServer
from .kafka.backoff import Backoff
from .kafka.connection import client_options, describe
from .settings import GumbeldSettings

log = logging.getLogger("gumbeld")


class ReadServer:
    def __init__(self, settings: GumbeldSettings, *, registry: CollectorRegistry | None = None, clock=time.time) -> None:
        if settings.sinks.kafka.topic is None:
            raise StartupError("gumbeld serve reads the learned-distribution topic: set sinks.kafka.topic")
        self.settings, self._clock = settings, clock
        self.registry = registry if registry is not None else CollectorRegistry()
        self.stopping = asyncio.Event()
        self.health = Health()
        self.published = Published()
        self.follower = TopicFollower(client_options(settings.source.kafka), settings.sinks.kafka.topic,
                                      self.published, self.health)
        m = settings.metrics
        self.registry.register(FollowerCollector(self.follower))
        api = ReadApi(settings.api, self.published, arrivals=self.follower, owned=None,
                      seeds=np.random.default_rng(), clock=clock, metrics=ApiMetrics(self.registry))
        self.http = HttpServer(m.host, m.port, self.registry, self.health, max_connections=m.max_connections, api=api)

    async def serve(self) -> int:
        m = self.settings.metrics
        try:
            await self.http.start()
        except OSError as error:
            raise StartupError(f"cannot serve on {m.host}:{m.port} (metrics.host, metrics.port): "
                               f"{error.strerror or error}") from None
        log.info("gumbeld serve started for topic %s; metrics on http://%s:%d/metrics",
                 self.settings.sinks.kafka.topic, m.host, self.http.port)
        following = asyncio.create_task(self._follow())
        stop = asyncio.create_task(self.stopping.wait())
        try:
            await asyncio.wait({following, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (following, stop):
                task.cancel()
            await asyncio.gather(following, stop, return_exceptions=True)
            await self.follower.stop()
            await self.published.aclose()
            await self.http.stop()
        if not following.cancelled() and following.exception() is not None:  # a bug: say so, exit non-zero
            log.error("following %s failed", self.settings.sinks.kafka.topic, exc_info=following.exception())
            return 1
        return 0

    async def _follow(self) -> None:
        """Connect (again after a backoff while that fails), then follow the topic for good."""
        kafka = self.settings.source.kafka
        backoff = Backoff(maximum=kafka.retry_backoff_max)
        while True:
            try:
                await asyncio.wait_for(self.follower.start(), kafka.request_timeout)
                await self.follower.follow()
            except (KafkaError, asyncio.TimeoutError, OSError) as error:
                wait = backoff.next()
                reason = f"Kafka unreachable at {describe(kafka)}: {error or type(error).__name__}"
                log.warning("%s; retrying in %.1f s", reason, wait)
                self.health.set_not_ready(CONDITION, reason)
                await self.follower.stop()
                await asyncio.sleep(wait)
