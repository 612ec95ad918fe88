"""Population scenarios of ``gumbeld bench convergence``: many keys, most of them small, learned
with a prior pooled from all of them (:mod:`gumbel_models.pooled_prior`).

Each population has 10,000 keys with 3·min(Zipf(1.1), 2000) events each, as in a keyed stream
where a quarter of the keys have fewer than 30 events. Its keys' true distributions are drawn
from one of these shapes:

- ``population_shared``: around one mean, Dirichlet(40·m), K = 16;
- ``population_shared_k100``: the same over K = 100;
- ``population_independent``: unrelated keys, Dirichlet(0.5) each, K = 16;
- ``population_clusters``: three groups around three means, Dirichlet(40·m_c), K = 16: a population
  that one Dirichlet describes only roughly.

All events are counted first; then the prior is fitted to the histograms, set, and the keys are
trained as the service trains them (:class:`~daemon.learning.dense.DenseLearner` rounds) until
every key has settled or the budget is spent. Per bucket of key size the row reports the mean
TV to the truth of the learned distributions, of counting, and of the exact posterior mean under
the fitted prior (what the game should reach); and the coverage of the snapshots' intervals at
level 0.9: the share of (key, category) cells whose true probability they hold, with the prior
and, for comparison, without it (Jeffreys' intervals of the counts).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from gumbel_models import GANConfig, GumbelGAN
from gumbel_models.intervals import intervals
from gumbel_models.pooled_prior import fit_pooled_prior

from ...learning.dense import DenseLearner

KEYS = 10_000
LEVEL = 0.9
COVERAGE = (0.85, 0.95)  # the target range of the intervals' coverage at LEVEL
BUCKETS = ((3, 9), (10, 29), (30, 99), (100, 999), (1000, None))
POPULATIONS = ("population_shared", "population_shared_k100", "population_independent", "population_clusters")


def draw_population(name: str, keys: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(truth [keys, K], counts [keys, K])`` of population ``name``."""
    rng = np.random.default_rng(seed)
    categories = 100 if name.endswith("k100") else 16
    sizes = 3 * np.minimum(rng.zipf(1.1, size=keys), 2000)
    if name.startswith("population_shared"):
        truth = rng.dirichlet(40.0 * rng.dirichlet(np.ones(categories)), size=keys)
    elif name == "population_independent":
        truth = rng.dirichlet(np.full(categories, 0.5), size=keys)
    elif name == "population_clusters":
        means = rng.dirichlet(np.ones(categories), size=3)
        truth = np.stack([rng.dirichlet(40.0 * means[c]) for c in rng.integers(3, size=keys)])
    else:
        raise ValueError(f"unknown population {name!r}; choose from {POPULATIONS}")
    return truth, rng.multinomial(sizes, truth).astype(np.float64)


def _tv(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return 0.5 * np.abs(p - q).sum(axis=-1)


def run_population(name: str, device: torch.device, seed: int = 0, *, keys: int = KEYS,
                   budget_seconds: float = 300.0) -> dict:
    truth, counts = draw_population(name, keys, seed)
    categories = truth.shape[1]
    model = GumbelGAN(GANConfig(n_categories=categories), keys, seed=seed, device=device)
    learner = DenseLearner(model, [str(k) for k in range(categories)], round_seconds=1.0)
    learner.observe(np.arange(keys), counts)
    start = time.perf_counter()
    prior = fit_pooled_prior(torch.from_numpy(counts))
    fitted = time.perf_counter() - start
    model.set_prior(prior.pseudo_counts)
    settled = False
    while time.perf_counter() - start < budget_seconds:
        if learner.train().active == 0:
            settled = True
            break
    seconds = time.perf_counter() - start
    learned = model.probabilities().double().cpu().numpy()
    learned /= learned.sum(axis=1, keepdims=True)
    events = counts.sum(axis=1)
    counting = counts / events[:, None]
    posterior = (counts + prior.pseudo_counts.numpy()) / (events + prior.events)[:, None]
    holds = {"coverage": _holds(truth, model.targets.intervals(LEVEL)),
             "coverage_without_prior": _holds(truth, intervals(model.histogram.counts, model.generator.mask, None, LEVEL))}
    buckets = []
    for low, high in BUCKETS:
        chosen = (events >= low) & (events <= (high if high is not None else np.inf))
        if not chosen.any():
            continue
        tv = {what: float(_tv(values[chosen], truth[chosen]).mean())
              for what, values in (("learned", learned), ("counting", counting), ("posterior", posterior))}
        buckets.append({"events": f"{low}–{high:,}" if high else f"≥ {low:,}", "keys": int(chosen.sum()),
                        "tv_learned_truth": round(tv["learned"], 4), "tv_counting_truth": round(tv["counting"], 4),
                        "tv_posterior_truth": round(tv["posterior"], 4),
                        "learned_vs_counting": round(tv["learned"] / tv["counting"], 3),
                        "learned_vs_posterior": round(tv["learned"] / tv["posterior"], 3),
                        **{what: round(float(inside[chosen].mean()), 3) for what, inside in holds.items()}})
    small = events < 30
    return {"name": name, "keys": keys, "categories": categories, "events": int(events.sum()), "steps": model.t,
            "seconds": round(seconds, 1), "prior_fit_seconds": round(fitted, 2),
            "prior_concentration": round(prior.concentration, 2), "prior_weight": round(prior.events, 2), "settled": settled,
            "tv_learned_truth": round(float(_tv(learned, truth).mean()), 5),
            "tv_counting_truth": round(float(_tv(counting, truth).mean()), 5),
            "truth_ratio": round(float(_tv(learned, truth).mean() / _tv(counting, truth).mean()), 3),
            "tv_learned_counting": round(float(_tv(learned, counting).mean()), 5),
            "coverage": round(float(holds["coverage"].mean()), 3),
            "target": "keys < 30 events within 1.05x the posterior mean's error; no bucket over 1.02x counting; "
                      f"every bucket's interval coverage in {list(COVERAGE)} at level {LEVEL}",
            "met": bool(float(_tv(learned[small], truth[small]).mean()) <= 1.05 * float(_tv(posterior[small], truth[small]).mean())
                        and all(b["learned_vs_counting"] <= 1.02 for b in buckets)
                        and all(COVERAGE[0] <= b["coverage"] <= COVERAGE[1] for b in buckets)),
            "nonfinite": int(model.nonfinite.item()), "buckets": buckets}


def _holds(truth: np.ndarray, bounds: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
    """``[keys]``: the share of each key's categories whose true probability its interval holds."""
    lower, upper = (bound.double().cpu().numpy() for bound in bounds)
    return ((truth >= lower) & (truth <= upper)).mean(axis=1)


def format_buckets(row: dict) -> str:
    columns = ("events", "keys", "tv_learned_truth", "tv_counting_truth", "tv_posterior_truth",
               "learned_vs_counting", "learned_vs_posterior", "coverage", "coverage_without_prior")
    cells = [[str(bucket[c]) for c in columns] for bucket in row["buckets"]]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [f"{row['name']} (α̂ = {row['prior_concentration']}):", "  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    return "\n".join(lines + ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells])
