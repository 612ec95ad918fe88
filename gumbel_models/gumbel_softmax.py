"""Gumbel-softmax (Concrete) samples from batched categorical logits.

For logits ``θ`` of shape ``[..., K]`` and temperature ``τ > 0``::

    g_k = −log(−log u_k),            u_k ~ Uniform(0, 1)   (standard Gumbel)
    y   = softmax((θ + g) / τ)                               (soft sample, on the simplex)
    z   = one_hot(argmax(θ + g))                             (Gumbel-max: z ~ Categorical(softmax θ))

``hard=True`` returns the straight-through estimator ``z − stop_grad(y) + y``: the forward value is
the exact categorical sample ``z``, the gradient is that of ``y``.

References: Jang, Gu & Poole (2017), "Categorical Reparameterization with Gumbel-Softmax";
Maddison, Mnih & Teh (2017), "The Concrete Distribution".

Numerics: uniforms are drawn in float32 and clamped to ``[tiny, 1 − eps]`` so the Gumbel noise is
finite (|g| < 17); the softmax is taken as ``exp(log_softmax(·))`` so a temperature of 1e-3 on
logits of ±50 (arguments ~1e5) neither overflows nor produces NaN, in float32 or bfloat16.
Masked categories carry logit ``−inf`` and get exactly zero mass.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def check_temperature(temperature: float) -> float:
    """The one validation path for temperatures: finite and strictly positive."""
    t = float(temperature)
    if not math.isfinite(t) or t <= 0.0:
        raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")
    return t


def _noise_range() -> float:
    """Width of the interval the clamped noise lies in: ``−log(−log(1 − eps)) + log(−log(tiny))``."""
    finfo = torch.finfo(torch.float32)
    return -math.log(-math.log1p(-finfo.eps)) + math.log(-math.log(finfo.tiny))


NOISE_RANGE = _noise_range()  # ≈ 20.4: g lies in [−4.47, 15.9]


def gumbel_noise(shape: torch.Size | tuple[int, ...], *, generator: torch.Generator | None,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Standard Gumbel noise in float32, finite by construction."""
    # torch.rand is faster than exponential_() on CPU; the clamp keeps both logs finite
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float32)
    finfo = torch.finfo(torch.float32)
    return u.clamp_(min=finfo.tiny, max=1.0 - finfo.eps).log_().neg_().log_().neg_()


def perturbed_logits(logits: torch.Tensor, temperature: float, n_samples: int, *,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """``(θ + g) / τ`` for ``n_samples`` Gumbel draws: ``[B, K]`` → ``[B, M, K]``.

    Its argmax is an exact categorical sample of each row; its softmax is the relaxed sample.
    One noise draw ``g`` ``[M, K]`` serves every row: rows are independent problems, so each row's
    samples are exactly as distributed as with noise of its own, and noise costs O(M·K), not
    O(B·M·K). A row's samples therefore do not depend on which other rows share the batch.
    """
    tau = check_temperature(temperature)
    k = logits.shape[-1]
    noise = gumbel_noise((n_samples, k), generator=generator, device=logits.device)
    return (logits / tau).unsqueeze(1) + (noise / tau).to(logits.dtype)


def gumbel_softmax_sample(logits: torch.Tensor, temperature: float, n_samples: int, *,
                          hard: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n_samples`` relaxed one-hot samples per row of ``logits``.

    Args:
        logits: ``[B, K]``; masked categories as ``−inf`` (at least one finite entry per row).
        temperature: ``τ > 0``.
        n_samples: ``M``, samples per row.
        hard: straight-through one-hot forward values (``True``) or soft simplex points.
        generator: the source of randomness (``torch.Generator`` on ``logits.device``).

    Returns:
        ``[B, M, K]`` samples in ``logits.dtype``, differentiable with respect to ``logits``.
    """
    perturbed = perturbed_logits(logits, temperature, n_samples, generator=generator)
    soft = F.log_softmax(perturbed, dim=-1).exp()
    if not hard:
        return soft
    index = perturbed.detach().argmax(dim=-1, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return one_hot - soft.detach() + soft
