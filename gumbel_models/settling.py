"""Which keys still have something to learn: settle when learned ≈ empirical, wake on news.

A key with ``n`` events (histogram mass) over ``K`` categories has counting noise of order
``sqrt(K/n)`` in TV: fitting its histogram much closer than that teaches nothing about the
stream. Its settle tolerance is that noise scaled down, and never tighter than a floor::

    tol_b    = max(floor, tolerance · sqrt(K_b / n_b))        (K_b: the key's unmasked categories)
    excess_b = TV(learned_b, empirical_b) / tol_b

A key is awake while ``excess > 1``. Only keys that received events or were trained since the last
evaluation (``dirty``) are evaluated; the others keep their excess, so a quiet, settled population
costs nothing and a large awake one is not re-evaluated for the part a round did not reach. New events that
move a settled key's histogram by more than its tolerance wake it, because the learned
distribution then lies further than ``tol`` from the new histogram; the tolerance itself tightens
as events accumulate. A key that has not settled ``max_steps_awake`` steps after waking sleeps
until its next events, so no key trains forever.

Awake keys are ordered by the events their learned distribution misattributes beyond their
tolerance, per unit of step cost, largest first::

    priority_b = n_b · max(0, TV_b − tol_b) / M_b

Training takes a key at most down to its tolerance, and a step of ``M_b`` samples costs ``∝ M_b``:
when there is not time for every key, the keys where a step removes the most misattributed events
go first. (Ordered by ``n·TV``, the heaviest keys, woken by every batch and stepping with up to
8× the samples, came first however close to their tolerance, and streaming keys stayed further
from their histograms: docs/benchmarks.md, "Measurements behind the code".)

Samples per step follow the precision a key needs: the generator gradient's noise falls as
``1/sqrt(M)``, and a key's tolerance sets the precision worth paying for, so ``M ∝ 1/tol²``::

    M_b = clamp(M_max · (0.002 / tol_b)², M_min, M_max), rounded down to a power of two

(:data:`FULL_SAMPLES_TOLERANCE`: below 0.002 more samples buy no precision the averaged generator
lacks; a key settling to the 0.001 floor takes more steps of M_max, measured in
docs/benchmarks.md.) A key with a few events (``tol`` ≥ 0.0057) steps with ``M_min`` samples, 8× fewer than one
learned to 0.002: it settles in as many steps as with ``M_max``, at a fraction of the cost. Its
step size grows as its precision may: the learning rates scale by ``sqrt(M_max / M_b)`` (up to 2.8×
with the defaults), which settles such keys in fewer key-steps with the same final accuracy.
``M_min`` is 32, not 16: a key-step of 32 samples costs little more than one of 16, and the quieter
gradient of keys with few events, with a shorter average (:mod:`.generator`), keeps streaming keys
closer to their histograms. (The measurements: docs/benchmarks.md, "Measurements behind the code".)

>>> import torch
>>> s = Settling(2, tolerance=0.02, floor=0.002, max_steps_awake=100, max_samples=256, min_samples=32)
>>> s.mark_dirty(torch.tensor([True, True]))
>>> empirical = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
>>> learned = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
>>> mass, categories = torch.tensor([1e4, 1e4]), torch.tensor([2, 2])
>>> rows, tolerances = s.evaluate(learned, empirical, mass, categories, steps=torch.zeros(2))
>>> rows.tolist(), tolerances.tolist()
([1], [0.002])
>>> s.awake.tolist()
[False, True]
"""
from __future__ import annotations

import torch

from .divergence import total_variation

FULL_SAMPLES_TOLERANCE = 0.002  # keys learned to this tolerance or finer step with max_samples


