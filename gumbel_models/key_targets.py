"""What every key learns, read from its histogram, its categories and the prior (:mod:`.target`).

A :class:`KeyTargets` holds the prior's pseudo-counts, and reads the histogram's counts and the
generator's category mask when asked, for every key or for some rows: the targets the
discriminator sees as real, the effective events, and the posterior intervals (:mod:`.intervals`).
"""
from __future__ import annotations

import torch

from .generator import CategoricalGenerator
from .histogram import EmpiricalHistogram
from .intervals import intervals
from .target import KeyColumns, check_prior, pseudo_counts_of, target


class KeyTargets:
    def __init__(self, histogram: EmpiricalHistogram, generator: CategoricalGenerator, n_categories: int,
                 device: torch.device) -> None:
        self.histogram, self.generator, self.n_categories, self.device = histogram, generator, n_categories, device
        self.prior: torch.Tensor | None = None  # pseudo-counts [K] added to every key's histogram
        self._columns: KeyColumns | None = None  # or [C] of a catalogue, each key's columns naming theirs

    def set_prior(self, pseudo_counts: torch.Tensor | None, columns: KeyColumns | None = None) -> None:
        """``pseudo_counts`` ``[K]`` over every key's own categories (None: no prior); with ``columns``,
        ``[C]`` over a catalogue, ``columns`` saying which of its categories each key's column holds
        (:func:`.target.pseudo_counts_of`, read from the host once per call that needs targets)."""
        size = self.n_categories if columns is None else None
        self.prior = None if pseudo_counts is None else check_prior(pseudo_counts, size).to(self.device)
        self._columns = columns

    def of(self, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The target ``[B, K]`` and effective events ``[B]`` of every key (or of ``rows``), float64."""
        return target(*self._counts_and_mask(rows), self._pseudo_counts(rows))

    def intervals(self, level: float, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Each key's (or ``rows``') posterior interval of every category at ``level``: ``(lower, upper)``
        ``[B, K]``, float32."""
        return intervals(*self._counts_and_mask(rows), self._pseudo_counts(rows), level)

    def _pseudo_counts(self, rows: torch.Tensor | None) -> torch.Tensor | None:
        if self.prior is None:
            return None
        rows = torch.arange(self.histogram.counts.shape[0], device=self.device) if rows is None else rows
        return pseudo_counts_of(self.prior, self._columns, rows)

    def _counts_and_mask(self, rows: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if rows is None:
            return self.histogram.counts, self.generator.mask
        return self.histogram.counts.index_select(0, rows), self.generator.mask.index_select(0, rows)
