"""gumbel_models.pooled_prior: the Dirichlet of a population, recovered from its keys' histograms.

Populations are drawn with fixed seeds: key sizes 3·min(Zipf(1.1), 2000), as in a keyed stream
where most keys are small. Tolerances: the concentration within 15 %, each mean component within
0.01 (K = 16) or 0.004 (K = 100) of the truth.
"""
import numpy as np
import pytest
import torch

from gumbel_models.pooled_prior import PooledPrior, fit_pooled_prior, moment_estimate


def population(alpha: float, mean: np.ndarray, keys: int, seed: int, support: np.ndarray | None = None):
    rng = np.random.default_rng(seed)
    sizes = 3 * np.minimum(rng.zipf(1.1, size=keys), 2000)
    a = np.broadcast_to(alpha * mean, (keys, len(mean)))
    if support is not None:
        a = np.where(support, a, 1e-300)  # a key's distribution is over its own categories only
    p = np.stack([rng.dirichlet(row) for row in a]) if support is not None else rng.dirichlet(alpha * mean, size=keys)
    counts = rng.multinomial(sizes, p)
    return torch.from_numpy(counts.astype(np.float64))


def _supports(rng: np.random.Generator, keys: int, categories: int, share: float) -> np.ndarray:
    """Each key's categories ``[keys, categories]``: each with probability ``share``, and one at least."""
    support = rng.random((keys, categories)) < share
    support[np.arange(keys), rng.integers(categories, size=keys)] = True
    return support


@pytest.mark.parametrize("alpha, categories, mean_tolerance", [(2.0, 16, 0.01), (40.0, 16, 0.01), (200.0, 16, 0.01),
                                                             (40.0, 100, 0.004)])
def test_the_fit_recovers_the_mean_and_concentration_of_a_population(alpha, categories, mean_tolerance):
    mean = np.random.default_rng(categories).dirichlet(np.ones(categories))
    counts = population(alpha, mean, keys=10_000, seed=int(alpha))
    prior = fit_pooled_prior(counts)
    assert abs(prior.concentration / alpha - 1) < 0.15, prior.concentration
    assert np.abs(prior.mean.numpy() - mean).max() < mean_tolerance
    assert prior.mean.sum().item() == pytest.approx(1.0)


def test_the_fixed_point_improves_on_the_moment_estimate_it_starts_from():
    mean = np.random.default_rng(3).dirichlet(np.ones(16))
    counts = population(40.0, mean, keys=10_000, seed=4)
    assert abs(fit_pooled_prior(counts).concentration - 40) < abs(moment_estimate(counts).concentration - 40)


def test_keys_without_events_change_nothing_and_too_few_keys_fit_nothing():
    mean = np.full(4, 0.25)
    counts = population(10.0, mean, keys=2_000, seed=5)
    with_empty = torch.cat([counts, torch.zeros(500, 4, dtype=torch.float64)])
    a, b = fit_pooled_prior(counts), fit_pooled_prior(with_empty)
    assert torch.allclose(a.mean, b.mean) and a.concentration == pytest.approx(b.concentration)
    assert fit_pooled_prior(counts[:1]) is None
    assert fit_pooled_prior(torch.zeros(10, 4, dtype=torch.float64)) is None


def test_keys_over_their_own_categories_still_give_the_population_mean():
    rng = np.random.default_rng(6)
    mean = rng.dirichlet(np.ones(16))
    support = _supports(rng, 10_000, 16, share=0.6)
    counts = population(40.0, mean, keys=10_000, seed=7, support=support)
    prior = fit_pooled_prior(counts, torch.from_numpy(support))
    assert abs(prior.concentration / 40 - 1) < 0.15, prior.concentration
    assert np.abs(prior.mean.numpy() - mean).max() < 0.01


def test_a_start_from_the_last_fit_gives_the_same_fit():
    counts = population(40.0, np.random.default_rng(8).dirichlet(np.ones(16)), keys=5_000, seed=9)
    first = fit_pooled_prior(counts)
    again = fit_pooled_prior(counts, start=first)
    assert torch.allclose(first.mean, again.mean, atol=1e-4)
    assert again.concentration == pytest.approx(first.concentration, rel=1e-3)


@pytest.mark.parametrize("counts, support, message", [
    (torch.ones(3), None, "must be \\[keys, columns\\]"),
    (torch.ones(3, 1), None, "at least 2 categories"),
    (-torch.ones(3, 2), None, "non-negative"),
    (torch.ones(3, 2), torch.ones(2, 2, dtype=torch.bool), "must have the shape of counts"),
])
def test_bad_inputs_are_refused_with_a_message(counts, support, message):
    with pytest.raises(ValueError, match=message):
        fit_pooled_prior(counts, support)


