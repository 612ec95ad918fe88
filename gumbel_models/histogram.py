"""Per-key empirical histograms with optional exponential forgetting.

Counts ``c`` of shape ``[B, K]`` (float64, so they stay exact far past 2^24 events). A batch
bringing ``n_b`` new events to key ``b`` first decays that key's counts::

    c_b ← c_b · 2^(−n_b / h) + new_b          (h = half-life in events; h = ∞ keeps everything)

so an event's weight halves after ``h`` further events of its key, and a drifting stream is
tracked. With a :class:`ChangeDetector`, an abrupt change restarts a key's counts from the
window of events that revealed it. ``events`` counts every event ever observed (never decayed).

>>> import torch
>>> h = EmpiricalHistogram(n_keys=1, n_categories=3)
>>> h.observe(torch.tensor([[2., 1., 1.]]))
>>> h.probabilities()
tensor([[0.5000, 0.2500, 0.2500]])
>>> h = EmpiricalHistogram(n_keys=1, n_categories=2, half_life=10)
>>> h.observe(torch.tensor([[10., 0.]])); h.observe(torch.tensor([[0., 10.]]))
>>> h.probabilities()
tensor([[0.3333, 0.6667]])
"""
from __future__ import annotations

import torch

from .change_detector import ChangeDetector
from .config import check_half_life


class EmpiricalHistogram:
    def __init__(self, n_keys: int, n_categories: int, *, half_life: float | None = None,
                 change: ChangeDetector | None = None, device: torch.device | str = "cpu") -> None:
        # Exported and built directly too, not only from a checked GANConfig: hence its own check, by the same rule.
        self.half_life, self.change = check_half_life(half_life), change
        self.counts = torch.zeros(n_keys, n_categories, dtype=torch.float64, device=device)
        self.events = torch.zeros(n_keys, dtype=torch.int64, device=device)

    def observe(self, new_counts: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Add ``new_counts`` ``[B, K]`` (events per key and category) to the histogram, or
        ``[A, K]`` to rows ``rows`` ``[A]`` (distinct) only: the cost follows the keys with events."""
        new_counts = new_counts.to(self.counts)
        counts = self.counts if rows is None else self.counts.index_select(0, rows)
        arrived = new_counts.sum(dim=-1)
        if self.change is not None:
            changed = self.change.observe(new_counts, counts, rows).unsqueeze(-1)
        if self.half_life is not None:
            counts.mul_(torch.exp2(-arrived / self.half_life).unsqueeze(-1))
        counts.add_(new_counts)
        if self.change is not None:
            counts.copy_(torch.where(changed, self.change.last_window, counts))
        if rows is None:
            self.events.add_(arrived.round().to(torch.int64))
        else:
            self.counts.index_copy_(0, rows, counts)
            self.events.index_add_(0, rows, arrived.round().to(torch.int64))

    def probabilities(self, dtype: torch.dtype = torch.float32, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised counts ``[B, K]`` (or of ``rows``); rows without events are all zero."""
        counts = self.counts if rows is None else self.counts.index_select(0, rows)
        total = counts.sum(dim=-1, keepdim=True)
        return (counts / total.clamp(min=1e-300)).to(dtype)

    def has_data(self) -> torch.Tensor:
        return self.counts.sum(dim=-1) > 0

    def append(self, n_keys: int) -> None:
        if self.change is not None:
            self.change.append(n_keys)
        k = self.counts.shape[1]
        self.counts = torch.cat([self.counts, self.counts.new_zeros(n_keys, k)])
        self.events = torch.cat([self.events, self.events.new_zeros(n_keys)])

    def keep(self, rows: torch.Tensor) -> None:
        if self.change is not None:
            self.change.keep(rows)
        self.counts, self.events = self.counts[rows], self.events[rows]

    def reset(self, index: torch.Tensor) -> None:
        """Rows ``index`` forget every event (a new key reuses them)."""
        if self.change is not None:
            self.change.counts.index_fill_(0, index, 0.0)
        self.counts.index_fill_(0, index, 0.0)
        self.events.index_fill_(0, index, 0)

    def state_dict(self) -> dict:
        return {"counts": self.counts.clone(), "events": self.events.clone(), "half_life": self.half_life,
                "window": None if self.change is None else self.change.counts.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.counts = state["counts"].to(self.counts.device, torch.float64).clone()
        self.events = state["events"].to(self.events.device, torch.int64).clone()
        self.half_life = state["half_life"]
        if self.change is not None and state.get("window") is not None:
            self.change.counts = state["window"].to(self.counts).clone()
