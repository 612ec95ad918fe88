"""The closed-form gradients used in training equal autograd's on the loss definitions."""
import pytest
import torch

from gumbel_models import discriminator as disc
from gumbel_models.gradients import discriminator_step, generator_step
from gumbel_models.gumbel_softmax import perturbed_logits
from gumbel_models.samples import DenseSamples


def _samples(logits, tau, hard, gen):
    perturbed = perturbed_logits(logits, tau, 32, generator=gen)
    soft = torch.softmax(perturbed, -1)
    index = perturbed.argmax(-1)
    forward = torch.nn.functional.one_hot(index, logits.shape[1]).to(soft) if hard else soft
    return perturbed, soft, (index if hard else None), forward


@pytest.mark.parametrize("hard", [True, False])
def test_discriminator_gradient_matches_autograd(hard):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    params = torch.randn(4, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    real = torch.softmax(torch.randn(4, 6, generator=gen, dtype=torch.float64), -1)
    _, soft, index, forward = _samples(logits, 0.6, hard, gen)
    penalty = disc.penalty_weights(0.3, real, torch.softmax(logits, -1), torch.ones(4, 6, dtype=torch.bool))
    loss = disc.real_loss_from_counts(params, real) + disc.fake_loss(params, forward) + disc.weight_penalty(params, penalty)
    (expected,) = torch.autograd.grad(loss.sum(), params)
    grad, value = discriminator_step(params.detach(), real, DenseSamples(soft, index), penalty)
    assert torch.allclose(grad, expected, atol=1e-12)
    assert torch.allclose(value, loss.detach(), atol=1e-12)


@pytest.mark.parametrize("hard", [True, False])
def test_generator_gradient_matches_straight_through_autograd(hard):
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    params = torch.randn(4, 7, generator=gen, dtype=torch.float64)
    tau = 0.4
    perturbed = perturbed_logits(logits, tau, 32, generator=gen)
    soft = torch.softmax(perturbed, -1)
    index = perturbed.argmax(-1)
    if hard:
        one_hot = torch.nn.functional.one_hot(index, 6).to(soft)
        forward = one_hot - soft.detach() + soft
    else:
        forward = soft
    loss = disc.generator_loss(params, forward)
    (expected,) = torch.autograd.grad(loss.sum(), logits)
    grad, value = generator_step(params, DenseSamples(soft.detach(), index if hard else None), tau)
    assert torch.allclose(grad, expected, atol=1e-12)
    assert torch.allclose(value, loss.detach(), atol=1e-12)


def test_expected_fake_term_is_the_mean_over_many_hard_samples():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    params = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    real = torch.softmax(torch.randn(3, 5, generator=gen, dtype=torch.float64), -1)
    perturbed = perturbed_logits(logits, 0.5, 400_000, generator=gen)
    sampled, _ = discriminator_step(params, real, DenseSamples(torch.softmax(perturbed, -1), perturbed.argmax(-1)), 0.1)
    exact, _ = discriminator_step(params, real, torch.softmax(logits, -1), 0.1)
    assert torch.allclose(sampled, exact, atol=5e-3)  # Monte Carlo error ~1e-3 at 400k samples
