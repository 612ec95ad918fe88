"""A batch of Gumbel-softmax samples that share one noise draw, kept in factored form.

Each of ``B`` rows of logits ``θ`` ``[B, K]`` gets ``M`` samples from the same Gumbel noise
``g`` ``[M, K]`` (rows are independent problems, so sharing noise changes no row's distribution;
:func:`.gumbel_softmax.perturbed_logits`). The exponentials then factorise::

    exp((θ_bk + g_mk)/τ) ∝ a_bk · c_mk,   a_bk = exp((θ_bk − max_j θ_bj)/τ),  c_mk = exp((g_mk − max_j g_mj)/τ)
    Z_bm  = Σ_k a_bk c_mk = (a cᵀ)_bm
    y_bmk = a_bk c_mk / Z_bm                                   (the soft sample, never materialised)

and every contraction the GAN's gradients need is a matrix product with the shared ``c``::

    y_bm · v_b       = ((a ⊙ v) cᵀ)_bm / Z_bm                   [B, M]
    Σ_m u_bm y_bmk   = a_bk · ((u / Z) c)_bk                    [B, K]

so a step costs O(B·M·K) multiply-adds in BLAS instead of a dozen passes over a ``[B, M, K]``
tensor. The hard sample ``z_bm = argmax_k (θ_bk + g_mk)`` is one comparison pass over the
perturbed logits laid out ``[B, K, M]``: their maximum is then a reduction over a middle axis,
faster on CPU than over a short last axis. In float32 two categories can tie for the maximum
(about once in 10⁶ samples at K = 16): the tie is split evenly, the sample counting as the mean
of the tied vertices.

Precision: the factors are float64. ``Z_bm ≥ c_{m,k*}`` for ``k* = argmax θ_b``, and ``c ≥
exp(−R/τ)`` with ``R`` the range of the clamped noise (< 20.5), so ``Z`` stays far from underflow
for ``τ ≥ R/600`` ≈ 0.034 (:data:`FACTORED_MIN_TEMPERATURE`); below it, :func:`draw` materialises
the samples instead (:class:`DenseSamples`, the same interface).

>>> import torch
>>> logits = torch.tensor([[0.0, 1.0, 2.0], [1.0, 1.0, -1.0]])
>>> factored = draw(logits, 0.5, 4, hard=True, generator=torch.Generator().manual_seed(0))
>>> dense = draw(logits, 0.5, 4, hard=True, generator=torch.Generator().manual_seed(0), dense=True)
>>> v = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
>>> torch.allclose(factored.soft_dot(v), dense.soft_dot(v)), torch.equal(factored.forward_dot(v), dense.forward_dot(v))
(True, True)
"""
from __future__ import annotations

import torch

from .gumbel_softmax import NOISE_RANGE, check_temperature, gumbel_noise, perturbed_logits

FACTORED_MIN_TEMPERATURE = NOISE_RANGE / 600.0  # exp(−600) is far above float64's smallest normal, e^−708


class FactoredSamples:
    """``M`` samples per row from logits ``[B, K]`` (masked categories ``−inf``) and shared noise ``[M, K]``."""

    def __init__(self, logits: torch.Tensor, noise: torch.Tensor, temperature: float, hard: bool) -> None:
        tau = check_temperature(temperature)
        self.n_samples, self.hard = noise.shape[0], hard
        scaled = logits / tau
        noise_t = (noise.to(scaled.device) / tau).T.contiguous()  # [K, M]
        wide, wide_noise = scaled.double(), noise_t.double()
        self.a = (wide - wide.amax(-1, keepdim=True)).exp_()                          # [B, K]
        self.c = (wide_noise - wide_noise.amax(0, keepdim=True)).exp_()               # [K, M]
        self.z = self.a @ self.c                                                     # [B, M]
        if hard:
            perturbed = scaled.float().unsqueeze(-1) + noise_t.float()              # [B, K, M]
            self.one_hot = torch.empty_like(perturbed)
            torch.eq(perturbed, perturbed.amax(1, keepdim=True), out=self.one_hot)
            self._tie_share = self.one_hot.sum(1).reciprocal_()                        # [B, M], 1 but for ties

    def soft_dot(self, v: torch.Tensor) -> torch.Tensor:
        """``y_bm · v_b`` ``[B, M]`` for ``v`` ``[B, K]``."""
        return (((self.a * v.double()) @ self.c) / self.z).to(v.dtype)

    def soft_sum(self, u: torch.Tensor) -> torch.Tensor:
        """``Σ_m u_bm y_bm`` ``[..., B, K]`` for ``u`` ``[..., B, M]``."""
        return (((u.double() / self.z) @ self.c.T) * self.a).to(u.dtype)

    def forward_dot(self, v: torch.Tensor) -> torch.Tensor:
        """``x_bm · v_b`` ``[B, M]`` with ``x`` the forward value: ``e_z`` for hard samples, else ``y``."""
        if not self.hard:
            return self.soft_dot(v)
        return (torch.bmm(v.float().unsqueeze(1), self.one_hot).squeeze(1) * self._tie_share).to(v.dtype)

    def forward_sum(self, u: torch.Tensor) -> torch.Tensor:
        """``Σ_m u_bm x_bm`` ``[B, K]``."""
        if not self.hard:
            return self.soft_sum(u)
        shared = (u.float() * self._tie_share).unsqueeze(-1)
        return torch.bmm(self.one_hot, shared).squeeze(-1).to(u.dtype)


class DenseSamples:
    """The same interface over materialised samples: soft ``[B, M, K]`` and hard indices ``[B, M]`` (or None)."""

    def __init__(self, soft: torch.Tensor, index: torch.Tensor | None) -> None:
        self.soft, self.index = soft, index
        self.n_samples, self.hard = soft.shape[1], index is not None

    def soft_dot(self, v: torch.Tensor) -> torch.Tensor:
        return torch.bmm(self.soft, v.to(self.soft).unsqueeze(-1)).squeeze(-1).to(v.dtype)

    def soft_sum(self, u: torch.Tensor) -> torch.Tensor:
        return torch.matmul(u.to(self.soft).unsqueeze(-2), self.soft).squeeze(-2).to(u.dtype)

    def forward_dot(self, v: torch.Tensor) -> torch.Tensor:
        return self.soft_dot(v) if self.index is None else v.gather(1, self.index)

    def forward_sum(self, u: torch.Tensor) -> torch.Tensor:
        if self.index is None:
            return self.soft_sum(u)
        return torch.zeros(u.shape[0], self.soft.shape[-1], dtype=u.dtype, device=u.device).scatter_add_(1, self.index, u)


Samples = FactoredSamples | DenseSamples


def draw(logits: torch.Tensor, temperature: float, n_samples: int, *, hard: bool,
         generator: torch.Generator | None = None, dense: bool = False) -> Samples:
    """``n_samples`` samples of every row of ``logits`` ``[B, K]`` from one noise draw: factored when
    the temperature allows it (and ``dense`` is false), else materialised. Both consume the same
    random numbers, so they are the same samples."""
    tau = check_temperature(temperature)
    if dense or tau < FACTORED_MIN_TEMPERATURE:
        perturbed = perturbed_logits(logits, tau, n_samples, generator=generator)
        # max(dim).indices is the argmax, and on CPU faster than argmax itself
        return DenseSamples(torch.softmax(perturbed, dim=-1), perturbed.max(dim=-1).indices if hard else None)
    noise = gumbel_noise((n_samples, logits.shape[-1]), generator=generator, device=logits.device)
    return FactoredSamples(logits, noise, tau, hard)
