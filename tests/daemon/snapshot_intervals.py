"""The interval fields of a hand-made :class:`~daemon.snapshots.SnapshotBatch`, as a publication
computes them for keys whose histograms are ``learned`` times their ``events``."""
from __future__ import annotations

import numpy as np
import torch

from gumbel_models.intervals import intervals


def interval_fields(learned: np.ndarray, events: np.ndarray, level: float = 0.9) -> dict:
    """``effective_events``, ``lower``, ``upper`` and ``interval_level`` for ``SnapshotBatch(...)``."""
    events = np.asarray(events, dtype=np.float64)
    counts = torch.from_numpy(np.asarray(learned, dtype=np.float64) * events[:, None])
    lower, upper = intervals(counts, torch.ones(counts.shape, dtype=torch.bool), None, level)
    return dict(effective_events=events, lower=lower.numpy(), upper=upper.numpy(), interval_level=level)
