"""The two players of a batch of keys, and what the discriminator is shown: the rows a step trains.

A training step reads and writes, per key ``b``: the generator (logits ``θ_b``, their average,
the category mask), the discriminator ``(w_b, β_b)``, both players' Adam state, the reference
histogram ``p̂_b`` and whether the key has data. :meth:`Players.take` gathers these for a subset of
keys (``index_select``) and :meth:`Players.put` scatters them back (``index_copy_``), so a step on
the active keys costs what those keys cost, stays one batched step on any device, and leaves the
other rows bit-identical.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .generator import CategoricalGenerator
from .row_adam import RowAdam


@dataclass
class Players:
    generator: CategoricalGenerator
    d_params: torch.Tensor      # [B, K+1] discriminator weights, then bias
    g_opt: RowAdam
    d_opt: RowAdam
    reference: torch.Tensor     # [B, K] normalised histogram the discriminator sees as real
    has_data: torch.Tensor      # [B, 1] 1 for keys with events (only those move), else 0
    g_loss: torch.Tensor        # [B] last generator loss
    d_loss: torch.Tensor        # [B] last discriminator loss

    def take(self, index: torch.Tensor) -> "Players":
        """The rows ``index`` ``[A]``, copied."""
        return Players(self.generator.take(index), self.d_params.index_select(0, index), self.g_opt.take(index),
                       self.d_opt.take(index), self.reference.index_select(0, index),
                       self.has_data.index_select(0, index), self.g_loss.index_select(0, index),
                       self.d_loss.index_select(0, index))

    def put(self, index: torch.Tensor, part: "Players") -> None:
        """Write back rows taken with :meth:`take` and trained since (the reference is read-only)."""
        self.generator.put(index, part.generator)
        self.d_params.index_copy_(0, index, part.d_params)
        self.g_opt.put(index, part.g_opt)
        self.d_opt.put(index, part.d_opt)
        self.g_loss.index_copy_(0, index, part.g_loss)
        self.d_loss.index_copy_(0, index, part.d_loss)
