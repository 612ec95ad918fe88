"""The generator: per-key logits over K categories, a category mask, and their Polyak average.

``q_b = softmax(θ_b)`` over the unmasked categories of key ``b``; masked categories have logit
``−inf`` and probability exactly 0. Published probabilities come from the exponential moving
average of the logits (Yazıcı et al. 2019, "The Unusual Effectiveness of Averaging in GAN
Training")::

    θ̄_b ← θ̄_b + (1 − α_b)·(θ_b − θ̄_b),   α_b = min(decay, (1 + t_b) / (1 + 1/s + t_b))

where ``t_b`` is the row's update count: until the cap ``decay``, the average spans the last
share ``s`` of the key's updates (a window of ``≈ s·t_b``), so a young key's average is not
dominated by its initial logits, and a key whose events keep arriving lags them by that share.
"""
from __future__ import annotations

import torch

from .row_tensors import RowTensors


class CategoricalGenerator(RowTensors):
    ROW_STATE = ("logits", "average", "mask")

    def __init__(self, n_keys: int, n_categories: int, *, ema_decay: float, average_share: float,
                 logit_range: float, dtype: torch.dtype, device: torch.device) -> None:
        self.ema_decay, self.average_share, self.logit_range = ema_decay, average_share, logit_range
        self.logits = torch.zeros(n_keys, n_categories, dtype=dtype, device=device)
        self.average = torch.zeros_like(self.logits)
        self.mask = torch.ones(n_keys, n_categories, dtype=torch.bool, device=device)

    def masked(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.masked_fill(~self.mask, float("-inf"))

    def probabilities(self, averaged: bool = True, rows: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, K]`` (or ``rows``') float32 probabilities, exactly 0 on masked categories."""
        logits, mask = self.average if averaged else self.logits, self.mask
        if rows is not None:
            logits, mask = logits.index_select(0, rows), mask.index_select(0, rows)
        return torch.softmax(logits.float().masked_fill(~mask, float("-inf")), dim=-1)

    def after_update(self, steps: torch.Tensor, on: torch.Tensor) -> None:
        """Advance the average on rows where ``on`` ``[B, 1]`` is 1; ``steps`` ``[B, 1]`` counts updates."""
        alpha = ((1 + steps) / (1 + 1 / self.average_share + steps)).clamp_(max=self.ema_decay)
        self.average.lerp_(self.logits, ((1 - alpha) * on).to(self.average.dtype))

    def recentre(self) -> None:
        """Centre the logits and floor them at ``max − logit_range`` (softmax is unchanged by the shift).

        Adam's per-coordinate scaling lets rows drift and a zero-probability category's logit fall
        without bound; called every few updates, this keeps both in float range.
        """
        for logits in (self.logits, self.average):
            floor = self.masked(logits).amax(dim=-1, keepdim=True) - self.logit_range
            logits.copy_(torch.maximum(logits, floor))
            mean = (logits * self.mask).sum(-1, keepdim=True) / self.mask.sum(-1, keepdim=True)
            logits.sub_(mean).masked_fill_(~self.mask, 0.0)

    def set_mask(self, rows: torch.Tensor, mask: torch.Tensor) -> None:
        mask = mask.to(device=self.mask.device, dtype=torch.bool)
        if not bool(mask.any(dim=-1).all()):
            raise ValueError("every key needs at least one unmasked category")
        self.mask[rows] = mask
        self.logits[rows] = self.logits[rows].masked_fill(~mask, 0.0)
        self.average[rows] = self.average[rows].masked_fill(~mask, 0.0)

    def append(self, n_keys: int) -> None:
        self.logits = torch.cat([self.logits, self.logits.new_zeros(n_keys, self.logits.shape[1])])
        self.average = torch.cat([self.average, self.average.new_zeros(n_keys, self.average.shape[1])])
        self.mask = torch.cat([self.mask, self.mask.new_ones(n_keys, self.mask.shape[1])])

    def put(self, index: torch.Tensor, part: "CategoricalGenerator") -> None:
        """Write back the rows taken by :meth:`take` (the mask does not change in a step)."""
        self.logits.index_copy_(0, index, part.logits)
        self.average.index_copy_(0, index, part.average)

    def reset(self, index: torch.Tensor) -> None:
        """Rows ``index`` return to the uniform start with every category allowed."""
        self.logits.index_fill_(0, index, 0.0)
        self.average.index_fill_(0, index, 0.0)
        self.mask.index_fill_(0, index, True)
