"""Adam over a batch of independent rows, each with its own step count.

One tensor ``θ`` of shape ``[B, D]`` holds ``B`` independent problems (keys). Rows join and
leave a live model, so the bias correction uses each row's own step ``t_b``::

    m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
    θ ← θ − lr · (m / (1−β1^t_b)) / (√(v / (1−β2^t_b)) + ε)

Only rows with ``on = 1`` move: keys without data, or whose gradient is not finite, keep their
state exactly. Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization".
"""
from __future__ import annotations

import torch

from .row_tensors import RowTensors


class RowAdam(RowTensors):
    ROW_STATE = ("exp_avg", "exp_avg_sq", "steps")

    def __init__(self, param: torch.Tensor, *, lr: float, betas: tuple[float, float] = (0.5, 0.999),
                 eps: float = 1e-8) -> None:
        if lr <= 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or eps <= 0:
            raise ValueError(f"invalid Adam settings lr={lr} betas={betas} eps={eps}")
        self.lr, self.betas, self.eps = lr, betas, eps
        # bfloat16 rounds β2 = 0.999 to 1 (bias correction 0/0) and loses v's small increments:
        # the moments and step counts are kept in float32 at least
        dtype = torch.promote_types(param.dtype, torch.float32)
        self.exp_avg = torch.zeros_like(param, dtype=dtype)
        self.exp_avg_sq = torch.zeros_like(param, dtype=dtype)
        self.steps = torch.zeros(param.shape[0], 1, dtype=dtype, device=param.device)

    def step(self, param: torch.Tensor, grad: torch.Tensor, on: torch.Tensor,
             lr_scale: float | torch.Tensor = 1.0) -> None:
        """Update ``param`` ``[B, D]`` in place on rows where ``on`` ``[B, 1]`` is 1 (else 0), with the
        learning rate times ``lr_scale`` (a number, or ``[B, 1]`` per row).

        ``grad`` must be finite on every row (rows that are off may hold zeros).
        """
        beta1, beta2 = self.betas
        grad, on = grad.to(self.exp_avg.dtype), on.to(self.exp_avg.dtype)
        self.steps.add_(on)
        self.exp_avg.lerp_(grad, on * (1 - beta1))
        self.exp_avg_sq.lerp_(grad.square(), on * (1 - beta2))
        bias1 = 1 - torch.pow(beta1, self.steps.clamp(min=1))
        bias2 = 1 - torch.pow(beta2, self.steps.clamp(min=1))
        denom = (self.exp_avg_sq / bias2).sqrt_().add_(self.eps)
        param.addcdiv_(self.exp_avg * (on * (-self.lr * lr_scale) / bias1), denom)

    def append(self, n_rows: int) -> None:
        self.exp_avg = torch.cat([self.exp_avg, self.exp_avg.new_zeros(n_rows, self.exp_avg.shape[1])])
        self.exp_avg_sq = torch.cat([self.exp_avg_sq, self.exp_avg_sq.new_zeros(n_rows, self.exp_avg_sq.shape[1])])
        self.steps = torch.cat([self.steps, self.steps.new_zeros(n_rows, 1)])

    def reset(self, index: torch.Tensor) -> None:
        """Rows ``index`` start afresh (a new key reuses them)."""
        for name in self.ROW_STATE:
            getattr(self, name).index_fill_(0, index, 0.0)
