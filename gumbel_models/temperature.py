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

from .gumbel_softmax import check_temperature

SCHEDULES = ("constant", "exponential", "linear", "cosine")


@dataclass(frozen=True)
class TemperatureSchedule:
    kind: str = "exponential"
    initial: float = 2.0
    minimum: float = 1.0
    rate: float = 1e-3
    steps: int = 5000

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"temperature schedule must be one of {SCHEDULES}, got {self.kind!r}")
        check_temperature(self.initial)
        check_temperature(self.minimum)
        if self.minimum > self.initial:
            raise ValueError(f"temperature minimum {self.minimum} exceeds initial {self.initial}")
        if self.rate < 0 or self.steps <= 0:
            raise ValueError("temperature rate must be >= 0 and steps > 0")

    def __call__(self, step: int) -> float:
        t0, t_min = self.initial, self.minimum
        if self.kind == "constant":
            return t0
        if self.kind == "exponential":
            return max(t_min, t0 * math.exp(-self.rate * step))
        frac = min(step, self.steps) / self.steps
        if self.kind == "linear":
            return max(t_min, t0 - (t0 - t_min) * frac)
        return t_min + (t0 - t_min) * (1.0 + math.cos(math.pi * frac)) / 2.0

    def __repr__(self) -> str:
        forms = {
            "constant": f"τ = {self.initial}",
            "exponential": f"τ(t) = max({self.minimum}, {self.initial}·exp(−{self.rate}·t))",
            "linear": f"τ(t) = max({self.minimum}, {self.initial} − Δ·t/{self.steps})",
            "cosine": f"τ(t) = cosine {self.initial} → {self.minimum} over {self.steps} steps",
        }
        return forms[self.kind]
