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

A fit also says how far it is from the truth by sampling alone, so that two fits can be told
apart from noise (:meth:`PooledPrior.moved_from`). Its standard errors come from the observed
information of the likelihood in ``a``: with ``w_b = ψ'(a_0b) − ψ'(n_b+a_0b)`` and ``s_b`` key
``b``'s categories, ``J = diag(Σ_b [ψ'(a_k) − ψ'(c_bk+a_k)]) − Σ_b w_b s_b s_bᵀ``. The sum over keys
is taken as ``v vᵀ/z + diag(v − v²/z)``, with ``v_k = Σ_{b∋k} w_b`` and ``z = Σ_b w_b`` (exact when
every key has every category), so ``J = diag(d) − v vᵀ/z`` inverts by Sherman–Morrison::

    Var(α̂) = 1ᵀJ⁻¹1 = S + T²/(z − U),   S = Σ_k 1/d_k,  T = Σ_k v_k/d_k,  U = Σ_k v_k²/d_k
    Var(m̂_k) = gᵀJ⁻¹g,  g = (e_k − m_k·1)/α     (the delta method: the gradient of a_k/Σa)


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
SIGNIFICANCE_Z = 3.09  # standard errors of a shift that noise alone passes once in a thousand (one-sided)
TOLERANCE = 1e-4  # relative change of every a_k below which the fixed point has converged: the prior is
# given to the models only when it moved by 2 % (daemon.learning.pooling), far more than this


@dataclass(frozen=True)
class PooledPrior:
    """A Dirichlet over the categories: ``mean`` ``[K]`` (sums to 1), ``concentration`` α, and, for a
    fit, the standard errors of both (``mean_error`` ``[K]``; None: known exactly)."""

    mean: torch.Tensor
    concentration: float
    mean_error: torch.Tensor | None = None
    concentration_error: float | None = None

    @property
    def pseudo_counts(self) -> torch.Tensor:
        """``α m`` ``[K]``: what the prior adds to every key's counts."""
        return self.concentration * self.mean

    def moved_from(self, old: "PooledPrior", *, mean_tolerance: float, concentration_tolerance: float,
                   z: float = SIGNIFICANCE_Z) -> bool:
        """Whether this prior differs from ``old`` beyond both fits' sampling noise and beyond the
        tolerances: TV between the means over ``mean_tolerance``, with Pearson's
        ``Σ_k (m_k − m'_k)²/(se_k² + se'_k²)`` over the χ²(K−1) quantile at ``z`` (Wilson–Hilferty);
        or α's relative change over ``concentration_tolerance``, and over ``z`` standard errors."""
        if old.mean.shape != self.mean.shape:  # the catalogue grew
            return True
        shift = self.mean - old.mean
        if 0.5 * float(shift.abs().sum()) > mean_tolerance:
            variance = torch.as_tensor(_variance(self.mean_error) + _variance(old.mean_error), dtype=shift.dtype)
            statistic = float((shift ** 2 / variance.clamp_min(1e-300)).sum())
            freedom = max(self.mean.numel() - 1, 1)
            if statistic > freedom * (1 - 2 / (9 * freedom) + z * (2 / (9 * freedom)) ** 0.5) ** 3:
                return True
        change = self.concentration - old.concentration
        if abs(change) <= concentration_tolerance * old.concentration:
            return False
        errors = [e for e in (self.concentration_error, old.concentration_error) if e is not None]
        return abs(change) > z * sum(e * e for e in errors) ** 0.5


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
    cells = _Cells.of(counts, support, categories, n_categories)
    if cells is None:
        return None
    a = start.pseudo_counts.to(cells.counts) if start is not None and start.mean.numel() == cells.n_categories \
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
    return _with_errors(cells, a)


def _variance(error: torch.Tensor | None) -> torch.Tensor | float:
    return 0.0 if error is None else error ** 2


