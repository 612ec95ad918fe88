"""The pooled prior of a population of keys: one Dirichlet fitted to every key's histogram.

Each key's counts ``c_b`` are taken as drawn from a Dirichlet–multinomial with the same mean ``m``
(a point of the simplex) and concentration ``α > 0`` for every key::

    p_b ~ Dirichlet(α m),   c_b | p_b ~ Multinomial(n_b, p_b)

The prior's pseudo-counts are ``a = α m``. They are fitted by maximum likelihood with Minka's
fixed point for the Pólya distribution (Minka 2000, "Estimating a Dirichlet distribution", (55))::

    a_k ← a_k · Σ_b [ψ(c_bk + a_k) − ψ(a_k)] / Σ_b [ψ(n_b + a_0b) − ψ(a_0b)],   a_0b = Σ_k a_k

starting from the method of moments (:func:`moment_estimate`). A key with no events adds nothing
to either sum: it carries no information and needs no special case. Decayed (fractional) counts
are taken as they are.

With ``support`` (``[B, K]`` bool), key ``b``'s distribution is over its own categories only: its
``a_0b`` is the sum of ``a_k`` over them, and it adds to both sums of ``a_k`` only if ``k`` is one.
With ``categories``, each key's columns name their categories (open categories: a key's columns
are the categories it has seen), so the sums run over the (key, category) cells that exist.

Shapes: ``counts`` ``[B, W]`` (float64); the fit is a :class:`PooledPrior` of ``mean`` ``[K]`` and a
``concentration``. Cost: O(cells) per iteration, cells = Σ_b (b's categories) ≤ B·W.

A fit also says how well it is known (:mod:`.prior_precision`): its standard errors, so that two
fits can be told apart from noise (:meth:`PooledPrior.moved_from`), and the lower confidence bound
of α it weighs as (:attr:`PooledPrior.weight`), so that a population too small to measure its
spread does not pin its keys to its mean.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> truth = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
>>> p = torch.distributions.Dirichlet(20.0 * truth).sample((4000,))
>>> counts = torch.stack([torch.multinomial(row, 30, replacement=True, generator=g).bincount(minlength=3)
...                       for row in p]).double()
>>> prior = fit_pooled_prior(counts)
>>> [round(x, 2) for x in prior.mean.tolist()], 17 < prior.concentration < 23
([0.5, 0.3, 0.2], True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .key_cells import KeyCells
from .prior_precision import chi2_quantile, concentration_lower_bound, standard_errors

MIN_CONCENTRATION, MAX_CONCENTRATION = 1e-3, 1e6  # keys identical to the mean would push α to infinity
SIGNIFICANCE_Z = 3.09  # standard errors of a shift that noise alone passes once in a thousand (one-sided)
TOLERANCE = 1e-4  # relative change of every a_k below which the fixed point has converged: the prior is
# given to the models only when it moved by 2 % (daemon.learning.pooling), far more than this


@dataclass(frozen=True)
class PooledPrior:
    """A Dirichlet over the categories: ``mean`` ``[K]`` (sums to 1) and ``concentration`` α; for a
    fit, also the standard errors of the mean (``mean_error`` ``[K]``), the concentration the prior
    weighs as (``weight``: α's lower confidence bound) and that weight's standard error. None: known
    exactly (the weight is then α)."""

    mean: torch.Tensor
    concentration: float
    mean_error: torch.Tensor | None = None
    weight: float | None = None
    weight_error: float | None = None

    @property
    def pseudo_counts(self) -> torch.Tensor:
        """``w m`` ``[K]``: what the prior adds to every key's counts, ``w`` its :attr:`events`."""
        return self.events * self.mean

    @property
    def finite(self) -> bool:
        """Whether the mean and the weight are finite numbers, so the prior can be given to models."""
        return bool(torch.isfinite(self.mean).all()) and math.isfinite(self.events) and self.events > 0

    @property
    def events(self) -> float:
        """The events the prior weighs as: its ``weight``, or α when it is known exactly."""
        return self.concentration if self.weight is None else self.weight

    def moved_from(self, old: "PooledPrior", *, mean_tolerance: float, concentration_tolerance: float,
                   z: float = SIGNIFICANCE_Z) -> bool:
        """Whether this prior differs from ``old`` by more than the tolerances and by more than this
        fit's noise alone could show, twice over (as if ``old`` were as precise: a fit of a larger
        sample replaces a rougher one): the TV between the means over ``mean_tolerance``, with
        Pearson's ``Σ_k (m_k − m'_k)²/(2 se_k²)`` over the χ²(K−1) quantile at ``z``; or the
        weights' relative change over ``concentration_tolerance``, and over ``z·√2`` standard errors."""
        if old.mean.shape != self.mean.shape:  # the catalogue grew
            return True
        shift = self.mean - old.mean
        if 0.5 * float(shift.abs().sum()) > mean_tolerance:
            if self.mean_error is None:
                return True
            statistic = float((shift ** 2 / (2.0 * self.mean_error ** 2).clamp_min(1e-300)).sum())
            if statistic > chi2_quantile(max(self.mean.numel() - 1, 1), z):
                return True
        change = abs(self.events - old.events)
        if change <= concentration_tolerance * old.events:
            return False
        return self.weight_error is None or change > z * 2 ** 0.5 * self.weight_error


def fit_pooled_prior(counts: torch.Tensor, support: torch.Tensor | None = None, *, iterations: int = 200,
                     start: PooledPrior | None = None, categories: torch.Tensor | None = None,
                     n_categories: int | None = None) -> PooledPrior | None:
    """The maximum-likelihood Dirichlet of the keys' ``counts`` ``[B, W]``; None when fewer than two
    keys have events (no spread to measure). ``start`` (the last fit) saves iterations when the
    population has changed little since.

    ``categories`` ``[B, W]`` names the category of each column, out of ``n_categories`` (a key's
    columns are its own categories, in its own order, as with open categories); without it column
    ``k`` is category ``k`` for every key. A category no key with events has gets the smallest
    pseudo-count."""
    cells = KeyCells.of(counts, support, categories, n_categories)
    if cells is None:
        return None
    a = (start.concentration * start.mean).to(cells.counts) if start is not None and start.mean.numel() == cells.n_categories \
        else moment_estimate(counts, support, categories=categories, n_categories=n_categories).pseudo_counts
    floor = MIN_CONCENTRATION / cells.n_categories
    a = a.clamp_min(floor)
    informed = cells.per_category(torch.ones_like(cells.counts)) > 0
    # a cell without events adds ψ(0 + a_k) − ψ(a_k) = 0 to the numerator: only the others are summed
    counted = cells.counts > 0
    count_category, count_values = cells.category[counted], cells.counts[counted]
    for _ in range(iterations):
        a0 = cells.per_key(a[cells.category])
        a_counted = a[count_category]
        numerator = torch.zeros_like(a).index_add_(0, count_category,
                                                   torch.digamma(count_values + a_counted) - torch.digamma(a_counted))
        denominator = cells.per_category((torch.digamma(cells.totals + a0) - torch.digamma(a0))[cells.key])
        updated = torch.where(informed, a * numerator / denominator.clamp_min(1e-300), a).clamp_min(floor)
        if updated.sum() > MAX_CONCENTRATION:
            updated = updated * (MAX_CONCENTRATION / updated.sum())
        converged = bool(((updated - a).abs() <= TOLERANCE * a).all())
        a = updated
        if converged:
            break
    return _fitted(cells, a)


def _fitted(cells: KeyCells, a: torch.Tensor) -> PooledPrior:
    """The fit ``a`` ``[K]`` with how well it is known (:mod:`.prior_precision`)."""
    alpha, mean = float(a.sum()), a / a.sum()
    weight, weight_error = concentration_lower_bound(cells, mean, alpha, MIN_CONCENTRATION)
    errors = standard_errors(cells, a)
    if errors is None:  # α̂ at its bound: the errors of a weighted mean of the keys' proportions
        precision = cells.per_category((cells.totals / (cells.totals + weight))[cells.key])
        mean_error = (mean * (1.0 - mean) / ((weight + 1.0) * precision).clamp_min(1e-300)).sqrt()
    else:
        mean_error = errors[0]
        # at α̂'s bound its error says nothing of how well α_L is known: there, the curvature at α_L
        weight_error = errors[1] if errors[1] < weight else weight_error
    return PooledPrior(mean, alpha, mean_error, weight, weight_error)


def moment_estimate(counts: torch.Tensor, support: torch.Tensor | None = None, *,
                    categories: torch.Tensor | None = None, n_categories: int | None = None) -> PooledPrior:
    """The method-of-moments Dirichlet of ``counts`` ``[B, W]`` (columns as :func:`fit_pooled_prior`
    takes them): ``m`` the pooled proportions, and α from the keys' overdispersion. With
    ``ρ = 1/(1+α)`` and ``m̃_b`` the mean restricted to key ``b``'s categories,
    ``Var(p̂_bk) = m̃_bk(1−m̃_bk)(1+(n_b−1)ρ)/n_b``, so
    ``Σ_b n_b Σ_k (p̂_bk − m̃_bk)² = Σ_b (1 − Σ_k m̃_bk²)(1 + (n_b−1)ρ)`` gives ρ."""
    cells = KeyCells.of(counts, support, categories, n_categories)
    if cells is None:
        raise ValueError("no key has events")
    mean = cells.per_category(cells.counts)
    mean = mean / mean.sum()
    m_cell = mean[cells.category]
    m_cell = m_cell / cells.per_key(m_cell).clamp_min(1e-300)[cells.key]      # m̃_b, over b's own categories
    proportions = cells.counts / cells.totals[cells.key]
    spread = float((cells.totals[cells.key] * (proportions - m_cell) ** 2).sum())
    purity = 1.0 - cells.per_key(m_cell ** 2)
    rho = (spread - float(purity.sum())) / max(float((purity * (cells.totals - 1.0).clamp_min(0)).sum()), 1e-12)
    rho = min(max(rho, 1.0 / (1.0 + MAX_CONCENTRATION)), 1.0 / (1.0 + MIN_CONCENTRATION))
    return PooledPrior(mean, 1.0 / rho - 1.0)
