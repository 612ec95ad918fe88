"""Failures of the Kafka path, made loud: counted, logged and shown on ``/readyz``.

Every Kafka operation reports its outcome to one :class:`KafkaFailures`: ``connect`` (the
consumer reaching the brokers), ``fetch`` (records of the input topics), ``produce`` (snapshots,
dead letters), ``state_write`` (state rows) and ``commit`` (the group's offsets). A failure

1. counts in ``gumbeld_kafka_errors_total{operation, reason}`` (``reason`` is the error's class, a
   bounded set, or one of this module's names for a cause it recognises);
2. is logged at ERROR with where it happened (partition or topic) and its cause — at most once a
   minute per ``(operation, reason)``, the next line saying how many were not logged;
3. from its second in a row, turns ``/readyz`` to 503 with the cause, until the same operation
   succeeds (one failure that the next attempt mends is noise; one that repeats is not).

>>> from daemon.health import Health
>>> class Counted:
...     def __init__(self): self.counts = {}
...     def kafka_error(self, operation, reason): self.counts[operation, reason] = self.counts.get((operation, reason), 0) + 1
>>> metrics, health = Counted(), Health()
>>> failures = KafkaFailures(metrics, health, clock=lambda: 0.0)
>>> failures.failed("commit", TimeoutError(), where="events:0")
'events:0: TimeoutError'
>>> health.ready()[0], metrics.counts
(True, {('commit', 'TimeoutError'): 1})
>>> _ = failures.failed("commit", TimeoutError(), where="events:0")
>>> health.ready()
(False, ['kafka commit: events:0: TimeoutError'])
>>> failures.succeeded("commit"); health.ready()
(True, [])
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiokafka.errors import BrokerResponseError, KafkaError

from ..logs import Throttle

log = logging.getLogger("gumbeld.kafka")
LOG_INTERVAL = 60.0   # seconds between log lines of one (operation, reason)
NOT_READY_AFTER = 2   # failures in a row of one operation before /readyz turns 503


def cause(error: BaseException) -> str:
    """``error`` for people: its class, and its message when it has one (many Kafka errors have none).

    >>> cause(TimeoutError()), cause(OSError("disk full")), cause(IdempotenceRefused("no"))
    ('TimeoutError', 'OSError: disk full', 'IdempotenceRefused: no')
    """
    text, name = str(error), type(error).__name__
    if not text:
        return name
    return text if name in text else f"{name}: {text}"


class IdempotenceRefused(KafkaError):
    """The brokers refused the idempotent producer; the message names the setting to change."""

    reason = "idempotent_producer_refused"

    @classmethod
    def after(cls, error: BaseException) -> "IdempotenceRefused | None":
        """The refusal behind ``error``, raised by starting a producer with idempotence on, if it is one.

        aiokafka's ``start()`` sends one request to a broker after connecting: InitProducerId, when
        idempotence is on. A broker-side error (not a connection error) from it means the brokers
        do not grant producer ids, as brokers without idempotence support answer.
        """
        if not isinstance(error, BrokerResponseError):
            return None
        return cls(f"the brokers refused the idempotent producer (InitProducerId: {cause(error)}); "
                   "brokers without idempotence support need sinks.kafka.enable_idempotence = false")


class KafkaFailures:
    """One per service; ``metrics`` has ``kafka_error(operation, reason)``, ``health`` is a :class:`~daemon.http.Health`."""

    def __init__(self, metrics, health, *, clock: Callable[[], float] = time.monotonic,
                 log_interval: float = LOG_INTERVAL) -> None:
        self._metrics, self._health = metrics, health
        self._streaks: dict[str, int] = {}  # operation → failures in a row
        self._throttle = Throttle(log_interval, clock=clock)

    def failed(self, operation: str, error: BaseException, *, where: str, reason: str | None = None,
               detail: str | None = None) -> str:
        """Report one failure of ``operation`` at ``where``; returns the message it logs and shows.

        ``reason`` overrides the error's class as the metric label; ``detail`` replaces its text.
        """
        reason = reason or getattr(error, "reason", None) or type(error).__name__
        message = f"{where}: {detail or cause(error)}"
        self._metrics.kafka_error(operation, reason)
        streak = self._streaks[operation] = self._streaks.get(operation, 0) + 1
        if streak >= NOT_READY_AFTER:
            self._health.set_not_ready(_condition(operation), message)
        held = self._throttle.allow((operation, reason))
        if held is not None:
            log.error("Kafka %s failed, %s%s", operation, message, Throttle.since(held))
        return message

    def succeeded(self, operation: str) -> None:
        """``operation`` worked: its failures in a row end, and so does its condition on ``/readyz``."""
        streak = self._streaks.pop(operation, 0)
        if streak:
            self._health.set_ready(_condition(operation))
            if streak >= NOT_READY_AFTER:
                log.info("Kafka %s works again, after %d failures in a row", operation, streak)

    def failing(self, operation: str) -> int:
        """Failures of ``operation`` in a row, so far."""
        return self._streaks.get(operation, 0)


def _condition(operation: str) -> str:
    return f"kafka {operation}"
