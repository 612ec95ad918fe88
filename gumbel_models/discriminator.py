"""Logistic-regression discriminators, one per key, on one-hot (or relaxed) category vectors.

For key ``b`` with weights ``w_b ∈ R^K`` and bias ``β_b``::

    D_b(x) = σ(s_b(x)),   s_b(x) = w_b · x + β_b

Losses (``softplus(s) = −log(1 − σ(s))``, ``softplus(−s) = −log σ(s)``)::

    real:  L_real,b = Σ_k p̂_bk · softplus(−(w_bk + β_b))     (p̂ = normalised histogram)
    fake:  L_fake,b = mean_m softplus(s_b(y_bm))
    weights: ½·γ·Σ_k max(K_b·m_bk, ε)·w_bk²,   m_b = (p̂_b + q_b)/2   (K_b: the key's categories)

The weight penalty is Mescheder et al.'s R1 (2018), ``½·γ·‖∇_x s‖² = ½·γ·‖w‖²`` for a linear
score, with each vertex weighed by how often real and fake samples land on it (``m``, scaled by
``K_b`` so that a uniform ``m`` gives R1 itself). The evidence on ``w_k`` of both loss terms is
proportional to ``m_k``; a flat penalty outweighs it on a rare category, whose weight then stays
near 0 and tells the generator nothing, so a category with probability 1e-4 was learned at
several times its counting noise above its target (docs/benchmarks.md, "Measurements behind the
model"). Scaled by ``m_k``, the penalty shrinks every weight by the same factor, down to ``ε`` of a
uniform category's: without a floor an absent category was pushed to 1e-6 and below, from where the
softmax's vanishing gradient took thousands of steps to bring it back when it appeared (the
``drift`` scenario did not recover). With ``ε`` = 0.02 an absent category keeps about 5e-5 and
comes back within a few hundred steps; the trade-off is measured in the same section.

Real events are the one-hot vertices ``e_k``, so the real loss of any batch is ``Σ_k c_k·ℓ(D(e_k))``:
it is computed from the exact histogram of every event received, at O(K) cost per step.
Parameters are one tensor ``[B, K+1]`` (weights, then bias) so a single row-wise optimiser
updates them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

RARE_FLOOR = 0.02  # ε: a category's penalty weighs at least this share of a uniform category's


def real_loss_from_counts(params: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``[B]`` loss ``Σ_k c_bk · softplus(−(w_bk + β_b))`` of ``c`` real events per category."""
    w, bias = params[:, :-1], params[:, -1:]
    return (counts * F.softplus(-(w + bias))).sum(dim=-1)


def scores(params: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """Logits ``s = w·y + β`` of samples ``[B, M, K]`` → ``[B, M]``."""
    w, bias = params[:, :-1], params[:, -1:]
    return torch.einsum("bmk,bk->bm", samples, w) + bias


def fake_loss(params: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """``[B]`` mean of ``softplus(s)``: the discriminator is rewarded for calling samples fake."""
    return F.softplus(scores(params, samples)).mean(dim=-1)


def generator_loss(params: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """``[B]`` non-saturating generator loss, mean of ``softplus(−s)`` (Goodfellow et al. 2014)."""
    return F.softplus(-scores(params, samples)).mean(dim=-1)


def penalty_weights(gamma: float, real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``γ·max(K_b·m_bk, ε)`` ``[B, K]`` on the key's categories (0 elsewhere), ``m = (p̂ + q)/2``,
    ``ε`` = :data:`RARE_FLOOR`, for real and fake probabilities ``[B, K]`` and the categories
    ``mask`` ``[B, K]`` (bool)."""
    categories = mask.sum(dim=-1, keepdim=True).to(real)
    return gamma * torch.clamp(categories * 0.5 * (real + fake), min=RARE_FLOOR) * mask


def weight_penalty(params: torch.Tensor, weights: torch.Tensor | float) -> torch.Tensor:
    """``[B]`` ``½·Σ_k c_k·w_k²`` for penalty weights ``c`` (:func:`penalty_weights`, or a number:
    plain R1); the bias is not penalised (it does not enter ∇_x s)."""
    return 0.5 * (weights * params[:, :-1].pow(2)).sum(dim=-1)


def init_params(n_keys: int, n_categories: int, *, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    return torch.zeros(n_keys, n_categories + 1, dtype=dtype, device=device)
