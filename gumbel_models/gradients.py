"""Closed-form gradients of the GAN losses for a logistic discriminator.

The losses are defined in :mod:`gumbel_models.discriminator`; with a linear score
``s = w·x + β`` their gradients need no autograd graph, which makes a training step a few fused
tensor operations instead of a graph of ~100 small ones. Tests check both against autograd.

Samples arrive as a :mod:`.samples` batch, which contracts the soft samples
``y = softmax((θ+g)/τ)`` and the forward values ``x`` (the one-hot ``e_z``, ``z = argmax(θ+g)``, of
hard straight-through samples; else ``y``) against per-row vectors without materialising them.

Discriminator, with ``x_m`` the forward sample (``e_{z_m}`` or ``y_m``) and ``σ`` the logistic::

    ∂L/∂w_k = −p̂_k·σ(−(w_k+β)) + (1/M)·Σ_m σ(s_m)·x_mk + c_k·w_k     (c: the penalty weights)
    ∂L/∂β   = −Σ_k p̂_k·σ(−(w_k+β)) + (1/M)·Σ_m σ(s_m)

With hard samples every fake is a vertex ``e_k`` drawn with probability ``q_k = softmax(θ)_k``, so the
expected fake term is exact and O(K), like the real one (``expected_fake``)::

    E[L_fake] = Σ_k q_k·softplus(w_k+β),   ∂/∂w_k = q_k·σ(w_k+β)

Generator, ``ℓ = softplus(−s)``; the straight-through gradient is the soft sample's, and
``∂y_k/∂θ_j = y_k(δ_jk − y_j)/τ`` gives::

    ∂L/∂θ_j = −(1/(τM))·Σ_m σ(−s_m)·y_mj·(w_j − y_m·w)
       = −(1/(τM))·(w_j·Σ_m a_m·y_mj − Σ_m a_m·(y_m·w)·y_mj),   a_m = σ(−s_m)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .samples import Samples


def discriminator_step(params: torch.Tensor, real: torch.Tensor, fake: torch.Tensor | Samples,
                       penalty: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ``[B, K+1]`` and loss ``[B]`` of real (``p̂`` ``[B, K]``) + fake + weight-penalty terms
    (``penalty``: the weights ``c`` ``[B, K]`` of :func:`~gumbel_models.discriminator.penalty_weights`,
    or a number ``γ``, plain R1).

    ``fake`` is either the generator's probabilities ``q`` ``[B, K]`` (exact expected fake term
    of hard samples) or drawn samples.
    """
    w, bias = params[:, :-1], params[:, -1:]
    vertex_scores = w + bias
    real_grad = -real * torch.sigmoid(-vertex_scores)
    loss = (real * F.softplus(-vertex_scores)).sum(-1) + 0.5 * (penalty * w.pow(2)).sum(-1)
    if isinstance(fake, torch.Tensor):
        fake_grad = fake * torch.sigmoid(vertex_scores)
        fake_bias_grad = fake_grad.sum(-1, keepdim=True)
        loss = loss + (fake * F.softplus(vertex_scores)).sum(-1)
    else:
        scores = fake.forward_dot(w) + bias                                  # s_m  [B, M]
        fake_weight = torch.sigmoid(scores) / fake.n_samples
        fake_grad = fake.forward_sum(fake_weight)
        fake_bias_grad = fake_weight.sum(-1, keepdim=True)
        loss = loss + F.softplus(scores).mean(-1)
    grad_w = real_grad + fake_grad + penalty * w
    grad_b = real_grad.sum(-1, keepdim=True) + fake_bias_grad
    return torch.cat([grad_w, grad_b], dim=-1), loss


def generator_step(params: torch.Tensor, samples: Samples, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ``[B, K]`` with respect to the logits, and loss ``[B]``, of ``mean_m softplus(−s_m)``."""
    w, bias = params[:, :-1], params[:, -1:]
    scores = samples.forward_dot(w) + bias                                   # s_m      [B, M]
    weight = torch.sigmoid(-scores)                                          # a_m      [B, M]
    dot = samples.soft_dot(w)                                                # y_m · w  [B, M]
    sums = samples.soft_sum(torch.stack([weight, weight * dot]))            # [2, B, K]
    grad = (w * sums[0] - sums[1]) * (-1.0 / (temperature * samples.n_samples))
    return grad, F.softplus(-scores).mean(-1)
