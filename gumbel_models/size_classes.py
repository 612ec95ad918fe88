"""Size classes: keys grouped by the width of their support, so state follows what each key has seen.

A key that has seen ``s`` categories lives in the class of width ``W = size_class(s)``, the next
power of two (at least ``smallest``); each class is a dense batched model of ``W`` categories.
Memory is then ``Σ_b W_b ≤ 2·Σ_b s_b`` cells per tensor instead of ``keys × K``. Columns past a
key's support are padding: masked, so their probability is exactly 0.

When a key's support outgrows its width, its row moves to the next class: :func:`widen` pads the
row (as :func:`.rows.read_rows` gives it) to the wider class's columns, and :func:`.rows.write_rows`
puts it there. Padding columns are masked and zero in every other part (histogram, discriminator
weight, Adam moments), so the moved key's probabilities, histogram and next updates on its support
are those it had::

    logits [W] → [W'], mask [W] → [W'] (new columns False), d_params [W+1] → [W'+1] (bias stays last)

>>> size_class(3), size_class(8), size_class(9), size_class(1, smallest=4)
(8, 8, 16, 4)
>>> import torch
>>> from gumbel_models import GANConfig, GumbelGAN
>>> from gumbel_models.rows import read_rows, write_rows
>>> small, wide = GumbelGAN(GANConfig(n_categories=4), 1), GumbelGAN(GANConfig(n_categories=8), 1)
>>> small.observe(torch.tensor([[6., 3., 1., 0.]])); small.step(20)
>>> write_rows(wide, torch.tensor([0]), widen(read_rows(small, torch.tensor([0])), 8))
>>> q, q_wide = small.probabilities()[0], wide.probabilities()[0]
>>> bool(torch.allclose(q_wide[:4], q, atol=1e-6)), q_wide[4:].tolist()
(True, [0.0, 0.0, 0.0, 0.0])
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

_PER_CATEGORY = ("counts", "window", "logits", "average", "mask", "g_exp_avg", "g_exp_avg_sq")
_WITH_BIAS = ("d_params", "d_exp_avg", "d_exp_avg_sq")  # [W+1]: the weights, then the bias


def size_class(support: int, smallest: int = 8) -> int:
    """The width of the class of a key with ``support`` categories: a power of two, at least ``smallest``."""
    if support < 1 or smallest < 1:
        raise ValueError(f"support and smallest must be >= 1, got {support} and {smallest}")
    return max(smallest, 1 << (support - 1).bit_length())


def widen(state: Mapping[str, torch.Tensor], width: int) -> dict[str, torch.Tensor]:
    """Rows ``state`` (``[A, W]`` per category) padded to ``width`` columns; a new mapping."""
    current = state["mask"].shape[-1]
    if width < current:
        raise ValueError(f"cannot narrow rows of {current} categories to {width}")
    extra = width - current
    widened = dict(state)
    for field in _PER_CATEGORY:
        widened[field] = torch.nn.functional.pad(state[field], (0, extra))  # zeros; False for the mask
    for field in _WITH_BIAS:
        value = state[field]
        widened[field] = torch.cat([value[:, :-1], value.new_zeros(value.shape[0], extra), value[:, -1:]], dim=-1)
    return widened
