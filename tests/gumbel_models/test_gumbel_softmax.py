import math

import pytest
import torch

from gumbel_models import gumbel_softmax_sample
from gumbel_models.gumbel_softmax import perturbed_logits


def test_hard_samples_follow_softmax_of_logits():
    """Chi-square goodness of fit of 200,000 hard samples; seed fixed, test at the 0.1% level."""
    gen = torch.Generator().manual_seed(1234)
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0, 1.0]])
    n = 200_000
    samples = gumbel_softmax_sample(logits, 0.5, n, hard=True, generator=gen)
    observed = samples[0].sum(0)
    expected = torch.softmax(logits, -1)[0] * n
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 18.47  # χ²(df=4) 99.9% quantile


def test_hard_samples_are_one_hot_and_soft_samples_on_simplex():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, generator=gen)
    hard = gumbel_softmax_sample(logits, 1.0, 50, hard=True, generator=gen)
    assert torch.equal(hard.detach().sum(-1), torch.ones(3, 50))
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}
    soft = gumbel_softmax_sample(logits, 1.0, 50, hard=False, generator=gen)
    assert torch.allclose(soft.sum(-1), torch.ones(3, 50), atol=1e-5)
    assert bool((soft > 0).all())


@pytest.mark.parametrize("hard", [True, False])
def test_gradients_reach_the_logits(hard):
    gen = torch.Generator().manual_seed(0)
    logits = torch.zeros(2, 4, requires_grad=True)
    weights = torch.tensor([1.0, -2.0, 0.5, 3.0])
    samples = gumbel_softmax_sample(logits, 0.7, 64, hard=hard, generator=gen)
    (samples * weights).sum().backward()
    assert logits.grad is not None
    assert bool(torch.isfinite(logits.grad).all())
    assert float(logits.grad.abs().sum()) > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("temperature", [1e-3, 0.1, 1.0, 10.0])
@pytest.mark.parametrize("hard", [True, False])
def test_extreme_logits_and_temperatures_stay_finite(dtype, temperature, hard):
    gen = torch.Generator().manual_seed(7)
    logits = torch.tensor([[50.0, -50.0, 0.0, 49.0, -49.9]], dtype=dtype, requires_grad=True)
    samples = gumbel_softmax_sample(logits, temperature, 4096, hard=hard, generator=gen)
    assert samples.dtype == dtype
    assert bool(torch.isfinite(samples).all())
    (samples * torch.arange(5, dtype=dtype)).sum().backward()
    assert bool(torch.isfinite(logits.grad).all())


def test_masked_categories_get_no_mass():
    gen = torch.Generator().manual_seed(3)
    logits = torch.tensor([[0.0, float("-inf"), 1.0, float("-inf")]], requires_grad=True)
    soft = gumbel_softmax_sample(logits, 0.5, 1000, hard=False, generator=gen)
    assert float(soft.detach()[..., [1, 3]].abs().max()) == 0.0
    soft.sum().backward()
    assert bool(torch.isfinite(logits.grad).all())


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_non_positive_or_non_finite_temperature_is_rejected(bad):
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        perturbed_logits(torch.zeros(1, 3), bad, 1)
