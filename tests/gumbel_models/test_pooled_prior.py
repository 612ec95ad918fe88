"""gumbel_models.pooled_prior: the Dirichlet of a population, recovered from its keys' histograms.

Populations are drawn with fixed seeds: key sizes 3·min(Zipf(1.1), 2000), as in a keyed stream
where most keys are small. Tolerances: the concentration within 15 %, each mean component within
0.01 (K = 16) or 0.004 (K = 100) of the truth.
"""
import numpy as np
import pytest
import torch

from gumbel_models.pooled_prior import fit_pooled_prior, moment_estimate


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
