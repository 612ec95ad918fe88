"""Batched divergences between categorical distributions ``p`` and ``q`` of shape ``[B, K]``.

- total variation:  TV(p, q) = ½ Σ_k |p_k − q_k|                         ∈ [0, 1]
- Kullback–Leibler: KL(p ‖ q) = Σ_k p̃_k log(p̃_k / q̃_k),  x̃ = (x + ε) / (1 + K·ε)
  (additive smoothing keeps it finite when q_k = 0 < p_k)
- Jensen–Shannon:   JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m),  m = (p + q) / 2   ∈ [0, log 2]
  (finite without smoothing: m_k > 0 wherever p_k or q_k is)

All return ``[B]`` tensors in nats and never synchronise with the host.

>>> import torch
>>> p = torch.tensor([[0.5, 0.5, 0.0]]); q = torch.tensor([[0.25, 0.25, 0.5]])
>>> total_variation(p, q)
tensor([0.5000])
>>> bool(torch.isfinite(kl_divergence(p, q)).all() and torch.isfinite(kl_divergence(q, p)).all())
True
>>> js_divergence(p, p)
tensor([0.])
"""
from __future__ import annotations

import torch

KL_SMOOTHING = 1e-6


def total_variation(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return 0.5 * (p - q).abs().sum(dim=-1)


def kl_divergence(p: torch.Tensor, q: torch.Tensor, smoothing: float = KL_SMOOTHING) -> torch.Tensor:
    k = p.shape[-1]
    p = (p + smoothing) / (1.0 + k * smoothing)
    q = (q + smoothing) / (1.0 + k * smoothing)
    return (p * (p.log() - q.log())).sum(dim=-1).clamp_(min=0.0)  # ≥ 0; rounding can take it a hair below


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    m = 0.5 * (p + q)
    log_m = m.log()  # −inf only where p = q = 0, and xlogy(0, ·) is 0 there
    kl_pm = torch.xlogy(p, p) - torch.where(p > 0, p * log_m, torch.zeros_like(p))
    kl_qm = torch.xlogy(q, q) - torch.where(q > 0, q * log_m, torch.zeros_like(q))
    return (0.5 * (kl_pm + kl_qm).sum(dim=-1)).clamp_(min=0.0)


def divergences(p: torch.Tensor, q: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"tv", "kl", "js"}`` of the learned ``q`` against the reference ``p``; KL is ``KL(p ‖ q)``."""
    return {"tv": total_variation(p, q), "kl": kl_divergence(p, q), "js": js_divergence(p, q)}
