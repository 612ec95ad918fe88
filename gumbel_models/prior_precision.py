"""How well a pooled prior is known: its standard errors, and the concentration it is used at.

A fit (:mod:`.pooled_prior`) from few keys, or from keys with few events each, can say almost
anything about the concentration α: two keys of three identical events give α̂ at its upper bound,
which would pin every key, however many events it has, to their mean. So a prior weighs as the
**lower confidence bound** of α (one-sided, at :data:`LOWER_BOUND_Z`), from the likelihood with
the mean held at m̂: ``α_L`` with ``ℓ(α̂) − ℓ(α_L) = z²/2``, where ::

    ℓ(α) = Σ_bk [lnΓ(c_bk + α m_k) − lnΓ(α m_k)] − Σ_b [lnΓ(n_b + α s_b) − lnΓ(α s_b)],   s_b = Σ_{k∈b} m_k

With 20,000 keys α_L is within a few per cent of α̂; with two keys it is near 0, and the prior
counts for nothing until the population says more. A population of identical keys, whose
likelihood only flattens out as α grows, still gets a large α_L.

The standard errors, from the observed information of the likelihood in the pseudo-counts ``a``
(``w_b = ψ'(a_0b) − ψ'(n_b+a_0b)``, ``s_b`` key ``b``'s categories)::

    J = diag(Σ_b [ψ'(a_k) − ψ'(c_bk+a_k)]) − Σ_b w_b s_b s_bᵀ

The sum over keys is taken as ``v vᵀ/z + diag(v − v²/z)``, with ``v_k = Σ_{b∋k} w_b`` and
``z = Σ_b w_b`` (exact when every key has every category), so ``J = diag(d) − v vᵀ/z`` inverts by
Sherman–Morrison::

    Var(α̂) = S + T²/(z − U),   S = Σ_k 1/d_k,  T = Σ_k v_k/d_k,  U = Σ_k v_k²/d_k
    Var(m̂_k) = gᵀJ⁻¹g,  g = (e_k − m_k·1)/α      (the delta method: the gradient of a_k/Σa)

Where α̂ is at its bound, its error says nothing of how well α_L is known: α_L's error is then
read from the likelihood's curvature in α at α_L (:func:`concentration_lower_bound`).
"""
from __future__ import annotations

import math
import torch

from .key_cells import KeyCells

LOWER_BOUND_Z = 1.645   # one-sided 95 %
BISECTIONS = 24         # of log α: α_L to within a factor e^(ln(1e9)/2^24), far below its error


def _trigamma(x: torch.Tensor) -> torch.Tensor:
    return torch.special.polygamma(1, x)


def standard_errors(cells: KeyCells, a: torch.Tensor) -> tuple[torch.Tensor, float] | None:
    """``(se(m̂) [K], se(α̂))`` of the fit ``a`` ``[K]``; None when ``J`` is not positive definite.
    A category without events is not estimated: its error is infinite."""
    a_cell, a0 = a[cells.category], cells.per_key(a[cells.category])
    key_weight = _trigamma(a0) - _trigamma(cells.totals + a0)
    z = key_weight.sum()
    v = cells.per_category(key_weight[cells.key])
    d = cells.per_category(_trigamma(a_cell) - _trigamma(cells.counts + a_cell)) - v * (1.0 - v / z)
    informed = cells.per_category(cells.counts) > 0
    if not bool((d[informed] > 0).all()):
        return None
    inverse = torch.where(informed, 1.0 / d.where(informed, 1.0), 0.0)
    s, t, u = inverse.sum(), (v * inverse).sum(), (v * v * inverse).sum()
    if float(z - u) <= 0.0:
        return None
    alpha, mean = a.sum(), a / a.sum()
    variance = ((1.0 - 2.0 * mean) * inverse + mean ** 2 * s + (v * inverse - mean * t) ** 2 / (z - u)) / alpha ** 2
    return torch.where(informed, variance.clamp_min(0.0).sqrt(), torch.inf), float((s + t * t / (z - u)).sqrt())


def concentration_lower_bound(cells: KeyCells, mean: torch.Tensor, alpha: float, floor: float,
                              z: float = LOWER_BOUND_Z) -> tuple[float, float]:
    """``(α_L, its standard error)``: the lower confidence bound of α at ``z`` with ``mean`` held
    (module docstring), never below ``floor``; the error from the curvature of ``ℓ`` at α_L."""
    m_cell = mean[cells.category]
    counted = cells.counts > 0
    # the sums run over distinct (count, category) cells and key totals, each as often as it
    # occurs: counts repeat, so 20,000 keys' sums take thousands of terms, not hundreds of thousands
    counts, category, cell_times = _distinct_cells(cells.counts[counted], cells.category[counted], len(mean))
    m_counted = mean[category]
    totals, share, key_times = _distinct_keys(cells.totals, cells.per_key(m_cell))

    def likelihood(value: float) -> float:
        a_counted, a0 = value * m_counted, value * share
        return float((cell_times * (torch.lgamma(counts + a_counted) - torch.lgamma(a_counted))).sum()
                     - (key_times * (torch.lgamma(totals + a0) - torch.lgamma(a0))).sum())

    drop = likelihood(alpha) - 0.5 * z * z
    low, high = math.log(floor), math.log(alpha)
    if likelihood(floor) >= drop:
        bound = floor
    else:
        for _ in range(BISECTIONS):
            middle = 0.5 * (low + high)
            low, high = (middle, high) if likelihood(math.exp(middle)) < drop else (low, middle)
        bound = math.exp(high)
    a_counted, a0 = bound * m_counted, bound * share
    information = float((cell_times * m_counted ** 2 * (_trigamma(a_counted) - _trigamma(counts + a_counted))).sum()
                        - (key_times * share ** 2 * (_trigamma(a0) - _trigamma(totals + a0))).sum())
    return bound, information ** -0.5 if information > 0 else float("inf")


def _distinct_cells(counts: torch.Tensor, category: torch.Tensor,
                    n_categories: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The distinct (count, category) cells ``[D]`` and how often each occurs; every cell once
    when the counts are not whole numbers (decayed)."""
    if not bool((counts == counts.round()).all()):
        return counts, category, torch.ones_like(counts)
    codes, times = torch.unique(counts.long() * n_categories + category, return_counts=True)
    return (codes // n_categories).to(counts), codes % n_categories, times.to(counts)


def _distinct_keys(totals: torch.Tensor, share: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The distinct key totals ``[D]`` with their shares and how often each occurs, when every key
    has the same share (every key over every category); else every key once."""
    if float(share.max() - share.min()) > 1e-12:
        return totals, share, torch.ones_like(totals)
    values, times = torch.unique(totals, return_counts=True)
    return values, share[:1].expand(len(values)), times.to(totals)


def chi2_quantile(freedom: int, z: float) -> float:
    """The χ²(``freedom``) quantile at standard normal ``z`` (Wilson–Hilferty).

    >>> round(chi2_quantile(15, 3.09), 1)  # exact: 37.7
    37.8
    """
    return freedom * (1 - 2 / (9 * freedom) + z * (2 / (9 * freedom)) ** 0.5) ** 3
