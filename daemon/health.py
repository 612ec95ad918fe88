"""Whether gumbeld is ready: named conditions, each failing with its reason, and draining at shutdown.

>>> health = Health()
>>> health.set_not_ready("checkpoint", "restoring")
>>> health.ready()
(False, ['checkpoint: restoring'])
>>> health.set_ready("checkpoint")
>>> health.ready()
(True, [])
>>> health.draining()
>>> health.ready()
(False, ['draining'])
"""
from __future__ import annotations

import threading
from typing import Protocol


class ReadinessGauge(Protocol):
    """What :class:`Health` keeps in step with the overall readiness, e.g. :class:`~daemon.metrics.Metrics`."""

    def set_ready(self, ready: bool) -> None: ...


class Health:
    """Named readiness conditions; ready when none is failing and not draining. Thread-safe.

    ``metrics.set_ready(ready)`` is called at once and then whenever the overall readiness flips,
    keeping the ``gumbeld_ready`` gauge in step; it runs under the lock, so it must not call back
    into this object.
    """

    def __init__(self, metrics: ReadinessGauge | None = None) -> None:
        self._lock = threading.Lock()
        self._not_ready: dict[str, str] = {}
        self._draining = False
        self._metrics = metrics
        self._was_ready = True
        if metrics is not None:
            metrics.set_ready(True)

    def set_not_ready(self, name: str, reason: str) -> None:
        with self._lock:
            self._not_ready[name] = reason
            self._notify()

    def set_ready(self, name: str) -> None:
        with self._lock:
            self._not_ready.pop(name, None)
            self._notify()

    def draining(self) -> None:
        """The service is shutting down: not ready from now on, whatever the conditions say."""
        with self._lock:
            self._draining = True
            self._notify()

    def ready(self) -> tuple[bool, list[str]]:
        """``(ready, reasons)``, reasons as ``"name: reason"`` sorted by name, or ``["draining"]``."""
        with self._lock:
            return self._state()

    def _state(self) -> tuple[bool, list[str]]:
        if self._draining:
            return False, ["draining"]
        reasons = [f"{name}: {reason}" for name, reason in sorted(self._not_ready.items())]
        return not reasons, reasons

    def _notify(self) -> None:
        # Called with the lock held, so concurrent changes reach the metrics in the order they happened.
        ready, _ = self._state()
        if ready != self._was_ready:
            self._was_ready = ready
            if self._metrics is not None:
                self._metrics.set_ready(ready)
