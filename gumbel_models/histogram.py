"""Per-key empirical histograms with optional exponential forgetting, in events or in event time.

Counts ``c`` of shape ``[B, K]`` (float64, so they stay exact far past 2^24 events). Forgetting
in events (``half_life`` h): a batch bringing ``n_b`` new events to key ``b`` first decays that
key's counts::

    c_b ← c_b · 2^(−n_b / h) + new_b          (h = ∞ keeps everything)

so an event's weight halves after ``h`` further events of its key. Forgetting in event time
(``half_life_ms`` h_t: times are integer milliseconds): each key keeps its newest event time ``T_b``
(``newest``, :data:`NO_TIME` before its first), and an event at time ``t`` weighs
``2^(−(T_b − t)/h_t)``, so equal time forgets equally at any rate. The caller hands the new
counts already weighed relative to their own newest time ``N_b``; then::

    T'_b = max(T_b, N_b)
    c_b ← c_b · 2^(−(T'_b − T_b)/h_t) + new_b · 2^(−(T'_b − N_b)/h_t)

which is the same sum however the events were cut into batches (replays agree with live runs).
Without ``half_life_ms`` the newest times are kept all the same: they are the key's event
clock (lateness, ``as_of``). With a :class:`ChangeDetector`, an abrupt change restarts a key's
counts from the window of events that revealed it. ``events`` counts every event ever observed
(never decayed).

>>> import torch
>>> h = EmpiricalHistogram(n_keys=1, n_categories=3)
>>> h.observe(torch.tensor([[2., 1., 1.]]))
>>> h.probabilities()
tensor([[0.5000, 0.2500, 0.2500]])
>>> h = EmpiricalHistogram(n_keys=1, n_categories=2, half_life=10)
>>> h.observe(torch.tensor([[10., 0.]])); h.observe(torch.tensor([[0., 10.]]))
>>> h.probabilities()
tensor([[0.3333, 0.6667]])
>>> h = EmpiricalHistogram(n_keys=1, n_categories=2, half_life_ms=1000.0)   # times in ms
>>> h.observe(torch.tensor([[4., 0.]]), newest=torch.tensor([0]))
>>> h.observe(torch.tensor([[0., 1.]]), newest=torch.tensor([2000]))       # two half-lives later
>>> h.counts.tolist(), h.newest.tolist()
([[1.0, 1.0]], [2000])
"""
from __future__ import annotations

import torch

from .change_detector import ChangeDetector
from .config import check_forgetting

NO_TIME = -(2 ** 62)  # a key's newest event time before its first event (ms): older than any time


class EmpiricalHistogram:
    def __init__(self, n_keys: int, n_categories: int, *, half_life: float | None = None,
                 half_life_ms: float | None = None, change: ChangeDetector | None = None,
                 device: torch.device | str = "cpu") -> None:
        # Exported and built directly too, not only from a checked GANConfig: hence its own check, by the same rule.
        self.half_life, self.half_life_ms = check_forgetting(half_life, half_life_ms)
        self.change = change
        self.counts = torch.zeros(n_keys, n_categories, dtype=torch.float64, device=device)
        self.events = torch.zeros(n_keys, dtype=torch.int64, device=device)
        self.newest = torch.full((n_keys,), NO_TIME, dtype=torch.int64, device=device)

    def observe(self, new_counts: torch.Tensor, rows: torch.Tensor | None = None,
                newest: torch.Tensor | None = None, events: torch.Tensor | None = None) -> None:
        """Add ``new_counts`` ``[B, K]`` (events per key and category) to the histogram, or
        ``[A, K]`` to rows ``rows`` ``[A]`` (distinct) only: the cost follows the keys with events.

        ``newest`` ``[B]``/``[A]`` (int64 ms): the newest event time of each row's new events, which
        the counts are weighed relative to (:data:`NO_TIME`, or None: no time, the key's clock stays);
        ``events`` (int64): how many events the weighed counts are (None: their sum).
        """
        new_counts = new_counts.to(self.counts)
        counts = self.counts if rows is None else self.counts.index_select(0, rows)
        arrived = new_counts.sum(dim=-1) if events is None else events.to(new_counts)
        if newest is not None:
            new_counts = self._advance(counts, new_counts, newest.to(self.newest), rows)
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

    def _advance(self, counts: torch.Tensor, new_counts: torch.Tensor, newest: torch.Tensor,
                 rows: torch.Tensor | None) -> torch.Tensor:
        """Move the rows' clocks to ``newest``; in event time, decay ``counts`` (in place) and return
        ``new_counts`` weighed relative to the moved clocks."""
        before = self.newest.clone() if rows is None else self.newest.index_select(0, rows)
        newest = torch.where(newest == NO_TIME, before, newest)
        moved = torch.maximum(before, newest)
        if rows is None:
            self.newest.copy_(moved)
        else:
            self.newest.index_copy_(0, rows, moved)
        if self.half_life_ms is None:
            return new_counts
        counts.mul_(torch.exp2((before - moved).double() / self.half_life_ms).unsqueeze(-1))
        return new_counts * torch.exp2((newest - moved).double() / self.half_life_ms).unsqueeze(-1)

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
        self.newest = torch.cat([self.newest, self.newest.new_full((n_keys,), NO_TIME)])

    def keep(self, rows: torch.Tensor) -> None:
        if self.change is not None:
            self.change.keep(rows)
        self.counts, self.events, self.newest = self.counts[rows], self.events[rows], self.newest[rows]

    def reset(self, index: torch.Tensor) -> None:
        """Rows ``index`` forget every event (a new key reuses them)."""
        if self.change is not None:
            self.change.counts.index_fill_(0, index, 0.0)
        self.counts.index_fill_(0, index, 0.0)
        self.events.index_fill_(0, index, 0)
        self.newest.index_fill_(0, index, NO_TIME)

    def state_dict(self) -> dict:
        return {"counts": self.counts.clone(), "events": self.events.clone(), "newest": self.newest.clone(),
                "half_life": self.half_life, "half_life_ms": self.half_life_ms,
                "window": None if self.change is None else self.change.counts.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.counts = state["counts"].to(self.counts.device, torch.float64).clone()
        self.events = state["events"].to(self.events.device, torch.int64).clone()
        self.half_life, self.half_life_ms = state["half_life"], state.get("half_life_ms")
        newest = state.get("newest")  # older states kept no event times
        self.newest = (self.events.new_full(self.events.shape, NO_TIME) if newest is None
                       else newest.to(self.events.device, torch.int64).clone())
        if self.change is not None and state.get("window") is not None:
            self.change.counts = state["window"].to(self.counts).clone()
