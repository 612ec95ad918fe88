"""``gumbeld bench ablations``: what each learning default is worth, one change at a time.

Runs convergence scenarios (by default ``seed`` and ``zipf100``; ``--scenarios zipf1000`` for a
catalogue) with the defaults, then with one setting changed per row, and reports steps to target
(a machine-independent figure) and final accuracy.

Usage: ``gumbeld bench ablations [--scenarios seed,zipf100] [--variants default,no_ema] [--json PATH]``
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from gumbel_models import TemperatureSchedule, resolve_device

from .convergence import run_scenario
from .machine import describe_machine
from .scenarios import build_scenarios

VARIANTS = {
    "default": {},
    "sampled_fake_term": {"expected_fake": False},
    "tau_annealed_to_0.2": {"temperature": TemperatureSchedule("exponential", initial=1.0, minimum=0.2, rate=1e-3)},
    "soft_samples_tau_to_0.1": {"hard": False, "temperature": TemperatureSchedule("exponential", initial=1.0,
                                                                                   minimum=0.1, rate=1e-3)},
    "no_ema": {"ema_decay": 0.0},
    "no_r1": {"r1_gamma": 0.0},
    "samples_64": {"samples_per_step": 64},
    "lr_0.1": {"generator_lr": 0.1, "discriminator_lr": 0.1},
    "adam_beta1_0.9": {"betas": (0.9, 0.999)},
    "ratio_10_to_1": {"generator_steps": 10},
    "no_category_scaling": {"reference_categories": None},
    "no_young_steps": {"young_steps": None},
}
COLUMNS = ("scenario", "variant", "steps", "steps_to_target", "seconds", "tv_learned_truth", "tv_learned_counting")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gumbeld bench ablations", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="seed,zipf100")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {list(VARIANTS)}")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink events, steps and time")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    known = build_scenarios()
    scenarios = [s for s in known if s.name in args.scenarios.split(",")]
    if not scenarios or set(variants) - set(VARIANTS):
        parser.error(f"choose scenarios among {[s.name for s in known]} and variants among {list(VARIANTS)}")
    device = resolve_device(args.device)
    rows = []
    print("  ".join(COLUMNS))
    for scenario in scenarios:
        scenario = scenario if args.scale == 1.0 else scenario.scaled(args.scale)
        for variant in variants:
            result = run_scenario(replace(scenario, config=replace(scenario.config, **VARIANTS[variant])), device)
            rows.append({"scenario": scenario.name, "variant": variant, **{c: result[c] for c in COLUMNS[2:]}})
            print("  ".join(str(rows[-1][c]) for c in COLUMNS), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": describe_machine(device), "ablations": rows}, indent=2) + "\n")
    return 0
