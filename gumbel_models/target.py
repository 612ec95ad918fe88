"""What a key's generator learns: its histogram, plus a prior's pseudo-counts when there is one.

Counts ``c`` ``[B, K]``, each key's categories ``mask`` ``[B, K]`` and the prior's pseudo-counts
``a`` ``[K]`` (``α m``, :mod:`.pooled_prior`; or ``[B, K]`` when each key's columns are categories of
its own, :func:`pseudo_counts_of`) give the posterior mean of each key's distribution, over its own
categories::

    t_bk = (c_bk + a_k·mask_bk) / (n_b + α_b),    α_b = Σ_k a_k·mask_bk,  n_b = Σ_k c_bk

and its effective events ``n_b + α_b``: the prior weighs as ``α_b`` events. Without a prior the
target is the histogram, ``c_b / n_b``, and the effective events are ``n_b``.

>>> import torch
>>> counts = torch.tensor([[3., 1., 0.], [0., 0., 0.]], dtype=torch.float64)
>>> mask = torch.tensor([[True, True, True], [True, True, False]])
>>> probabilities, effective = target(counts, mask, torch.tensor([1., 1., 2.], dtype=torch.float64))
>>> probabilities.tolist(), effective.tolist()
([[0.5, 0.25, 0.25], [0.5, 0.5, 0.0]], [8.0, 2.0])
>>> target(counts, mask, None)[0][0].tolist()
[0.75, 0.25, 0.0]
"""
from __future__ import annotations

from typing import Protocol

import torch


class KeyColumns(Protocol):
    """Which category of a catalogue each column of each key's row holds (open categories)."""

    def catalogue_indices(self, rows: torch.Tensor) -> torch.Tensor:
        """``[len(rows), K]`` catalogue indices of ``rows``' columns; −1 for a column a key does not use."""
        ...


def target(counts: torch.Tensor, mask: torch.Tensor, prior: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(t [B, K], n_b + α_b [B])`` in the dtype of ``counts``; a row with neither events nor
    prior is all zero. ``prior``: ``[K]`` or ``[B, K]`` pseudo-counts."""
    if prior is not None:
        counts = counts + prior.to(counts) * mask
    total = counts.sum(dim=-1)
    return counts / total.clamp(min=1e-300).unsqueeze(-1), total


def pseudo_counts_of(prior: torch.Tensor, columns: KeyColumns | None, rows: torch.Tensor) -> torch.Tensor:
    """The prior's pseudo-counts as ``rows`` see them: ``prior`` ``[K]`` itself when every key's column
    ``k`` is category ``k``; else ``[len(rows), K]``, column by column from the catalogue's ``prior``
    ``[C]`` (0 for an unused column, and for a category newer than the prior)."""
    if columns is None:
        return prior
    categories = columns.catalogue_indices(rows).to(prior.device)
    known = (categories >= 0) & (categories < prior.shape[0])
    return torch.where(known, prior[categories.clamp(0, prior.shape[0] - 1)], 0.0)


def check_prior(prior: torch.Tensor, n_categories: int | None) -> torch.Tensor:
    """The prior's pseudo-counts ``[K]`` (any length with ``n_categories`` None) as float64, or ValueError."""
    prior = torch.as_tensor(prior, dtype=torch.float64)
    if prior.dim() != 1 or (n_categories is not None and prior.shape != (n_categories,)):
        raise ValueError(f"a prior's pseudo-counts must have shape ({n_categories or 'C'},), not {tuple(prior.shape)}")
    if not bool(torch.isfinite(prior).all()) or bool((prior < 0).any()):
        raise ValueError("a prior's pseudo-counts must be finite and non-negative")
    return prior
