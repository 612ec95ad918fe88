import torch
import torch.nn.functional as F

from gumbel_models import discriminator as disc


def test_real_loss_from_counts_equals_loss_on_expanded_one_hot_batch():
    gen = torch.Generator().manual_seed(0)
    params = torch.randn(3, 6, generator=gen, dtype=torch.float64)  # K = 5
    counts = torch.tensor([[0, 3, 1, 0, 7], [2, 2, 2, 2, 2], [0, 0, 0, 0, 1]], dtype=torch.float64)
    from_counts = disc.real_loss_from_counts(params, counts)
    for b in range(3):
        events = torch.repeat_interleave(torch.arange(5), counts[b].long())
        batch = F.one_hot(events, 5).to(torch.float64).unsqueeze(0)
        scores = disc.scores(params[b:b + 1], batch)
        expanded = F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores), reduction="sum")
        assert torch.allclose(from_counts[b], expanded, rtol=1e-12)


def test_weight_penalty_ignores_the_bias():
    params = torch.tensor([[1.0, 2.0, 100.0]])
    assert torch.allclose(disc.weight_penalty(params, 2.0), torch.tensor([5.0]))


def test_penalty_weights_are_r1_for_a_uniform_mixture_and_follow_the_samples_otherwise():
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    real = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.9, 0.1, 0.0, 0.0]])
    fake = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.7, 0.3, 0.0, 0.0]])
    weights = disc.penalty_weights(0.1, real, fake, mask)
    assert torch.allclose(weights[0], torch.full((4,), 0.1))      # uniform: plain R1, γ on every weight
    assert torch.allclose(weights[1], torch.tensor([0.16, 0.04, 0.0, 0.0]))  # γ·K_b·(p̂+q)/2, K_b = 2
