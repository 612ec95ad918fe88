"""The built-in synthetic source: per key a categorical distribution, a rate, and drift.

Keys are either listed (``keys``: per key its probabilities and optional drift) or generated
(``generated_keys``: ``count`` keys named ``key-0`` … ``key-{count-1}``, key ``i`` drawn with
probability ∝ ``(i+1)^-popularity_zipf``, each with its own distribution drawn once from
``Dirichlet(dirichlet_alpha)`` over the model's K categories, seeded by ``generated_keys.seed``;
generated keys do not drift).

Events are drawn in NumPy batches (never one Python object per event). Listed keys are picked
uniformly; generated keys by inverse-CDF lookup (``searchsorted``) in the cumulative popularity.
Categories are then drawn by inverse-CDF lookup in each event's key's cumulative distribution, so
a batch of generated keys costs O(batch · (K + log count)): nothing per batch walks all the keys.
A batch names only the keys present in it (``key_names``), so its consumer's per-batch work does
not grow with the key count either. A listed key's distribution switches after
``drift.after_events`` of its events, or alternates every ``drift.period_events``; the switch takes
effect at batch granularity.

Pacing is by deadline (``emitted / rate`` seconds after the start), so the long-run rate is exact
whatever the cost of a batch; ``rate = 0`` runs as fast as the consumer takes batches. Events are
stamped by the same schedule: event ``i`` of the run happened ``i / rate`` seconds after its start
(with ``rate = 0``, when its batch was drawn). With
``events`` set, the stream ends once that many events were emitted in total, counting those
before a restore; the last batch is cut short to hit it exactly. With open categories (a
:class:`~daemon.categories.CategoryTable`) category ``i`` of a listed key is the label ``"i"``,
added to the table as it first appears, and a key's probabilities may have any length.
The position is part of the checkpoint: events emitted per key for listed keys (so drift
schedules resume), the total for generated keys.
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable

import numpy as np

from ..categories import CategoryTable
from ..events import BadEvent, EventBatch
from ..settings import SyntheticSettings


class SyntheticSource:
    """Synthetic events; ``n_categories`` (the model's K) is required with ``generated_keys``.

    ``emitted_total`` counts the events emitted; listed keys also have ``key_names`` (all of them,
    in order) and ``emitted`` (per key).
    """

    name = "synthetic"
    rebalancing = restoring = False  # one instance owns every key: nothing ever moves

    def __init__(self, settings: SyntheticSettings, *, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, n_categories: int | None = None,
                 table: CategoryTable | None = None) -> None:
        self.settings, self._table = settings, table
        self._clock, self._sleep = clock, sleep
        self.emitted_total = 0  # events emitted over all keys, restored position included
        generated = settings.generated_keys
        if generated is None:
            self.key_names = list(settings.keys)
            self.emitted = np.zeros(len(self.key_names), dtype=np.int64)
            self._names = np.array(self.key_names, dtype=object)
            return
        if n_categories is None or n_categories < 2:
            raise ValueError(f"source.synthetic.generated_keys needs the model's number of categories (at least 2), "
                             f"got n_categories={n_categories!r}: pass len(model.labels) to SyntheticSource")
        popularity = np.arange(1, generated.count + 1, dtype=np.float64) ** -generated.popularity_zipf
        self._key_cdf = np.cumsum(popularity / popularity.sum())
        self._key_cdf[-1] = 1.0  # float rounding must not leave u above the last bound
        # the names once (~30 ms at 100,000 keys): formatting the present ones per batch costs several times more
        self._names = np.array([f"key-{i}" for i in range(generated.count)], dtype=object)
        rng = np.random.default_rng(generated.seed)
        distributions = rng.dirichlet(np.full(n_categories, generated.dirichlet_alpha), size=generated.count)
        self._category_cdf = np.cumsum(distributions, axis=1)  # [count, K]; the distributions are not kept
        self._category_cdf[:, -1] = 1.0

    @property
    def generated(self) -> bool:
        return self.settings.generated_keys is not None

    # -- position, for checkpoints -----------------------------------------------------------
    def position(self) -> dict:
        if self.generated:
            return {"emitted_total": self.emitted_total}
        return {"emitted": dict(zip(self.key_names, self.emitted.tolist()))}

    def restore(self, position: dict) -> None:
        if self.generated:
            self.emitted_total = int(position.get("emitted_total", 0))
            return
        emitted = position.get("emitted", {})
        self.emitted = np.array([int(emitted.get(k, 0)) for k in self.key_names], dtype=np.int64)
        self.emitted_total = int(self.emitted.sum())

    async def commit(self, offsets: dict) -> None:
        """Nothing to acknowledge: the position lives in the checkpoint alone."""

    def listen(self, listener) -> None:
        """One instance owns every key: nothing ever moves, so the listener hears nothing."""

    async def stop(self) -> None:
        """Nothing to close."""

    # -- events ------------------------------------------------------------------------------
    def distributions(self) -> np.ndarray:
        """Each listed key's current distribution ``[keys, K]``, after the drift its events have reached.

        Generated keys: their fixed distributions ``[count, K]`` (recovered from the cumulative ones).
        """
        if self.generated:
            return np.diff(self._category_cdf, axis=1, prepend=0.0)
        rows = []
        for i, key in enumerate(self.settings.keys.values()):
            drift, n = key.drift, int(self.emitted[i])
            switched = drift is not None and (
                (drift.after_events is not None and n >= drift.after_events)
                or (drift.period_events is not None and (n // drift.period_events) % 2 == 1))
            rows.append(drift.probabilities if switched else key.probabilities)
        width = max(map(len, rows))  # open categories: keys of several lengths, padded with zeros
        return np.asarray([list(row) + [0.0] * (width - len(row)) for row in rows], dtype=np.float64)

    def batch(self, rng: np.random.Generator, size: int | None = None, times: np.ndarray | None = None) -> EventBatch:
        """``size`` events (default ``batch_size``) at ``times`` (epoch ms ``[size]``, or unknown);
        ``key_names`` lists only the keys drawn."""
        size = self.settings.batch_size if size is None else size
        if self.generated:
            keys = np.searchsorted(self._key_cdf, rng.random(size), side="right")
            cdf = self._category_cdf
        else:
            keys = rng.integers(len(self.key_names), size=size)
            cdf = np.cumsum(self.distributions(), axis=1)
            cdf[:, -1] = 1.0
            self.emitted += np.bincount(keys, minlength=len(self.key_names))
        u = rng.random(size)
        categories = (u[:, None] >= cdf[keys]).sum(axis=1)
        self.emitted_total += size
        present, index = np.unique(keys, return_inverse=True)
        batch = EventBatch(self._names[present].tolist(), index.astype(np.int64), categories.astype(np.int64),
                           times=times)
        return batch if self._table is None else self._named(batch)

    def _times(self, start: float, produced: int, size: int, rate: float) -> np.ndarray:
        """Event times (epoch ms) of the next ``size`` events: event ``i`` of the run at ``start + i/rate``
        (with ``rate = 0``, all at the clock's time)."""
        if rate <= 0:
            return np.full(size, round(self._clock() * 1000), dtype=np.int64)
        return np.floor((start + (produced + np.arange(size)) / rate) * 1000).astype(np.int64)

    def _named(self, batch: EventBatch) -> EventBatch:
        """Open categories: index ``i`` becomes the table's index of label ``"i"``; refused ones are bad events."""
        drawn, inverse = np.unique(batch.categories, return_inverse=True)
        indices = self._table.indices(drawn.tolist())[inverse]
        refused = indices < 0
        bad = [BadEvent("category_limit", self._table.refusal(int(c)), {"key": batch.key_names[k], "category": int(c)})
               for k, c in zip(batch.keys[refused], batch.categories[refused])]
        return EventBatch(batch.key_names, batch.keys[~refused], indices[~refused], bad,
                          None if batch.times is None else batch.times[~refused])

    async def batches(self) -> AsyncIterator[EventBatch]:
        """Paced batches until ``events`` were emitted in total (forever when unset)."""
        # seeded by position too, so a resumed source does not replay the same draws
        rng = np.random.default_rng([self.settings.seed, self.emitted_total])
        start, produced, rate, limit = self._clock(), 0, self.settings.rate, self.settings.events
        while limit is None or self.emitted_total < limit:
            size = self.settings.batch_size
            drawn = size if limit is None else min(size, limit - self.emitted_total)
            batch = self.batch(rng, drawn, times=self._times(start, produced, drawn, rate))
            produced += drawn
            yield batch
            delay = start + produced / rate - self._clock() if rate > 0 else 0.0
            await self._sleep(max(0.0, delay))
