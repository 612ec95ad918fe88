"""Temperature schedules τ(t) for the Gumbel-softmax relaxation.

``t`` counts training steps; it lives in the trainer's state, so a restored trainer resumes the
schedule where it stopped. Every schedule is clipped below by ``minimum`` (τ_min > 0).

- ``constant``:     τ(t) = τ0
- ``exponential``:  τ(t) = max(τ_min, τ0 · exp(−r · t))       (Jang et al. 2017 anneal this way)
- ``linear``:       τ(t) = max(τ_min, τ0 − (τ0 − τ_min) · t / T)
- ``cosine``:       τ(t) = τ_min + (τ0 − τ_min) · (1 + cos(π · min(t, T) / T)) / 2

>>> TemperatureSchedule("exponential", initial=1.0, minimum=0.2, rate=1e-3)(0)
1.0
>>> round(TemperatureSchedule("exponential", initial=1.0, minimum=0.2, rate=1e-3)(1000), 4)
0.3679
>>> TemperatureSchedule("cosine", initial=1.0, minimum=0.2, steps=100)(100)
0.2
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .fields import check_fields, checked


@dataclass(frozen=True)
class TemperatureSchedule:
    """τ(t) of the ``schedule``; its fields (:mod:`gumbel_models.fields`) are the daemon's
    ``model.temperature.*`` settings."""
    schedule: Literal["constant", "exponential", "linear", "cosine"] = checked(
        "exponential", "how τ falls from initial to minimum over the training steps")
    initial: float = checked(2.0, "τ0", gt=0)
    minimum: float = checked(1.0, "τ_min, the floor of every schedule", gt=0)
    rate: float = checked(1e-3, "r of τ0·exp(−r·t), per step", ge=0)
    steps: int = checked(5000, "T of the linear and cosine schedules", gt=0)

    def __post_init__(self) -> None:
        check_fields(self)
        check_floor(self.initial, self.minimum)

    def __call__(self, step: int) -> float:
        t0, t_min = self.initial, self.minimum
        if self.schedule == "constant":
            return t0
        if self.schedule == "exponential":
            return max(t_min, t0 * math.exp(-self.rate * step))
        frac = min(step, self.steps) / self.steps
        if self.schedule == "linear":
            return max(t_min, t0 - (t0 - t_min) * frac)
        return t_min + (t0 - t_min) * (1.0 + math.cos(math.pi * frac)) / 2.0

    def __repr__(self) -> str:
        forms = {
            "constant": f"τ = {self.initial}",
            "exponential": f"τ(t) = max({self.minimum}, {self.initial}·exp(−{self.rate}·t))",
            "linear": f"τ(t) = max({self.minimum}, {self.initial} − Δ·t/{self.steps})",
            "cosine": f"τ(t) = cosine {self.initial} → {self.minimum} over {self.steps} steps",
        }
        return forms[self.schedule]


def check_floor(initial: float, minimum: float) -> None:
    """ValueError unless ``minimum <= initial``: every schedule falls from τ0 to τ_min."""
    if minimum > initial:
        raise ValueError(f"temperature minimum {minimum} exceeds initial {initial}")
