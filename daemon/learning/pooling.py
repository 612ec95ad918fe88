"""The pooled prior of a running learner (``model.prior = "pooled"``): fitted to the keys'
histograms on the training thread every ``interval`` seconds, and given to the models when it moved.

A refresh sees every size class of the learner as a :class:`PriorClass`: its model, and which
category of the catalogue each of its rows' columns holds (None when column ``k`` is category ``k``
for every key, as with fixed categories). Each refresh

1. draws at most ``sample_keys`` of the keys with events, over all classes (a fit on 20,000 keys
   measures the population as well as one on all of them, at a fraction of the cost);
2. fits the Dirichlet to their histograms over the catalogue's ``n_categories``, starting from the
   last fit (:func:`gumbel_models.pooled_prior.fit_pooled_prior`), and tells ``metrics`` the
   concentration it weighs as (:attr:`~gumbel_models.pooled_prior.PooledPrior.events`) and its
   mean share ``α_b/(n_b+α_b)`` of the sampled keys' targets (``α_b``: the pseudo-counts of
   ``b``'s own categories); a fit that is not finite is counted, logged and set aside;
3. sets it as every model's prior when it is the first, or when it moved beyond its sampling noise
   (:meth:`~gumbel_models.pooled_prior.PooledPrior.moved_from`) and by more than
   :data:`MEAN_TOLERANCE` in TV or :data:`CONCENTRATION_TOLERANCE` relatively in weight. Every key
   with events is then evaluated against its new target: a prior that moved within its noise
   (a fit on another sample of the same population moves the mean by ~0.006 in TV at 20,000 keys
   of K = 16) would wake and republish keys for nothing, every refresh.

With open categories a key's prior is the population's, over the categories the key has seen: a
category it has never seen has no pseudo-counts in it, and gets probability 0 until its first event.
The prior, like the histogram, feeds the discriminator only (:mod:`gumbel_models.target`).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import torch

from gumbel_models import GumbelGAN
from gumbel_models.pooled_prior import PooledPrior, fit_pooled_prior
from gumbel_models.target import KeyColumns

log = logging.getLogger("gumbeld.prior")

SAMPLE_KEYS = 20_000
INTERVAL = 10.0                   # seconds of the timer between two fits
MEAN_TOLERANCE = 0.002            # TV between the means
CONCENTRATION_TOLERANCE = 0.02    # relative change of α


class PriorFitted(Protocol):
    def prior_fitted(self, concentration: float, share: float) -> None: ...

    def prior_rejected(self) -> None: ...


@dataclass(frozen=True)
class PriorClass:
    """One size class as the prior sees it: its model and its rows' columns (None: column k is category k)."""

    model: GumbelGAN
    columns: KeyColumns | None = None


class PriorRefresh:
    def __init__(self, *, seed: int = 0, interval: float = INTERVAL, sample_keys: int = SAMPLE_KEYS,
                 metrics: PriorFitted | None = None, timer: Callable[[], float] = time.perf_counter) -> None:
        self.interval, self.sample_keys, self.metrics, self._timer = interval, sample_keys, metrics, timer
        self._rng = torch.Generator().manual_seed(seed)
        self.prior: PooledPrior | None = None   # the one the models have
        self.last_fit: PooledPrior | None = None  # the latest fit, set or not
        self._due = float("-inf")

    def refresh(self, classes: Sequence[PriorClass], n_categories: int) -> bool:
        """Fit and maybe set the prior of ``classes`` (over ``n_categories``) if ``interval`` has
        passed; whether it was set."""
        now = self._timer()
        if now < self._due or not classes:
            return False
        self._due = now + self.interval
        counts, mask, categories = self._sample(classes)                                  # 1.
        fit = fit_pooled_prior(counts, mask, start=self.last_fit, categories=categories,  # 2.
                               n_categories=n_categories)
        if fit is None:
            return False
        if not fit.finite:  # nothing known makes one; were it to happen, the keys keep what they learn from
            log.warning("a pooled-prior fit was not finite (concentration %s); the models keep their prior",
                        fit.concentration)
            if self.metrics is not None:
                self.metrics.prior_rejected()
            return False
        self.last_fit = fit
        if self.metrics is not None:
            weight = (fit.pseudo_counts[categories.clamp(0)] * mask).sum(dim=-1)
            self.metrics.prior_fitted(fit.events, float((weight / (counts.sum(dim=-1) + weight)).mean()))
        if self.prior is not None and not fit.moved_from(                                  # 3.
                self.prior, mean_tolerance=MEAN_TOLERANCE, concentration_tolerance=CONCENTRATION_TOLERANCE):
            return False
        self.prior = fit
        for size_class in classes:
            size_class.model.set_prior(fit.pseudo_counts, size_class.columns)
        return True

    def attach(self, size_class: PriorClass) -> None:
        """A class made after the prior was set gets it too."""
        if self.prior is not None:
            size_class.model.set_prior(self.prior.pseudo_counts, size_class.columns)

    def _sample(self, classes: Sequence[PriorClass]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Counts, masks and catalogue indices ``[S, W]`` (W the widest class; narrower rows padded)
        of at most ``sample_keys`` keys with events, drawn uniformly over all classes."""
        rows = [torch.nonzero(c.model.histogram.has_data()).squeeze(-1).cpu() for c in classes]
        owner = torch.cat([torch.full((len(r),), i) for i, r in enumerate(rows)])
        if owner.numel() > self.sample_keys:
            chosen = torch.randperm(owner.numel(), generator=self._rng)[:self.sample_keys]
            flat = torch.cat(rows)[chosen]
            rows = [flat[owner[chosen] == i] for i in range(len(classes))]
        width = max(c.model.config.n_categories for c in classes)
        parts = []
        for size_class, picked in zip(classes, rows):
            model, index = size_class.model, picked.to(size_class.model.device)
            columns = (torch.arange(model.config.n_categories).expand(len(picked), -1) if size_class.columns is None
                       else size_class.columns.catalogue_indices(picked))
            pad = width - model.config.n_categories
            parts.append((torch.nn.functional.pad(model.histogram.counts.index_select(0, index).cpu(), (0, pad)),
                          torch.nn.functional.pad(model.generator.mask.index_select(0, index).cpu(), (0, pad)),
                          torch.nn.functional.pad(columns, (0, pad), value=-1)))
        return tuple(torch.cat(part) for part in zip(*parts))
