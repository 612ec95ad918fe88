"""The pooled prior of a running learner (``model.prior = "pooled"``): fitted to the keys'
histograms on the training thread every ``interval`` seconds, and given to the model when it moved.

Each refresh

1. draws at most ``sample_keys`` of the keys with events (a fit on 20,000 keys measures the
   population as well as one on all of them, at a fraction of the cost);
2. fits the Dirichlet to their histograms, starting from the last fit
   (:func:`gumbel_models.pooled_prior.fit_pooled_prior`), and tells ``metrics`` its concentration
   and its mean share ``α_b/(n_b+α_b)`` of the sampled keys' targets;
3. sets it as the model's prior when it is the first, or when its mean moved by more than
   :data:`MEAN_TOLERANCE` in TV or its concentration by more than :data:`CONCENTRATION_TOLERANCE`
   relatively: every key with events is then evaluated against its new target, and a prior that
   moved within its own sampling noise would wake keys for nothing.

The prior, like the histogram, feeds the discriminator only (:mod:`gumbel_models.target`).
"""
from __future__ import annotations

import time
from typing import Callable, Protocol

import torch

from gumbel_models import GumbelGAN
from gumbel_models.pooled_prior import PooledPrior, fit_pooled_prior

SAMPLE_KEYS = 20_000
INTERVAL = 10.0                   # seconds of the timer between two fits
MEAN_TOLERANCE = 0.002            # TV between the means
CONCENTRATION_TOLERANCE = 0.02    # relative change of α


class PriorFitted(Protocol):
    def prior_fitted(self, concentration: float, share: float) -> None: ...


class PriorRefresh:
    def __init__(self, *, seed: int = 0, interval: float = INTERVAL, sample_keys: int = SAMPLE_KEYS,
                 metrics: PriorFitted | None = None, timer: Callable[[], float] = time.perf_counter) -> None:
        self.interval, self.sample_keys, self.metrics, self._timer = interval, sample_keys, metrics, timer
        self._rng = torch.Generator().manual_seed(seed)
        self.prior: PooledPrior | None = None   # the one the model has
        self._last_fit: PooledPrior | None = None
        self._due = float("-inf")

    def refresh(self, model: GumbelGAN) -> bool:
        """Fit and maybe set ``model``'s prior if ``interval`` has passed; whether it was set."""
        now = self._timer()
        if now < self._due:
            return False
        self._due = now + self.interval
        rows = torch.nonzero(model.histogram.has_data()).squeeze(-1).cpu()               # 1.
        if rows.numel() > self.sample_keys:
            rows = rows[torch.randperm(rows.numel(), generator=self._rng)[:self.sample_keys]]
        rows = rows.to(model.device)
        counts, mask = model.histogram.counts.index_select(0, rows).cpu(), model.generator.mask.index_select(0, rows).cpu()
        fit = fit_pooled_prior(counts, mask, start=self._last_fit)                          # 2.
        if fit is None:
            return False
        self._last_fit = fit
        if self.metrics is not None:
            weight = (fit.pseudo_counts * mask).sum(dim=-1)
            self.metrics.prior_fitted(fit.concentration, float((weight / (counts.sum(dim=-1) + weight)).mean()))
        if self.prior is not None and not self._moved(self.prior, fit):                   # 3.
            return False
        self.prior = fit
        model.set_prior(fit.pseudo_counts)
        return True

    @staticmethod
    def _moved(old: PooledPrior, new: PooledPrior) -> bool:
        mean_shift = 0.5 * float((old.mean - new.mean).abs().sum())
        return (mean_shift > MEAN_TOLERANCE
                or abs(new.concentration / old.concentration - 1.0) > CONCENTRATION_TOLERANCE)
