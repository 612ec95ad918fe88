"""Settings of the Gumbel-softmax GAN; every default is chosen by a measurement (README, "Learning").

Each field is declared once, here: its type, its default and, in its metadata, its bounds (``ge``, ``gt``,
``le``, ``lt``) and, for a field the daemon exposes as the setting ``model.<name>``, its description.
:func:`~gumbel_models.fields.check_field` is the one rule that enforces them. ``GANConfig`` runs it on each of its fields, so
the learning core validates itself and needs no settings library; :mod:`daemon.settings` makes its
settings from these fields and runs it on each value as the settings load, so an error names the setting.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from .fields import check_field, check_fields, checked
from .temperature import TemperatureSchedule


@dataclass(frozen=True)
class GANConfig:
    n_categories: int = checked(ge=2)
    samples_per_step: int = checked(256, "Gumbel-softmax samples per key in each generator update, for keys learned to a tolerance of 0.002 or finer", ge=1)
    min_samples_per_step: int = checked(32, "fewest samples per step, for keys whose settle tolerance is loose (few events); M ∝ 1/tolerance² in between", ge=1)
    hard: bool = checked(True, "straight-through one-hot samples (exact equilibrium); false for soft samples")
    generator_steps: int = checked(1, "generator updates per training step", ge=1)
    discriminator_steps: int = checked(1, "discriminator updates per training step", ge=1)
    generator_lr: float = checked(0.05, "Adam learning rate of the generator logits", gt=0)
    discriminator_lr: float = checked(0.05, "Adam learning rate of the discriminator", gt=0)
    betas: tuple[float, float] = checked((0.5, 0.999), "Adam (β1, β2) of both players", ge=0, lt=1)
    r1_gamma: float = checked(0.1, "penalty ½γ·K·Σ_k m_k·w_k² on the discriminator weights, m = (p̂+q)/2 (R1 with each category weighed by how often samples land on it)", ge=0)
    ema_decay: float = checked(0.995, "Polyak averaging of the generator logits; published probabilities use the average", ge=0, lt=1)
    reference_categories: int | None = checked(100, "with more categories than this, learning rates scale by sqrt(reference/K) and the averaging window by K/reference; unset turns it off", ge=2)
    young_steps: float | None = checked(30.0, "above reference_categories, a young key steps at the reference's sizes, falling to the scaled ones over about young_steps·K/reference updates; unset: scaled from the start", gt=0)
    lr_decay_steps: float | None = checked(None, "learning rates scale by 1/(1 + t/lr_decay_steps); unset keeps them constant", gt=0)
    logit_range: float = checked(30.0, gt=0)  # logits stay within this distance of their row maximum
    expected_fake: bool = checked(True, "hard samples: exact expected fake term in the discriminator loss")
    real_batch: int | None = checked(None, ge=1)  # None: exact histogram; n: resample n real events per D step
    temperature: TemperatureSchedule = field(default_factory=TemperatureSchedule, metadata={"description": "τ(t) of the Gumbel-softmax samples"})
    half_life: float | None = checked(None, gt=0)  # forgetting half-life, events per key (the setting model.half_life)
    half_life_ms: float | None = checked(None, gt=0)  # or in event time, ms (model.half_life as a duration)
    change_p_value: float | None = checked(None, "restart a key's histogram when a window of its events differs at this p-value", gt=0, lt=1)
    change_window: int = checked(2000, "events per key in each change test", ge=1)
    settle_tolerance: float = checked(0.02, "a key settles (stops training) when TV(learned, empirical) <= max(settle_floor, settle_tolerance·sqrt(K_seen/n))", gt=0)
    settle_floor: float = checked(0.001, "the smallest settle tolerance, in TV", gt=0)
    max_steps_awake: int = checked(4000, "a key that has not settled after this many of its own steps since it woke sleeps until new events", ge=1)
    dtype: Literal["float32", "float64", "bfloat16"] = checked("float32", "parameter precision")

    def __post_init__(self) -> None:
        check_fields(self)
        check_forgetting(self.half_life, self.half_life_ms)

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
        reference. Unscaled, the logits of a large K's rare categories wander and the learner ends
        several times further from counting (docs/benchmarks.md, "Measurements behind the code").
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

        The scaled rates suit a key near its fit, not one still travelling from the uniform start,
        which gets there sooner at the reference's sizes (docs/benchmarks.md, "Measurements behind the code").
        """
        f = self.category_factor
        if f == 1.0 or self.young_steps is None:
            return 1.0
        return (f ** 0.5 * torch.rsqrt(1 + steps / self.young_steps)).clamp_(min=1.0)

    @property
    def average_share(self) -> float:
        """Share ``s`` of a key's updates its averaged logits span until the ``ema_decay`` window
        caps it (:mod:`.generator`): ``min(1/9, f/60)``.

        A key whose events keep arriving lags them by that share, so a short one keeps streaming
        keys close to their histograms. Like the window, it grows with ``f`` above the reference
        categories, where noise, not lag, limits — up to 1/9: a longer share holds on to the key's
        path from its uniform start (docs/benchmarks.md, "Measurements behind the code").
        """
        return min(1 / 9, self.category_factor / 60)

    @property
    def averaging_decay(self) -> float:
        """``ema_decay`` as the trainer uses it: ``1 − (1 − ema_decay)/f`` (0 stays 0: no averaging)."""
        return self.ema_decay if self.ema_decay == 0 else 1.0 - (1.0 - self.ema_decay) / self.category_factor


def check_forgetting(half_life: float | None, half_life_ms: float | None) -> tuple[float | None, float | None]:
    """``(half_life, half_life_ms)`` if :class:`GANConfig` would take them (at most one set); else ValueError."""
    if half_life is not None and half_life_ms is not None:
        raise ValueError("forget in events (half_life) or in event time (half_life_ms), not both")
    return check_field(GANConfig, "half_life", half_life), check_field(GANConfig, "half_life_ms", half_life_ms)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; anything else as torch understands it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return resolved
