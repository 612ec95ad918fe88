"""``gumbeld bench convergence``: how fast and how close the GAN learns, next to counting.

Usage: ``gumbeld bench convergence [--scenarios seed,zipf100] [--json PATH] [--device auto] [--scale F]``

With ``--prior pooled`` (or when it is the service's default) a scenario of several keys learns
with the pooled prior as the service does (:mod:`daemon.learning.pooling`), refitted after every
chunk of events; a scenario of one key has no population to pool. The population scenarios
(:mod:`.population`) learn many keys with a pooled prior, and report per bucket of key size;
``drift_event_time`` (:mod:`.event_time_drift`) forgets in event time, two keys 100× apart in rate.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from gumbel_models import GumbelGAN, resolve_device

from ...learning.pooling import PriorClass, PriorRefresh
from ...settings import ModelSettings
from .event_time_drift import format_event_time_drift, run_event_time_drift
from .machine import describe_machine
from .open_catalogue import run_open_catalogue
from .population import KEYS, POPULATIONS, format_buckets, run_population
from .scenarios import Scenario, build_scenarios

COLUMNS = ("name", "events", "steps", "seconds", "steps_per_second", "seconds_to_target", "tv_learned_truth",
           "tv_counting_truth", "truth_ratio", "tv_learned_counting", "target", "met", "nonfinite")


def _tv(p: np.ndarray, q: np.ndarray) -> float:
    return float((0.5 * np.abs(p - q).sum(-1)).mean())


def run_scenario(scenario: Scenario, device: torch.device, seed: int = 0, *, prior: str = "none") -> dict:
    rng = np.random.default_rng(seed)
    model = GumbelGAN(scenario.config, scenario.truth.shape[0], seed=seed, device=device)
    pooling = PriorRefresh(seed=seed, interval=0.0) if prior == "pooled" else None
    fed, trace = 0, []  # trace rows: (seconds, steps, events fed, tv learned-truth, tv learned-counting)
    start = time.perf_counter()
    while True:
        if fed < scenario.events_per_key:
            n = min(scenario.chunk_per_key, scenario.events_per_key - fed)
            model.observe(rng.multinomial(n, scenario.truth_at(fed)).astype(np.float64))
            fed += n
            if pooling is not None:
                pooling.refresh([PriorClass(model)], model.config.n_categories)
            model.step(scenario.steps_per_chunk)
            due = model.t % scenario.eval_every < scenario.steps_per_chunk or fed == scenario.events_per_key
        else:
            elapsed = time.perf_counter() - start
            if (scenario.max_steps is not None and model.t >= scenario.max_steps) or elapsed >= scenario.budget_seconds:
                break
            model.step(scenario.eval_every)
            due = True
        if due:
            learned, counting = model.probabilities().cpu().numpy(), model.empirical().cpu().numpy()
            trace.append((time.perf_counter() - start, model.t, fed,
                          _tv(learned, scenario.truth_at(fed - 1)), _tv(learned, counting)))
    seconds = time.perf_counter() - start
    fitted = None if pooling is None or pooling.prior is None else round(pooling.prior.concentration, 2)
    return {**_report(scenario, model, trace, seconds), "prior_concentration": fitted}


def _settled_at(trace: list[tuple], column: int, target: float) -> int | None:
    """Index of the first trace row from which ``column`` stays ≤ target to the end."""
    settled = None
    for i, row in enumerate(trace):
        if row[column] > target:
            settled = None
        elif settled is None:
            settled = i
    return settled


def _report(scenario: Scenario, model: GumbelGAN, trace: list[tuple], seconds: float) -> dict:
    learned, counting = model.probabilities().cpu().numpy(), model.empirical().cpu().numpy()
    truth = scenario.truth_at(scenario.events_per_key)
    column = 3 if scenario.target_against == "truth" else 4
    settled = _settled_at(trace, column, scenario.target)
    row = {
        "name": scenario.name, "keys": int(truth.shape[0]), "categories": int(truth.shape[1]),
        "events": int(scenario.events_per_key * truth.shape[0]), "steps": model.t,
        "seconds": round(seconds, 3), "steps_per_second": round(model.t / seconds, 1),
        "keys_steps_per_second": round(model.t * truth.shape[0] / seconds, 1),
        "seconds_to_target": None if settled is None else round(trace[settled][0], 3),
        "steps_to_target": None if settled is None else trace[settled][1],
        "tv_learned_truth": round(_tv(learned, truth), 5),
        "tv_counting_truth": round(_tv(counting, truth), 5),
        "truth_ratio": round(_tv(learned, truth) / max(_tv(counting, truth), 1e-12), 3),
        "tv_learned_counting": round(_tv(learned, counting), 5),
        "target": f"TV(learned, {scenario.target_against}) <= {scenario.target}",
        "met": settled is not None, "nonfinite": int(model.nonfinite.item()),
        "max_zero_probability": float(learned[truth == 0].max()) if (truth == 0).any() else None,
    }
    if scenario.switch_after is not None:
        after = [r for r in trace[settled:] if r[2] > scenario.switch_after] if settled is not None else []
        row["events_after_switch_to_target"] = (after[0][2] - scenario.switch_after) if after else None
    return row


def format_table(rows: list[dict]) -> str:
    cells = [[str(row.get(c, "")) for c in COLUMNS] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gumbeld bench convergence", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    default = [s.name for s in build_scenarios()] + ["open_catalogue", "drift_event_time"]
    known = default + list(POPULATIONS)  # the populations take minutes each: asked for by name
    parser.add_argument("--scenarios", default=",".join(default),
                        help=f"comma-separated subset of {known} (default: all but the population_* ones)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink events, steps and time (e.g. 0.05 for a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prior", choices=("none", "pooled"), default=ModelSettings.model_fields["prior"].default,
                        help="model.prior of the scenarios of several keys (default: the service's)")
    args = parser.parse_args(argv)
    wanted = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {known}")
    device = resolve_device(args.device)
    scenarios = [s if args.scale == 1.0 else s.scaled(args.scale) for s in build_scenarios(args.seed) if s.name in wanted]
    rows = []
    for scenario in scenarios:
        rows.append(run_scenario(scenario, device, args.seed, prior=args.prior))
        print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    if "open_catalogue" in wanted:  # sparse, through the open learner: not a dense Scenario
        rows.append(run_open_catalogue(device, args.seed, scale=args.scale, budget_seconds=120.0 * args.scale))
        print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    if "drift_event_time" in wanted:  # two keys in event time, forgetting twice: not a dense Scenario
        rows.append(run_event_time_drift(device, args.seed, scale=args.scale))
        print(format_table(rows[-1:]).splitlines()[-1] + "\n" + format_event_time_drift(rows[-1]), flush=True)
    for name in POPULATIONS:  # many keys with a pooled prior: reported per bucket of key size
        if name in wanted:
            rows.append(run_population(name, device, args.seed, keys=max(500, int(KEYS * args.scale)),
                                       budget_seconds=300.0 * args.scale))
            print(format_table(rows[-1:]).splitlines()[-1] + "\n" + format_buckets(rows[-1]), flush=True)
    print("\n" + format_table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": describe_machine(device), "scenarios": rows}, indent=2) + "\n")
    return 0
