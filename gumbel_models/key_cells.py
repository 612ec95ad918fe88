"""The (key, category, count) cells of a population's histograms: what a pooled prior is fitted
to (:mod:`.pooled_prior`) and how well the fit is known (:mod:`.prior_precision`).

A key's cells are its own categories (a key's ``support``, or the columns that name a category);
keys without events carry no information and are left out. Sums per key and per category are
``index_add_`` over the cells: O(cells), not keys × catalogue.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class KeyCells:
    """The (key, category, count) cells of the keys with events, over each key's own categories."""

    key: torch.Tensor        # [N] key of each cell, 0..keys−1
    category: torch.Tensor   # [N] its category, 0..n_categories−1
    counts: torch.Tensor     # [N] float64
    totals: torch.Tensor     # [keys] n_b
    n_categories: int

    @classmethod
    def of(cls, counts: torch.Tensor, support: torch.Tensor | None, categories: torch.Tensor | None,
           n_categories: int | None) -> "KeyCells | None":
        if counts.dim() != 2 or counts.shape[-1] < 1:
            raise ValueError(f"counts must be [keys, columns], not {tuple(counts.shape)}")
        if bool((counts < 0).any()):
            raise ValueError("counts must be non-negative")
        counts = counts.to(torch.float64)
        support = torch.ones_like(counts, dtype=torch.bool) if support is None else support.to(torch.bool)
        if categories is None:
            categories = torch.arange(counts.shape[-1]).expand(counts.shape)
            n_categories = counts.shape[-1] if n_categories is None else n_categories
        if support.shape != counts.shape or categories.shape != counts.shape:
            raise ValueError(f"support and categories must have the shape of counts {tuple(counts.shape)}")
        if n_categories is None or n_categories < 2:
            raise ValueError("a prior needs at least 2 categories (give n_categories with categories)")
        support = support & (categories >= 0)
        totals = (counts * support).sum(dim=-1)
        informative = totals > 0
        if int(informative.sum()) < 2:
            return None
        support, totals = support[informative], totals[informative]
        key, column = torch.nonzero(support, as_tuple=True)
        return cls(key, categories[informative][key, column].to(torch.long), counts[informative][key, column],
                   totals, n_categories)

    def per_key(self, values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(self.totals), dtype=values.dtype).index_add_(0, self.key, values)

    def per_category(self, values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(self.n_categories, dtype=values.dtype).index_add_(0, self.category, values)