def _with_errors(cells: "_Cells", a: torch.Tensor) -> PooledPrior:
    """The fit ``a`` with its standard errors (module docstring); without them when the
    approximated information is not positive definite."""
    trigamma = lambda x: torch.special.polygamma(1, x)  # noqa: E731
    a_cell, a0 = a[cells.category], cells.per_key(a[cells.category])
    key_weight = trigamma(a0) - trigamma(cells.totals + a0)
    z = key_weight.sum()
    v = cells.per_category(key_weight[cells.key])
    d = cells.per_category(trigamma(a_cell) - trigamma(cells.counts + a_cell)) - v * (1.0 - v / z)
    alpha, mean = a.sum(), a / a.sum()
    informed = cells.per_category(cells.counts) > 0  # a category without events is not estimated
    if not bool((d[informed] > 0).all()):
        return PooledPrior(mean, float(alpha))
    inverse = torch.where(informed, 1.0 / d.where(informed, 1.0), 0.0)
    s, t, u = inverse.sum(), (v * inverse).sum(), (v * v * inverse).sum()
    if float(z - u) <= 0.0:
        return PooledPrior(mean, float(alpha))
    mean_variance = ((1.0 - 2.0 * mean) * inverse + mean ** 2 * s + (v * inverse - mean * t) ** 2 / (z - u)) / alpha ** 2
    mean_error = torch.where(informed, mean_variance.clamp_min(0.0).sqrt(), torch.inf)
    return PooledPrior(mean, float(alpha), mean_error, float((s + t * t / (z - u)).sqrt()))


def moment_estimate(counts: torch.Tensor, support: torch.Tensor | None = None, *,
                    categories: torch.Tensor | None = None, n_categories: int | None = None) -> PooledPrior:
    """The method-of-moments Dirichlet of ``counts`` ``[B, W]`` (columns as :func:`fit_pooled_prior`
    takes them): ``m`` the pooled proportions, and α from the keys' overdispersion. With
    ``ρ = 1/(1+α)`` and ``m̃_b`` the mean restricted to key ``b``'s categories,
    ``Var(p̂_bk) = m̃_bk(1−m̃_bk)(1+(n_b−1)ρ)/n_b``, so
    ``Σ_b n_b Σ_k (p̂_bk − m̃_bk)² = Σ_b (1 − Σ_k m̃_bk²)(1 + (n_b−1)ρ)`` gives ρ."""
    cells = _Cells.of(counts, support, categories, n_categories)
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


@dataclass(frozen=True)
class _Cells:
    """The (key, category, count) cells of the keys with events, over each key's own categories."""

    key: torch.Tensor        # [N] key of each cell, 0..keys−1
    category: torch.Tensor   # [N] its category, 0..n_categories−1
    counts: torch.Tensor     # [N] float64
    totals: torch.Tensor     # [keys] n_b
    n_categories: int

    @classmethod
    def of(cls, counts: torch.Tensor, support: torch.Tensor | None, categories: torch.Tensor | None,
           n_categories: int | None) -> "_Cells | None":
        if counts.dim() != 2 or counts.shape[-1] < 1:
            raise ValueError(f"counts must be [keys, columns], not {tuple(counts.shape)}")
        if bool((counts < 0).any()):
            raise ValueError("counts must be non-negative")
        counts = counts.to(torch.float64)
        support = torch.ones_like(counts, dtype=torch.bool) if support is None else support.to(torch.bool)
        if categories is None:
            categories = torch.arange(counts.shape[-1]).expand(counts.shape)
            n_categories = counts.shape[-1] if n_categories is None else n_categories
        if support.shape != counts.shape or categories.shape != counts.shape:
            raise ValueError(f"support and categories must have the shape of counts {tuple(counts.shape)}")
        if n_categories is None or n_categories < 2:
            raise ValueError("a prior needs at least 2 categories (give n_categories with categories)")
        support = support & (categories >= 0)
        totals = (counts * support).sum(dim=-1)
        informative = totals > 0
        if int(informative.sum()) < 2:
            return None
        support, totals = support[informative], totals[informative]
        key, column = torch.nonzero(support, as_tuple=True)
        return cls(key, categories[informative][key, column].to(torch.long), counts[informative][key, column],
                   totals, n_categories)

    def per_key(self, values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(self.totals), dtype=values.dtype).index_add_(0, self.key, values)

    def per_category(self, values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(self.n_categories, dtype=values.dtype).index_add_(0, self.category, values)
