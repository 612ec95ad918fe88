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

Shapes: ``counts`` ``[B, K]`` (float64); the fit is a :class:`PooledPrior` of ``mean`` ``[K]`` and a
``concentration``. Cost: O(B·K) per iteration.

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

from dataclasses import dataclass

import torch

MIN_CONCENTRATION, MAX_CONCENTRATION = 1e-3, 1e6  # keys identical to the mean would push α to infinity
TOLERANCE = 1e-6  # relative change of every a_k below which the fixed point has converged


@dataclass(frozen=True)
class PooledPrior:
    """A Dirichlet over the categories: ``mean`` ``[K]`` (sums to 1), ``concentration`` α."""

    mean: torch.Tensor
    concentration: float

    @property
    def pseudo_counts(self) -> torch.Tensor:
        """``α m`` ``[K]``: what the prior adds to every key's counts."""
        return self.concentration * self.mean


def fit_pooled_prior(counts: torch.Tensor, support: torch.Tensor | None = None, *, iterations: int = 200,
                     start: PooledPrior | None = None) -> PooledPrior | None:
    """The maximum-likelihood Dirichlet of the keys' ``counts`` ``[B, K]``; None when fewer than two
    keys have events (no spread to measure). ``start`` (the last fit) saves iterations when the
    population has changed little since."""
    counts, support = _checked(counts, support)
    totals = counts.sum(dim=-1)
    informative = totals > 0
    if int(informative.sum()) < 2:
        return None
    counts, support, totals = counts[informative], support[informative], totals[informative]
    a = (start.pseudo_counts.to(counts) if start is not None else moment_estimate(counts, support).pseudo_counts)
    a = a.clamp_min(MIN_CONCENTRATION / counts.shape[-1])
    for _ in range(iterations):
        a0 = (support * a).sum(dim=-1)
        numerator = (support * (torch.digamma(counts + a) - torch.digamma(a))).sum(dim=0)
        denominator = (support * (torch.digamma(totals + a0) - torch.digamma(a0)).unsqueeze(-1)).sum(dim=0)
        if bool((denominator <= 0).any()):  # a category no key with events may have
            break
        updated = (a * numerator / denominator).clamp_min(MIN_CONCENTRATION / counts.shape[-1])
        if updated.sum() > MAX_CONCENTRATION:
            updated = updated * (MAX_CONCENTRATION / updated.sum())
        converged = bool(((updated - a).abs() <= TOLERANCE * a).all())
        a = updated
        if converged:
            break
    return PooledPrior(a / a.sum(), float(a.sum()))


def moment_estimate(counts: torch.Tensor, support: torch.Tensor | None = None) -> PooledPrior:
    """The method-of-moments Dirichlet of ``counts`` ``[B, K]``: ``m`` the pooled proportions, and
    α from the keys' overdispersion. With ``ρ = 1/(1+α)``, ``Var(p̂_bk) = m_k(1−m_k)(1+(n_b−1)ρ)/n_b``,
    so ``Σ_b n_b Σ_k (p̂_bk − m_k)² = (1 − Σ_k m_k²) Σ_b (1 + (n_b−1)ρ)`` gives ρ."""
    counts, support = _checked(counts, support)
    totals = counts.sum(dim=-1)
    keys = totals > 0
    mean = counts.sum(dim=0) / counts.sum()
    proportions = counts[keys] / totals[keys].unsqueeze(-1)
    spread = (totals[keys].unsqueeze(-1) * support[keys] * (proportions - mean) ** 2).sum()
    purity = 1.0 - float((mean ** 2).sum())
    excess = float((totals[keys] - 1.0).clamp_min(0).sum())
    rho = (float(spread) / max(purity, 1e-12) - int(keys.sum())) / max(excess, 1e-12)
    rho = min(max(rho, 1.0 / (1.0 + MAX_CONCENTRATION)), 1.0 / (1.0 + MIN_CONCENTRATION))
    return PooledPrior(mean, 1.0 / rho - 1.0)


def _checked(counts: torch.Tensor, support: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if counts.dim() != 2 or counts.shape[-1] < 2:
        raise ValueError(f"counts must be [keys, categories] with at least 2 categories, not {tuple(counts.shape)}")
    if bool((counts < 0).any()):
        raise ValueError("counts must be non-negative")
    counts = counts.to(torch.float64)
    if support is None:
        return counts, torch.ones_like(counts)
    if support.shape != counts.shape:
        raise ValueError(f"support {tuple(support.shape)} must have the shape of counts {tuple(counts.shape)}")
    return counts * support, support.to(counts)
