"""The convergence scenarios: streams of known distributions and what the learner must reach.

Each scenario streams events (as per-key counts, drawn chunk by chunk) into a :class:`GumbelGAN`,
runs ``steps_per_chunk`` training steps after each chunk, and keeps training once the stream has
ended until ``max_steps`` or ``budget_seconds``. Its counting baseline is the model's own
empirical histogram of the same events (with the same forgetting).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from gumbel_models import GANConfig, TemperatureSchedule

SEED_TRUTH = [0.0, 0.0, 0.1, 0.3, 0.6]


@dataclass(frozen=True)
class Scenario:
    name: str
    truth: np.ndarray                      # [B, K] the stream's distribution per key
    events_per_key: int
    chunk_per_key: int                     # events per key arriving between training rounds
    steps_per_chunk: int
    config: GANConfig
    target: float                          # TV that must be reached and kept
    target_against: str = "truth"          # "truth" or "counting"
    max_steps: int | None = None
    budget_seconds: float = 60.0           # training time allowed after the stream ends
    eval_every: int = 100
    switch_to: np.ndarray | None = None    # [B, K] distribution after the switch
    switch_after: int | None = None        # events per key before the switch
    notes: dict = field(default_factory=dict)

    def truth_at(self, events_seen: int) -> np.ndarray:
        if self.switch_to is not None and events_seen >= self.switch_after:
            return self.switch_to
        return self.truth

    def scaled(self, factor: float) -> "Scenario":
        """A shorter run of the same scenario (smoke tests): fewer events, steps and seconds."""
        def shrink(n):
            return None if n is None else max(1, int(n * factor))
        return replace(self, events_per_key=shrink(self.events_per_key), max_steps=shrink(self.max_steps),
                       switch_after=shrink(self.switch_after), budget_seconds=self.budget_seconds * factor)


def zipf(k: int, s: float) -> np.ndarray:
    p = 1.0 / np.arange(1, k + 1) ** s
    return p / p.sum()


def build_scenarios(seed: int = 0) -> list[Scenario]:
    seed_truth = np.array([SEED_TRUTH])
    default = GANConfig(n_categories=5)
    reference = GANConfig(  # the seed's own setup: τ = 0.001, batch 10, Adam 7e-4, 10 G steps per D step
        n_categories=5, samples_per_step=10, hard=False, expected_fake=False, generator_steps=10,
        generator_lr=7e-4, discriminator_lr=7e-4, betas=(0.9, 0.999), r1_gamma=0.0, ema_decay=0.0,
        temperature=TemperatureSchedule("constant", initial=0.001, minimum=0.001), real_batch=10)
    rng = np.random.default_rng(seed)
    dirichlet = rng.dirichlet(np.full(32, 0.5), size=1000)
    return [
        Scenario("seed", seed_truth, 200_000, 2_000, 10, default, target=0.005,
                 max_steps=8_000, budget_seconds=30.0),
        Scenario("seed_reference", seed_truth, 200_000, 10, 1, reference, target=0.005,
                 max_steps=20_000, budget_seconds=0.0, eval_every=500),
        Scenario("zipf100", zipf(100, 1.1)[None], 1_000_000, 10_000, 10, GANConfig(n_categories=100),
                 target=0.01, target_against="counting", max_steps=40_000, budget_seconds=60.0, eval_every=500),
        Scenario("drift", np.array([[0.6, 0.3, 0.1, 0.0, 0.0]]), 400_000, 1_000, 10,
                 replace(default, half_life=50_000.0, change_p_value=1e-6), target=0.02,
                 switch_to=seed_truth, switch_after=200_000, budget_seconds=0.0, eval_every=50),
        Scenario("keys1000", dirichlet, 20_000, 1_000, 20, GANConfig(n_categories=32, samples_per_step=64), target=0.01,
                 target_against="counting", max_steps=3_000, budget_seconds=120.0, eval_every=100),
        # catalogues: heavy-tailed, 2,000 and 200 events per category on average
        Scenario("zipf1000", zipf(1_000, 1.1)[None], 2_000_000, 20_000, 10, GANConfig(n_categories=1_000),
                 target=0.005, target_against="counting", budget_seconds=60.0, eval_every=500),
        Scenario("zipf10000", zipf(10_000, 1.1)[None], 2_000_000, 20_000, 10, GANConfig(n_categories=10_000),
                 target=0.005, target_against="counting", budget_seconds=60.0, eval_every=500),
    ]
