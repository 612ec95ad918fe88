"""Posterior intervals: the closed-form Beta quantiles against samples of the Beta, and the
intervals' coverage of the truth on fixed-seed populations."""
import numpy as np
import pytest
import torch

from gumbel_models.intervals import beta_interval, intervals
from gumbel_models.pooled_prior import fit_pooled_prior

SAMPLES = 400_000  # a tail share's sampling error: sqrt(0.05·0.95/400,000) ≈ 0.00035


def _tail_shares(a: float, b: float, level: float) -> tuple[float, float]:
    """The shares of Beta(a, b) samples below the interval and above it."""
    g = torch.Generator().manual_seed(7)
    gamma_a = torch._standard_gamma(torch.full((SAMPLES,), a, dtype=torch.float64), generator=g)
    gamma_b = torch._standard_gamma(torch.full((SAMPLES,), b, dtype=torch.float64), generator=g)
    x = gamma_a / (gamma_a + gamma_b)
    lower, upper = beta_interval(torch.tensor([a]), torch.tensor([b]), level)
    return float((x < lower.double()).double().mean()), float((x > upper.double()).double().mean())


@pytest.mark.parametrize("a, b", [(1.0, 1.0), (3.5, 20.5), (60.5, 440.5), (1.0, 9000.0), (700.0, 5.0), (12.0, 12.0)])
@pytest.mark.parametrize("level", [0.8, 0.9, 0.99])
def test_with_both_shapes_at_least_one_each_tail_is_within_its_stated_accuracy(a, b, level):
    below, above = _tail_shares(a, b, level)
    tail = (1 - level) / 2
    assert abs(below - tail) <= 0.013 + 0.002 and abs(above - tail) <= 0.013 + 0.002, (below, above)


@pytest.mark.parametrize("a, b", [(0.5, 10.5), (0.5, 3.5), (0.05, 40.0), (30.0, 0.3), (0.5, 0.5), (0.2, 0.9)])
def test_a_shape_below_one_gives_an_interval_at_least_as_wide_as_its_level(a, b):
    below, above = _tail_shares(a, b, 0.9)
    covered = 1.0 - below - above
    assert covered >= 0.9 - 0.002 - 0.002, (below, above)
    if min(a, b) >= 0.5:
        assert covered <= 0.9 + 0.035 + 0.002, (below, above)


def test_a_key_without_events_in_a_category_has_a_jeffreys_interval_from_zero_and_masked_columns_are_zero():
    counts = torch.tensor([[8.0, 2.0, 0.0, 0.0], [0.0, 5.0, 0.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    lower, upper = intervals(counts, mask, None, 0.9)
    assert lower[0, 2] == 0.0 and 0.0 < upper[0, 2] < 0.35
    assert (lower[0, 3], upper[0, 3]) == (0.0, 0.0)
    assert upper[1, 1] == 1.0 and 0.5 < lower[1, 1] < 1.0  # every event: up to 1
    assert bool((lower <= upper).all())


def test_a_prior_narrows_the_interval_of_a_small_key_around_its_posterior_mean():
    counts = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
    mask = torch.ones(1, 3, dtype=torch.bool)
    prior = torch.tensor([10.0, 20.0, 10.0], dtype=torch.float64)
    lower, upper = intervals(counts, mask, prior, 0.9)
    bare_lower, bare_upper = intervals(counts, mask, None, 0.9)
    posterior_mean = (counts + prior) / (counts.sum() + prior.sum())
    assert bool(((lower <= posterior_mean) & (posterior_mean <= upper)).all())
    assert bool(((upper - lower) < (bare_upper - bare_lower)).all())


@pytest.mark.parametrize("spread, prior", [(40.0, True), (0.5, True), (40.0, False), (0.5, False)])
def test_intervals_hold_the_truth_about_as_often_as_their_level(spread, prior):
    """5,000 keys (seed 3) of 3·min(Zipf(1.1), 500) events, truths around one mean (Dirichlet(spread·m));
    with the pooled prior fitted to them, or Jeffreys' without. Tolerance: the 0.85–0.95 target, for
    keys under 30 events too; Jeffreys' intervals of small keys may cover up to 0.97 (they start at
    0 for a category without events, and its upper bound is wider than exact)."""
    rng = np.random.default_rng(3)
    sizes = 3 * np.minimum(rng.zipf(1.1, size=5000), 500)
    truth = rng.dirichlet(spread * 16 * rng.dirichlet(np.ones(16)), size=5000)
    counts = torch.from_numpy(rng.multinomial(sizes, truth).astype(np.float64))
    mask = torch.ones(counts.shape, dtype=torch.bool)
    pseudo = fit_pooled_prior(counts).pseudo_counts if prior else None
    lower, upper = (bound.double().numpy() for bound in intervals(counts, mask, pseudo, 0.9))
    inside = (truth >= lower) & (truth <= upper)
    assert 0.85 <= inside.mean() <= 0.95, inside.mean()
    small = sizes < 30
    assert 0.85 <= inside[small].mean() <= (0.95 if prior else 0.97), inside[small].mean()
    assert 0.85 <= inside[~small].mean() <= 0.95, inside[~small].mean()
