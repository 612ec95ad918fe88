"""Writing to Kafka: one :class:`Producer` per use (snapshots, dead letters, state rows).

:mod:`daemon.wiring` builds one for each, started lazily at its first send, compressing with
``sinks.kafka.compression_type``. A send waits at most ``send_timeout`` seconds; a broker that is
down makes the publish or flush fail, which is reported to :class:`~daemon.kafka.failures.KafkaFailures`
(counted, logged, on ``/readyz``), and a later interval tries again. A broker that refuses the
idempotent producer is named as such, with the setting to change. A producer that failed to start
is not started again before a :class:`~daemon.kafka.backoff.Backoff` wait (up to
``source.kafka.retry_backoff_max``) has passed: sends meanwhile fail at once. Neither ever blocks
ingest or training.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from ..settings import KafkaSourceSettings
from .backoff import Backoff
from .connection import client_options, describe
from .failures import IdempotenceRefused, KafkaFailures, cause

log = logging.getLogger("gumbeld.kafka")
YIELD_EVERY = 500  # messages queued between yields to the event loop (~5 ms of work)


class Producer:
    """One lazily started ``AIOKafkaProducer``; ``send_all`` waits at most ``timeout`` seconds.

    ``operation`` names its sends to ``failures`` (``produce`` or ``state_write``); without
    ``failures`` they are only raised (tools and benchmarks).
    """

    def __init__(self, connection: KafkaSourceSettings, *, enable_idempotence: bool, timeout: float,
                 compression_type: str = "none", operation: str = "produce", failures: KafkaFailures | None = None,
                 producer_factory=AIOKafkaProducer, clock: Callable[[], float] = time.monotonic) -> None:
        self._connection, self._idempotence, self.timeout = connection, enable_idempotence, timeout
        self._compression = None if compression_type == "none" else compression_type
        self.operation, self._failures = operation, failures
        self._factory, self._clock = producer_factory, clock
        self._producer: AIOKafkaProducer | None = None
        self._backoff = Backoff(maximum=connection.retry_backoff_max)
        self._retry_at, self._start_error = float("-inf"), ""
        self._refused: IdempotenceRefused | None = None  # why the last start failed, if the brokers refused idempotence

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        if self._clock() < self._retry_at:
            if self._refused is not None:
                raise self._refused.with_traceback(None)
            raise KafkaConnectionError(f"no producer for {describe(self._connection)}: the last start failed "
                                       f"({self._start_error}); next attempt in {self._retry_at - self._clock():.1f} s")
        producer = self._factory(enable_idempotence=self._idempotence, acks="all", linger_ms=5,
                                 compression_type=self._compression, **client_options(self._connection))
        try:
            await producer.start()
        except asyncio.CancelledError:  # cut short: by the send's timeout (send_all backs off) or by a stop,
            await _stop(producer)       # which is no failure of the brokers and must not delay the final checkpoint
            raise
        except BaseException as error:
            self._back_off(error)
            await _stop(producer)
            if self._refused is not None:
                raise self._refused from error
            raise
        self._backoff.reset()
        self._producer, self._refused = producer, None
        return producer

    async def send_all(self, topic: str, messages: list[tuple]) -> None:
        """Send ``(key, value, headers)`` messages, or ``(key, value, headers, partition)`` to a
        chosen partition, and wait for every acknowledgement."""
        async def send() -> None:
            producer = await self._started()
            futures = []
            for i, (key, value, headers, *partition) in enumerate(messages):
                chosen = {"partition": partition[0]} if partition else {}
                futures.append(await producer.send(topic, value=value, key=key, headers=headers, **chosen))
                if i % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)  # a publish of 100,000 keys must not hold the event loop
            # gathered a slice at a time: gather(*futures) adds a callback to each in one go, 0.2 s of the
            # event loop for the 100,000 rows of a checkpoint or snapshots of a publish
            for start in range(0, len(futures), YIELD_EVERY):
                await asyncio.gather(*futures[start:start + YIELD_EVERY])
        try:
            await asyncio.wait_for(send(), self.timeout)
        except (KafkaError, asyncio.TimeoutError, OSError) as error:
            if isinstance(error, asyncio.TimeoutError) and self._producer is None:
                self._back_off(error)  # the brokers did not answer the start in time
            self._report(topic, error)
            await self.close()  # start afresh next time: a half-broken producer may hang
            raise
        if self._failures is not None:
            self._failures.succeeded(self.operation)

    def _back_off(self, error: BaseException) -> None:
        """The start failed: no other before a backoff wait; remember why (a refusal of idempotence by name)."""
        self._retry_at = self._clock() + self._backoff.next()
        self._start_error = cause(error) if not isinstance(error, asyncio.TimeoutError) else \
            f"no answer within {self.timeout:g} s"
        self._refused = IdempotenceRefused.after(error) if self._idempotence else None

    def _report(self, topic: str, error: BaseException) -> None:
        if self._failures is None:
            return
        where = f"topic {topic} at {describe(self._connection)}"
        if isinstance(error, asyncio.TimeoutError):
            self._failures.failed(self.operation, error, where=where, reason="timeout",
                                  detail=f"no acknowledgement within {self.timeout:g} s")
        else:
            self._failures.failed(self.operation, error, where=where)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop(producer, grace=self.timeout)


async def _stop(producer: AIOKafkaProducer, grace: float = 5.0) -> None:
    """Flush and close ``producer``; past ``grace`` seconds, stop it sending anything more.

    A stop cut short by a timeout leaves aiokafka's sender task running, and it would retry the
    batches it holds behind the back of the next producer: a snapshot sent after the tombstone of
    its key brings the key back for every reader of the compacted topic. So the sender is cancelled
    (it first waits for the requests already on the wire) and the connections are closed.
    """
    try:
        await asyncio.wait_for(producer.stop(), grace)
    except (KafkaError, asyncio.TimeoutError, OSError) as error:
        log.warning("closing the Kafka producer: %s; dropping what it still holds", cause(error))
        sender = getattr(producer, "_sender", None)  # aiokafka has no public way to abandon a producer
        try:
            if sender is not None:
                await sender.close()
            await producer.client.close()
        except (KafkaError, OSError) as closing:
            log.warning("closing the Kafka producer's connections: %s", cause(closing))
