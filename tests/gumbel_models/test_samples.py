"""Factored samples are the dense samples of the same noise, contracted without materialising them."""
import pytest
import torch

from gumbel_models.gradients import discriminator_step, generator_step
from gumbel_models.samples import FACTORED_MIN_TEMPERATURE, DenseSamples, FactoredSamples, draw


def _pair(logits, tau, n, hard, seed=0):
    factored = draw(logits, tau, n, hard=hard, generator=torch.Generator().manual_seed(seed))
    dense = draw(logits, tau, n, hard=hard, generator=torch.Generator().manual_seed(seed), dense=True)
    return factored, dense


@pytest.mark.parametrize("hard", [True, False])
@pytest.mark.parametrize("tau", [FACTORED_MIN_TEMPERATURE, 0.2, 1.0, 5.0])
def test_every_contraction_equals_the_dense_samples(hard, tau):
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(64, 16, generator=gen, dtype=torch.float64) * 4
    logits[:, 3] = float("-inf")  # a masked category
    logits[:, 5] = logits[:, 7] + 30  # a wide logit range
    factored, dense = _pair(logits, tau, 48, hard)
    assert isinstance(factored, FactoredSamples) and isinstance(dense, DenseSamples)
    v = torch.randn(64, 16, generator=gen, dtype=torch.float64)
    u = torch.rand(64, 48, generator=gen, dtype=torch.float64)
    # float64 factors against float64 softmax: agreement to rounding (1e-9 absolute on O(1) values)
    assert torch.allclose(factored.soft_dot(v), dense.soft_dot(v), atol=1e-9)
    assert torch.allclose(factored.soft_sum(u), dense.soft_sum(u), atol=1e-9)
    assert torch.allclose(factored.forward_dot(v), dense.forward_dot(v), atol=1e-9)
    assert torch.allclose(factored.forward_sum(u), dense.forward_sum(u), atol=1e-9)
    assert factored.soft_sum(u)[:, 3].abs().max() == 0  # masked: no mass, exactly


@pytest.mark.parametrize("hard", [True, False])
def test_gradients_from_factored_samples_equal_those_from_dense_ones(hard):
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(32, 16, generator=gen)
    params = torch.randn(32, 17, generator=gen) * 0.5
    real = torch.softmax(torch.randn(32, 16, generator=gen), -1)
    factored, dense = _pair(logits, 0.7, 256, hard)
    for a, b in ((generator_step(params, factored, 0.7), generator_step(params, dense, 0.7)),
                 (discriminator_step(params, real, factored, 0.1), discriminator_step(params, real, dense, 0.1))):
        assert torch.allclose(a[0], b[0], atol=1e-6) and torch.allclose(a[1], b[1], atol=1e-6)  # float32 rounding


def test_a_temperature_below_the_factored_bound_falls_back_to_dense_samples():
    logits = torch.tensor([[50.0, -50.0, 0.0]])
    samples = draw(logits, FACTORED_MIN_TEMPERATURE / 2, 8, hard=True, generator=torch.Generator().manual_seed(0))
    assert isinstance(samples, DenseSamples)
    assert bool(torch.isfinite(samples.soft_dot(torch.ones(1, 3))).all())


def test_a_tie_for_the_maximum_counts_as_the_mean_of_the_tied_vertices():
    samples = FactoredSamples(torch.zeros(1, 3), torch.tensor([[1.0, 1.0, 0.0]]), 1.0, hard=True)
    assert samples.forward_dot(torch.tensor([[2.0, 4.0, 8.0]])).tolist() == [[3.0]]
    assert samples.forward_sum(torch.tensor([[1.0]])).tolist() == [[0.5, 0.5, 0.0]]