class Settling:
    def __init__(self, n_keys: int, *, tolerance: float, floor: float, max_steps_awake: int, max_samples: int,
                 min_samples: int, device: torch.device | str = "cpu") -> None:
        self.tolerance, self.floor, self.max_steps_awake = tolerance, floor, max_steps_awake
        self.max_samples, self.min_samples = max_samples, min(min_samples, max_samples)
        self.awake = torch.zeros(n_keys, dtype=torch.bool, device=device)
        self.dirty = torch.zeros(n_keys, dtype=torch.bool, device=device)
        self.woke_at = torch.zeros(n_keys, dtype=torch.float32, device=device)  # the key's step count when it woke
        self.excess = torch.zeros(n_keys, dtype=torch.float64, device=device)   # at the last evaluation
        self.priority = torch.zeros(n_keys, dtype=torch.float64, device=device)  # n·(TV − tol)⁺ / M
        self.tol = torch.ones(n_keys, dtype=torch.float64, device=device)

    def mark_dirty(self, rows: torch.Tensor) -> None:
        """Rows (bool ``[B]``) that received events: evaluate them at the next :meth:`evaluate`."""
        self.dirty |= rows

    def mark_rows(self, index: torch.Tensor) -> None:
        """Rows ``index`` ``[A]`` changed (events, training): evaluate them at the next :meth:`evaluate`."""
        self.dirty.index_fill_(0, index, True)

    def tolerances(self, mass: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        """``tol`` ``[A]`` for histogram masses ``n`` and category counts ``K``."""
        noise = torch.sqrt(categories.double() / mass.double().clamp(min=1e-12))
        return (self.tolerance * noise).clamp(min=self.floor)

    def samples(self, tolerances: torch.Tensor) -> torch.Tensor:
        """``M_b`` ``[A]`` (int64) for tolerances ``[A]``: a power of two in ``[min_samples, max_samples]``
        (``max_samples`` itself at :data:`FULL_SAMPLES_TOLERANCE` and below, whatever it is)."""
        wanted = self.max_samples * (FULL_SAMPLES_TOLERANCE / tolerances) ** 2
        power = torch.exp2(torch.floor(torch.log2(wanted.clamp(min=1.0))))
        return torch.where(tolerances <= FULL_SAMPLES_TOLERANCE, float(self.max_samples),
                           power.clamp(self.min_samples, self.max_samples)).long()

    def step_scale(self, samples: int) -> float:
        """Learning-rate factor of keys stepping with ``samples`` (of at most ``max_samples``)."""
        return (self.max_samples / samples) ** 0.5

    def evaluate(self, learned: torch.Tensor, empirical: torch.Tensor, mass: torch.Tensor,
                 categories: torch.Tensor, steps: torch.Tensor,
                 rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Update who is awake among ``rows`` (``[A]`` indices, the candidates; their values are
        ``[A, K]``/``[A]``); returns every awake row, highest priority first, and its tolerance.
        Reads the count of awake keys back to the host once."""
        rows = torch.arange(self.awake.shape[0], device=self.awake.device) if rows is None else rows
        tolerances = self.tolerances(mass, categories)
        tv = total_variation(learned.double(), empirical.double())
        excess = tv / tolerances
        excess = torch.where(mass > 0, excess, torch.zeros_like(excess))
        was_awake = self.awake.index_select(0, rows)
        woke_at = torch.where(was_awake, self.woke_at.index_select(0, rows), steps.to(self.woke_at))
        awake = (excess > 1) & (steps.to(woke_at) - woke_at < self.max_steps_awake)  # news re-wakes: woke_at = now
        woke_at = torch.where(awake & ~was_awake, steps.to(woke_at), woke_at)
        self.awake.index_copy_(0, rows, awake)
        self.woke_at.index_copy_(0, rows, woke_at)
        self.excess.index_copy_(0, rows, excess)
        reducible = (tv - tolerances).clamp(min=0) * mass.double()
        self.priority.index_copy_(0, rows, reducible / self.samples(tolerances).double())
        self.tol.index_copy_(0, rows, tolerances)
        self.dirty.index_fill_(0, rows, False)
        return self.awake_rows()

    def awake_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Awake rows, highest priority first, and their tolerances (one host read)."""
        awake = torch.nonzero(self.awake).squeeze(-1)  # only the awake rows are sorted
        order = awake.index_select(0, torch.argsort(self.priority.index_select(0, awake), descending=True))
        return order, self.tol.index_select(0, order)

    def candidates(self) -> torch.Tensor:
        """Rows to evaluate: those marked dirty (one host read)."""
        return torch.nonzero(self.dirty).squeeze(-1)

    # -- rows joining and leaving -------------------------------------------------------------
    def append(self, n_keys: int) -> None:
        for name in _STATE:
            tensor = getattr(self, name)
            setattr(self, name, torch.cat([tensor, tensor.new_zeros(n_keys)]))

    def keep(self, rows: torch.Tensor) -> None:
        for name in _STATE:
            setattr(self, name, getattr(self, name)[rows])

    def reset(self, index: torch.Tensor) -> None:
        for name in _STATE:
            getattr(self, name).index_fill_(0, index, 1 if name == "tol" else 0)

    def state_dict(self) -> dict:
        return {name: getattr(self, name).clone() for name in _STATE}

    def load_state_dict(self, state: dict, n_keys: int) -> None:
        """Restore; a state without settling (an older format) starts with every key dirty."""
        for name in _STATE:
            value = state.get(name)
            setattr(self, name, getattr(self, name).new_zeros(n_keys) if value is None
                    else value.to(getattr(self, name)).clone())
        if "excess" not in state:  # an older state: evaluate every key afresh
            self.dirty.fill_(True)
            self.tol.fill_(1.0)


_STATE = ("awake", "dirty", "woke_at", "excess", "priority", "tol")
