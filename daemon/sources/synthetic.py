"""The built-in synthetic source: per key a categorical distribution, a rate, and drift.

Events are drawn in NumPy batches (never one Python object per event): each batch picks keys
uniformly, then categories by inverse-CDF lookup in each key's current distribution. A key's
distribution switches after ``drift.after_events`` of its events, or alternates every
``drift.period_events``; the switch takes effect at batch granularity.

Pacing is by deadline (``emitted / rate`` seconds after the start), so the long-run rate is exact
whatever the cost of a batch; ``rate = 0`` runs as fast as the consumer takes batches.
The position (events emitted per key) is part of the checkpoint, so drift schedules resume.
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable

import numpy as np

from ..events import EventBatch
from ..settings import SyntheticSettings


class SyntheticSource:
    name = "synthetic"

    def __init__(self, settings: SyntheticSettings, *, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self.key_names = list(settings.keys)
        self._clock, self._sleep = clock, sleep
        self.emitted = np.zeros(len(self.key_names), dtype=np.int64)

    # -- position, for checkpoints -----------------------------------------------------------
    def position(self) -> dict:
        return {"emitted": dict(zip(self.key_names, self.emitted.tolist()))}

    def restore(self, position: dict) -> None:
        emitted = position.get("emitted", {})
        self.emitted = np.array([int(emitted.get(k, 0)) for k in self.key_names], dtype=np.int64)

    async def commit(self, offsets: dict) -> None:
        """Nothing to acknowledge: the position lives in the checkpoint alone."""

    async def stop(self) -> None:
        """Nothing to close."""

    # -- events ------------------------------------------------------------------------------
    def distributions(self) -> np.ndarray:
        """Each key's current distribution ``[keys, K]``, after the drift its events have reached."""
        rows = []
        for i, key in enumerate(self.settings.keys.values()):
            drift, n = key.drift, int(self.emitted[i])
            switched = drift is not None and (
                (drift.after_events is not None and n >= drift.after_events)
                or (drift.period_events is not None and (n // drift.period_events) % 2 == 1))
            rows.append(drift.probabilities if switched else key.probabilities)
        return np.asarray(rows, dtype=np.float64)

    def batch(self, rng: np.random.Generator) -> EventBatch:
        size = self.settings.batch_size
        keys = rng.integers(len(self.key_names), size=size)
        cdf = np.cumsum(self.distributions(), axis=1)
        cdf[:, -1] = 1.0  # float rounding must not leave u above the last bound
        u = rng.random(size)
        categories = (u[:, None] >= cdf[keys]).sum(axis=1)
        self.emitted += np.bincount(keys, minlength=len(self.key_names))
        return EventBatch(self.key_names, keys.astype(np.int64), categories.astype(np.int64))

    async def batches(self) -> AsyncIterator[EventBatch]:
        # seeded by position too, so a resumed source does not replay the same draws
        rng = np.random.default_rng([self.settings.seed, int(self.emitted.sum())])
        start, produced, rate = self._clock(), 0, self.settings.rate
        while True:
            batch = self.batch(rng)
            produced += len(batch)
            yield batch
            delay = start + produced / rate - self._clock() if rate > 0 else 0.0
            await self._sleep(max(0.0, delay))
