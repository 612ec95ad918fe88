"""Closed-form gradients of the GAN losses for a logistic discriminator.

The losses are defined in :mod:`gumbel_models.discriminator`; with a linear score
``s = w·x + β`` their gradients need no autograd graph, which makes a training step a few fused
tensor operations instead of a graph of ~100 small ones. Tests check both against autograd.

Samples arrive as their parts: ``soft`` ``y = softmax((θ+g)/τ)`` ``[B, M, K]`` and, for hard
(straight-through) samples, ``index`` ``z = argmax(θ+g)`` ``[B, M]`` — the one-hot forward value
``e_z`` is never materialised.

Discriminator, with ``x_m`` the forward sample (``e_{z_m}`` or ``y_m``) and ``σ`` the logistic::

    ∂L/∂w_k = −p̂_k·σ(−(w_k+β)) + (1/M)·Σ_m σ(s_m)·x_mk + γ·w_k
    ∂L/∂β   = −Σ_k p̂_k·σ(−(w_k+β)) + (1/M)·Σ_m σ(s_m)

With hard samples every fake is a vertex ``e_k`` drawn with probability ``q_k = softmax(θ)_k``, so the
expected fake term is exact and O(K), like the real one (``expected_fake``)::

    E[L_fake] = Σ_k q_k·softplus(w_k+β),   ∂/∂w_k = q_k·σ(w_k+β)

Generator, ``ℓ = softplus(−s)``; the straight-through gradient is the soft sample's, and
``∂y_k/∂θ_j = y_k(δ_jk − y_j)/τ`` gives::

    ∂L/∂θ_j = −(1/(τM))·Σ_m σ(−s_m)·y_mj·(w_j − y_m·w)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def forward_scores(params: torch.Tensor, soft: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    """``s_m = w·x_m + β`` ``[B, M]``: ``x_m = e_{z_m}`` when ``index`` is given, else ``y_m``."""
    w, bias = params[:, :-1], params[:, -1:]
    if index is None:
        return torch.einsum("bmk,bk->bm", soft, w) + bias
    return w.gather(1, index) + bias


def discriminator_step(params: torch.Tensor, real: torch.Tensor, fake: torch.Tensor | tuple,
                       gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ``[B, K+1]`` and loss ``[B]`` of real (``p̂`` ``[B, K]``) + fake + R1 terms.

    ``fake`` is either the generator's probabilities ``q`` ``[B, K]`` (exact expected fake term
    of hard samples) or drawn samples ``(soft, index)``.
    """
    w, bias = params[:, :-1], params[:, -1:]
    vertex_scores = w + bias
    real_grad = -real * torch.sigmoid(-vertex_scores)
    loss = (real * F.softplus(-vertex_scores)).sum(-1) + 0.5 * gamma * w.pow(2).sum(-1)
    if isinstance(fake, torch.Tensor):
        fake_grad = fake * torch.sigmoid(vertex_scores)
        fake_bias_grad = fake_grad.sum(-1, keepdim=True)
        loss = loss + (fake * F.softplus(vertex_scores)).sum(-1)
    else:
        soft, index = fake
        scores = forward_scores(params, soft, index)
        fake_weight = torch.sigmoid(scores) / soft.shape[1]
        if index is None:
            fake_grad = torch.einsum("bm,bmk->bk", fake_weight, soft)
        else:
            fake_grad = torch.zeros_like(w).scatter_add_(1, index, fake_weight)
        fake_bias_grad = fake_weight.sum(-1, keepdim=True)
        loss = loss + F.softplus(scores).mean(-1)
    grad_w = real_grad + fake_grad + gamma * w
    grad_b = real_grad.sum(-1, keepdim=True) + fake_bias_grad
    return torch.cat([grad_w, grad_b], dim=-1), loss


def generator_step(params: torch.Tensor, soft: torch.Tensor, index: torch.Tensor | None,
                   temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ``[B, K]`` with respect to the logits, and loss ``[B]``, of ``mean_m softplus(−s_m)``.

    Expanded as ``−(1/(τM))·(w ⊙ Σ_m a_m·y_m − Σ_m a_m·(y_m·w)·y_m)`` with ``a_m = σ(−s_m)``: two
    batched matrix products, no ``[B, M, K]`` temporaries.
    """
    w = params[:, :-1]
    scores = forward_scores(params, soft, index)
    weight = torch.sigmoid(-scores)                                      # a_m      [B, M]
    dot = torch.bmm(soft, w.unsqueeze(-1)).squeeze(-1)                   # y_m · w  [B, M]
    sums = torch.bmm(torch.stack([weight, weight * dot], dim=1), soft)   # [B, 2, K]
    grad = (w * sums[:, 0] - sums[:, 1]) * (-1.0 / (temperature * soft.shape[1]))
    return grad, F.softplus(-scores).mean(-1)
