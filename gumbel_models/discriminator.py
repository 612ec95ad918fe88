"""Logistic-regression discriminators, one per key, on one-hot (or relaxed) category vectors.

For key ``b`` with weights ``w_b ∈ R^K`` and bias ``β_b``::

    D_b(x) = σ(s_b(x)),   s_b(x) = w_b · x + β_b

Losses (``softplus(s) = −log(1 − σ(s))``, ``softplus(−s) = −log σ(s)``)::

    real:  L_real,b = Σ_k p̂_bk · softplus(−(w_bk + β_b))     (p̂ = normalised histogram)
    fake:  L_fake,b = mean_m softplus(s_b(y_bm))
    R1:    ½·γ·‖∇_x s_b‖² = ½·γ·‖w_b‖²                          (Mescheder et al. 2018)

Real events are the one-hot vertices ``e_k``, so the real loss of any batch is ``Σ_k c_k·ℓ(D(e_k))``:
it is computed from the exact histogram of every event received, at O(K) cost per step.
Parameters are one tensor ``[B, K+1]`` (weights, then bias) so a single row-wise optimiser
updates them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


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


def r1_penalty(params: torch.Tensor, gamma: float) -> torch.Tensor:
    """``[B]`` ``½·γ·‖w‖²``; the bias is not penalised (it does not enter ∇_x s)."""
    return 0.5 * gamma * params[:, :-1].pow(2).sum(dim=-1)


def init_params(n_keys: int, n_categories: int, *, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    return torch.zeros(n_keys, n_categories + 1, dtype=dtype, device=device)
