"""Abrupt-change detection for per-key histograms: a two-sample G-test per window.

Every ``window`` events of a key, the window's counts ``W`` are compared with the key's
reference counts ``C`` from before the window (a 2×K contingency table)::

    E_1k = n_W·π_k,  E_2k = n_C·π_k,   π = (W + C) / (n_W + n_C)
    G = 2 Σ_k [W_k log(W_k/E_1k) + C_k log(C_k/E_2k)]  ~  χ²(K' − 1) under "no change"

(``K'`` = categories seen in either). A p-value below ``p_value`` means the stream changed:
the reference restarts from the window. Decayed reference counts have an effective sample size
above their mass, so using the mass keeps the test conservative.

>>> import torch
>>> d = ChangeDetector(n_keys=1, n_categories=2, window=100, p_value=1e-6)
>>> reference = torch.tensor([[500., 500.]], dtype=torch.float64)
>>> bool(d.observe(torch.tensor([[50., 50.]], dtype=torch.float64), reference)[0])
False
>>> bool(d.observe(torch.tensor([[100., 0.]], dtype=torch.float64), reference)[0])
True
"""
from __future__ import annotations

import torch

from .goodness_of_fit import xlogx_over


class ChangeDetector:
    def __init__(self, n_keys: int, n_categories: int, *, window: int, p_value: float,
                 device: torch.device | str = "cpu") -> None:
        self.window, self.p_value = window, p_value  # they come from a GANConfig, which checked them
        self.counts = torch.zeros(n_keys, n_categories, dtype=torch.float64, device=device)

    def observe(self, new_counts: torch.Tensor, reference: torch.Tensor,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """Add ``new_counts`` to the windows; ``[B]`` bool: keys whose full window differs from ``reference``.

        ``reference`` holds each key's counts before the current window. The returned keys'
        windows are restarted; the caller restarts their references from :attr:`last_window`.
        With ``rows`` (``[A]``), the counts, reference and result are those rows' only.
        """
        window = self.counts if rows is None else self.counts.index_select(0, rows)
        window.add_(new_counts)
        changed = self._test(window, reference)
        if rows is not None:
            self.counts.index_copy_(0, rows, window)
        return changed

    def _test(self, window: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        n_w = window.sum(-1)
        full = n_w >= self.window
        pooled = window + reference
        n_c = reference.sum(-1)
        pi = pooled / (n_w + n_c).clamp(min=1e-300).unsqueeze(-1)
        g = 2 * (xlogx_over(window, n_w.unsqueeze(-1) * pi) + xlogx_over(reference, n_c.unsqueeze(-1) * pi)).sum(-1)
        dof = ((pooled > 0).sum(-1) - 1).to(torch.float64)
        p = torch.special.gammaincc((dof / 2).clamp(min=1e-12), g / 2)
        changed = full & (n_c > 0) & (dof > 0) & (p < self.p_value)
        self.last_window = window.clone()
        window.masked_fill_(full.unsqueeze(-1), 0.0)
        return changed

    def append(self, n_keys: int) -> None:
        self.counts = torch.cat([self.counts, self.counts.new_zeros(n_keys, self.counts.shape[1])])

    def keep(self, rows: torch.Tensor) -> None:
        self.counts = self.counts[rows]

