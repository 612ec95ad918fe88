"""Settings of the Gumbel-softmax GAN; every default is chosen by a measurement (README, "Learning").

The daemon's configuration tree embeds these fields; this module validates them once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .temperature import TemperatureSchedule


@dataclass(frozen=True)
class GANConfig:
    n_categories: int
    samples_per_step: int = 256          # M generator samples per key and update (keys learned to the settle floor)
    min_samples_per_step: int = 32       # keys with a looser settle tolerance take fewer, down to this (see settling)
    hard: bool = True                    # straight-through one-hot samples (exact equilibrium q = p)
    generator_steps: int = 1             # G updates per training step
    discriminator_steps: int = 1         # D updates per training step
    generator_lr: float = 0.05
    discriminator_lr: float = 0.05
    betas: tuple[float, float] = (0.5, 0.999)
    r1_gamma: float = 0.1                # ½γ‖w‖² on the discriminator weights
    ema_decay: float = 0.995             # Polyak averaging of the generator logits
    reference_categories: int | None = 100  # above this K the step sizes and averaging window scale (see below)
    young_steps: float | None = 30.0     # above it, a young key's step sizes fall to the scaled ones over ~this·f updates
    lr_decay_steps: float | None = None  # lr · 1/(1 + t / lr_decay_steps); None keeps lr constant
    logit_range: float = 30.0            # logits stay within this distance of their row maximum
    expected_fake: bool = True           # hard samples only: D's fake term as Σ_k q_k·ℓ(D(e_k)), exact
    real_batch: int | None = None        # None: exact histogram; n: resample n real events per D step
    temperature: TemperatureSchedule = field(default_factory=TemperatureSchedule)
    half_life: float | None = None       # forgetting of the empirical histogram, in events per key
    change_p_value: float | None = None  # restart a key's histogram when a window differs at this p-value
    change_window: int = 2000            # events per key per change test
    settle_tolerance: float = 0.02       # settled: TV(learned, empirical) ≤ max(floor, tolerance·sqrt(K_seen / n))
    settle_floor: float = 0.002          # the tightest settle tolerance
    max_steps_awake: int = 4000          # a key that cannot settle sleeps after this many steps until new events
    dtype: str = "float32"

    def __post_init__(self) -> None:
        positive_ints = ("n_categories", "samples_per_step", "min_samples_per_step", "generator_steps", "discriminator_steps")
        for name in positive_ints:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.n_categories < 2:
            raise ValueError(f"n_categories must be >= 2, got {self.n_categories}")
        for name in ("generator_lr", "discriminator_lr", "logit_range"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas!r}")
        if self.r1_gamma < 0:
            raise ValueError(f"r1_gamma must be >= 0, got {self.r1_gamma}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.lr_decay_steps is not None and not self.lr_decay_steps > 0:
            raise ValueError(f"lr_decay_steps must be > 0 or None, got {self.lr_decay_steps}")
        if self.real_batch is not None and self.real_batch < 1:
            raise ValueError(f"real_batch must be >= 1 or None, got {self.real_batch}")
        check_half_life(self.half_life)
        check_change_p_value(self.change_p_value)
        for name in ("settle_tolerance", "settle_floor"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.max_steps_awake < 1:
            raise ValueError(f"max_steps_awake must be >= 1, got {self.max_steps_awake}")
        if self.change_window < 1:
            raise ValueError(f"change_window must be >= 1, got {self.change_window}")
        if self.young_steps is not None and not (self.young_steps > 0 and math.isfinite(self.young_steps)):
            raise ValueError(f"young_steps must be a positive number or None, got {self.young_steps!r}")
        if self.reference_categories is not None and self.reference_categories < 2:
            raise ValueError(f"reference_categories must be >= 2 or None, got {self.reference_categories}")
        if self.dtype not in ("float32", "float64", "bfloat16"):
            raise ValueError(f"dtype must be float32, float64 or bfloat16, got {self.dtype!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @property
    def category_factor(self) -> float:
        """``f = max(1, K / reference_categories)`` (1 when scaling is off).

        A step's ``M`` samples spread over ``K`` categories, so each category's evidence per step
        falls as ``1/K`` and its logit's gradient noise grows relative to its signal. Above the
        reference, the learning rates scale by ``1/√f`` and the averaging window
        ``1/(1 − ema_decay)`` by ``f``, which keeps a category's samples per window as at the
        reference. Measured at K = 1,000 (Zipf(1.1), 2 M events, README "Large K"): unscaled, the
        learner ended at TV 0.014 from counting; scaled, 0.0023.
        """
        return 1.0 if self.reference_categories is None else max(1.0, self.n_categories / self.reference_categories)

    @property
    def learning_rates(self) -> tuple[float, float]:
        """``(generator_lr, discriminator_lr)`` as the trainer uses them: scaled by ``1/√f``."""
        scale = self.category_factor ** -0.5
        return self.generator_lr * scale, self.discriminator_lr * scale

    def young_step_scale(self, steps: torch.Tensor) -> torch.Tensor | float:
        """Factor ``[B, 1]`` on the scaled learning rates of rows that took ``steps`` ``[B, 1]`` updates:
        ``max(1, √f / √(1 + t/T))`` with ``T = young_steps``, so a young key steps at the reference's
        sizes and reaches the scaled ones after ``T·(f − 1)`` updates (1.0 at or below the reference,
        or with ``young_steps`` None: nothing changes).

        The scaled rates suit a key near its fit, not one still travelling from the uniform start:
        ``zipf10000`` (K = 10,000) after 2,000 updates was at TV 0.074 from counting without this,
        0.023 with it (0.028 with 100 updates instead of 30); ``zipf1000`` ended as before (0.0023).
        """
        f = self.category_factor
        if f == 1.0 or self.young_steps is None:
            return 1.0
        return (f ** 0.5 * torch.rsqrt(1 + steps / self.young_steps)).clamp_(min=1.0)

    @property
    def average_share(self) -> float:
        """Share ``s`` of a key's updates its averaged logits span until the ``ema_decay`` window
        caps it (:mod:`.generator`): ``min(1/9, f/60)``.

        A key whose events keep arriving lags them by that share. Measured in ``gumbeld bench
        scale`` at 100,000 keys × K = 16, p99 TV(learned, empirical) of keys with ≥ 100 events
        while streaming: 0.055 with ``s = 1/9``, 0.039 with ``1/29``, 0.030 with ``1/60`` and 32
        samples per step at least (README, "Many keys"); ``drift`` back on target in 20,000 events
        (35,000 with ``1/29``), no convergence row worse. Like
        the window, it grows with ``f`` above the reference categories, where noise, not lag,
        limits — up to 1/9: a longer share holds on to the key's path from its uniform start
        (``zipf10000`` after 2,000 updates: TV 0.25 from counting with the whole path, 0.074 with 1/9).
        """
        return min(1 / 9, self.category_factor / 60)

    @property
    def averaging_decay(self) -> float:
        """``ema_decay`` as the trainer uses it: ``1 − (1 − ema_decay)/f`` (0 stays 0: no averaging)."""
        return self.ema_decay if self.ema_decay == 0 else 1.0 - (1.0 - self.ema_decay) / self.category_factor


def check_half_life(half_life: float | None) -> float | None:
    """``half_life`` if it is None or a positive, finite number of events; else ValueError."""
    if half_life is not None and not (half_life > 0 and math.isfinite(half_life)):
        raise ValueError(f"half_life must be a positive number of events or None, got {half_life}")
    return half_life


def check_change_p_value(p_value: float | None) -> float | None:
    """``p_value`` if it is None or lies in (0, 1); else ValueError."""
    if p_value is not None and not 0 < p_value < 1:
        raise ValueError(f"change_p_value must lie in (0, 1) or be None, got {p_value}")
    return p_value


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; anything else as torch understands it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return resolved
