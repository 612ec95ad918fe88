"""The posterior intervals of published keys, computed again only for keys whose counts or prior changed.

Most keys in a publication are there because their learned distribution moved while they train,
not because they had events; their intervals, which depend on counts and prior alone
(:mod:`gumbel_models.intervals`), are as they were. Each row's bounds are kept with the number of
events they were computed at, so a publication computes only the rows that counted events since,
or every row when the model's prior is another one.

>>> import numpy as np, torch
>>> from gumbel_models import GANConfig, GumbelGAN
>>> model = GumbelGAN(GANConfig(n_categories=3), 2, seed=0, device="cpu")
>>> model.observe(np.array([[6.0, 2.0, 0.0], [1.0, 1.0, 1.0]]))
>>> bounds = IntervalBounds(0.9)
>>> lower, upper = bounds.of(model, torch.tensor([0, 1]), np.array([8, 3]))
>>> bounds.computed, [round(x, 3) for x in upper[0].tolist()]
(2, [0.925, 0.538, 0.296])
>>> _ = bounds.of(model, torch.tensor([0, 1]), np.array([8, 3])); bounds.computed  # nothing changed
2
"""
from __future__ import annotations

import numpy as np
import torch

from gumbel_models import GumbelGAN

from ..arrays import grown


class IntervalBounds:
    def __init__(self, level: float) -> None:
        self.level = level
        self._lower = self._upper = np.zeros((0, 0), dtype=np.float32)   # [rows, K] as last computed
        self._events = np.zeros(0, dtype=np.int64)                        # [rows] events then; -1: none
        self._prior: object = None
        self.computed = 0  # rows computed so far

    def of(self, model: GumbelGAN, rows: torch.Tensor, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` ``[len(rows), K]`` of ``rows``, which have ``events`` events now."""
        n, k = model.n_keys, model.config.n_categories
        if self._prior is not model.prior or self._lower.shape[1] != k:  # another prior: every row is stale
            self._prior, self._events = model.prior, np.full(n, -1, dtype=np.int64)
            self._lower, self._upper = np.zeros((n, k), np.float32), np.zeros((n, k), np.float32)
        elif len(self._events) < n:
            self._events = grown(self._events, n, fill=-1)
            self._lower, self._upper = grown(self._lower, n), grown(self._upper, n)
        index = rows.cpu().numpy()
        stale = self._events[index] != events
        if stale.any():
            lower, upper = model.targets.intervals(self.level, rows[torch.from_numpy(stale).to(rows.device)])
            self._lower[index[stale]], self._upper[index[stale]] = lower.cpu().numpy(), upper.cpu().numpy()
            self._events[index[stale]] = events[stale]
            self.computed += int(stale.sum())
        return self._lower[index], self._upper[index]

    def forget(self, rows: np.ndarray) -> None:
        """Rows written from outside (reset, restored): computed afresh next time."""
        rows = np.asarray(rows, dtype=np.int64)
        self._events[rows[rows < len(self._events)]] = -1
