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


def test_r1_penalty_ignores_the_bias():
    params = torch.tensor([[1.0, 2.0, 100.0]])
    assert torch.allclose(disc.r1_penalty(params, 2.0), torch.tensor([5.0]))