def test_columns_that_name_their_categories_fit_as_the_same_keys_over_the_whole_catalogue():
    """Open categories: each key's columns are its own categories, in its own order, padded with −1."""
    rng = np.random.default_rng(8)
    mean = rng.dirichlet(np.ones(12))
    support = _supports(rng, 3_000, 12, share=0.4)
    counts = population(30.0, mean, keys=3_000, seed=9, support=support)
    width = int(support.sum(axis=1).max())
    categories = np.full((3_000, width), -1)
    for b in range(3_000):  # a key's categories in the order it saw them
        own = rng.permutation(np.flatnonzero(support[b]))
        categories[b, :len(own)] = own
    columns = np.take_along_axis(counts.numpy(), categories.clip(0), axis=1) * (categories >= 0)
    dense = fit_pooled_prior(counts, torch.from_numpy(support))
    by_column = fit_pooled_prior(torch.from_numpy(columns), torch.from_numpy(categories >= 0),
                                 categories=torch.from_numpy(categories), n_categories=12)
    assert torch.allclose(dense.mean, by_column.mean, atol=1e-6)
    assert by_column.concentration == pytest.approx(dense.concentration, rel=1e-6)


@pytest.mark.parametrize("alpha", [2.0, 40.0])
def test_the_standard_errors_match_the_spread_of_fits_over_independent_populations(alpha):
    """30 populations of 2,000 keys (seeds 100–129) from one Dirichlet over K = 8: the spread of the
    fitted means and weights is within 0.7–1.4× the standard errors each fit reports (30 draws
    estimate a standard deviation within ~±13 % at one sigma)."""
    mean = np.random.default_rng(8).dirichlet(np.ones(8))
    fits = [fit_pooled_prior(population(alpha, mean, keys=2_000, seed=seed)) for seed in range(100, 130)]
    means = torch.stack([fit.mean for fit in fits])
    spread, reported = means.std(dim=0), torch.stack([fit.mean_error for fit in fits]).mean(dim=0)
    ratio = (spread / reported).numpy()
    assert ((0.7 < ratio) & (ratio < 1.4)).all(), ratio
    weights = np.array([fit.weight for fit in fits])
    assert 0.7 < weights.std(ddof=1) / np.mean([fit.weight_error for fit in fits]) < 1.4


def test_a_fit_moved_only_when_the_population_moved_beyond_its_noise():
    """Fits of two independent samples of one population (5,000 keys each, K = 16, α = 40) are
    within each other's noise, though their means differ by more than the 0.002 TV tolerance; a
    population whose mean moved by 0.03 in TV, or whose concentration grew by half, has moved.
    Without standard errors (priors known exactly) any change past the tolerances counts."""
    mean = np.random.default_rng(16).dirichlet(np.ones(16))
    shifted = 0.94 * mean + 0.06 * np.eye(16)[0]
    tolerances = dict(mean_tolerance=0.002, concentration_tolerance=0.02)
    fits = [fit_pooled_prior(population(40.0, mean, keys=5_000, seed=seed)) for seed in (200, 201, 202)]
    for old, new in ((fits[0], fits[1]), (fits[1], fits[2]), (fits[0], fits[2])):
        assert 0.5 * float((old.mean - new.mean).abs().sum()) > 0.002
        assert not new.moved_from(old, **tolerances)
    assert fit_pooled_prior(population(40.0, shifted, keys=5_000, seed=203)).moved_from(fits[0], **tolerances)
    assert fit_pooled_prior(population(60.0, mean, keys=5_000, seed=204)).moved_from(fits[0], **tolerances)
    exact = [PooledPrior(fit.mean, fit.concentration) for fit in fits[:2]]
    assert exact[1].moved_from(exact[0], **tolerances)


def test_the_prior_weighs_as_the_lower_bound_of_its_concentration():
    """α's one-sided 95 % lower bound: below the truth in at least 25 of 30 populations of 2,000 keys
    (α = 40, K = 8, seeds 100–129; 28.5 expected), and within 2.5 standard errors below the fit."""
    mean = np.random.default_rng(8).dirichlet(np.ones(8))
    fits = [fit_pooled_prior(population(40.0, mean, keys=2_000, seed=seed)) for seed in range(100, 130)]
    assert sum(fit.weight < 40.0 for fit in fits) >= 25
    for fit in fits:
        assert fit.concentration - 2.5 * fit.weight_error < fit.weight < fit.concentration
        assert torch.allclose(fit.pseudo_counts, fit.weight * fit.mean)


def test_a_population_too_small_to_measure_its_spread_weighs_as_almost_nothing():
    """Two keys of three identical events put α̂ at its bound, where any α fits; their prior weighs
    as less than two events, fewer than either key has. 5,000 identical keys of
    20 events also put α̂ at its bound, but their likelihood bounds α from below: α_L > 100."""
    few = fit_pooled_prior(torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]]))
    assert few.concentration > 1e5 and few.events < 2.0 and few.weight_error < 10.0
    rng = np.random.default_rng(5)
    same = fit_pooled_prior(torch.from_numpy(rng.multinomial(20, [0.5, 0.3, 0.2], size=5_000).astype(np.float64)))
    assert same.events > 100.0 and abs(float(same.mean[0]) - 0.5) < 0.01
