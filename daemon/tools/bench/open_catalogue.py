"""The ``open_catalogue`` scenario of ``gumbeld bench convergence``: open categories at scale.

10,000 keys over a catalogue of 20,000 categories. Key ``b`` draws from its own subset of
``s_b`` categories (``s_b`` log-uniform in 5..200, chosen from the catalogue with Zipf(1.1)
popularity, so popular categories are shared), Zipf(1.1) within the key. Subsets open up as
the stream goes: at a fraction ``p`` of the stream a key draws from the first
``ceil(s_b·(0.3 + 0.7·p))`` of its categories, so new categories keep appearing to the end and
keys keep moving to wider size classes. Events go the service's way: labels through a
:class:`~daemon.categories.CategoryTable`, counts as sparse cells (:class:`~daemon.learning.ingest.SparseCounts`),
training by :class:`~daemon.learning.learner.Learner` in rounds of ``round_seconds``.

Target: mean over keys of TV(learned, counting) ≤ 0.01; reported with RSS and state bytes per key.
"""
from __future__ import annotations

import resource
import time

import numpy as np
import torch

from gumbel_models import GANConfig

from ...categories import CategoryTable
from ...learning.pending import Pending, SparseCounts
from ...learning.learner import Learner
from ...learning.supports import Supports

KEYS, CATALOGUE, SMALLEST, LARGEST = 10_000, 20_000, 5, 200
EVENTS_PER_KEY, CHUNKS, TARGET = 1_000, 40, 0.01


def _zipf(n: int, s: float = 1.1) -> np.ndarray:
    p = np.arange(1, n + 1, dtype=np.float64) ** -s
    return p / p.sum()


def _state_bytes(learner: Learner) -> int:
    tensors = [t for c in learner.classes.values() for t in c.model.state_dict().values() if isinstance(t, torch.Tensor)]
    supports = sum(c.categories.nbytes + c.size.nbytes + c.owner.nbytes for c in learner.supports.classes.values())
    return sum(t.numel() * t.element_size() for t in tensors) + supports


def run_open_catalogue(device: torch.device, seed: int = 0, scale: float = 1.0, budget_seconds: float = 120.0) -> dict:
    rng = np.random.default_rng(seed)
    keys = max(10, int(KEYS * scale))
    sizes = np.exp(rng.uniform(np.log(SMALLEST), np.log(LARGEST + 1), size=keys)).astype(np.int64).clip(SMALLEST, LARGEST)
    popularity = _zipf(CATALOGUE)
    subsets = np.full((keys, LARGEST), -1, dtype=np.int64)   # [keys, 200] catalogue ids, most frequent first
    for b, s in enumerate(sizes):
        subsets[b, :s] = rng.choice(CATALOGUE, size=s, replace=False, p=popularity)
    within = np.stack([np.pad(_zipf(s), (0, LARGEST - s)) for s in sizes])   # [keys, 200]
    table = CategoryTable(max_categories=CATALOGUE)
    learner = Learner(GANConfig(n_categories=8), table, Supports(smallest=8), seed=seed, device=device, round_seconds=0.1)
    counts, events = SparseCounts(width=CATALOGUE), EVENTS_PER_KEY * keys
    start, rounds, key_steps = time.perf_counter(), 0, 0
    for chunk in range(CHUNKS):
        opened = np.ceil(sizes * (0.3 + 0.7 * (chunk + 1) / CHUNKS)).astype(np.int64)
        p = np.where(np.arange(LARGEST) < opened[:, None], within, 0.0)
        cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
        cdf[np.arange(keys), opened - 1] = 1.0
        rows = rng.integers(keys, size=events // CHUNKS)
        ranks = (rng.random(len(rows))[:, None] >= cdf[rows]).sum(axis=1)
        ids, inverse = np.unique(subsets[rows, ranks], return_inverse=True)
        counts.add(rows, table.indices(f"c{i}" for i in ids.tolist())[inverse])
        stats = learner.train(Pending(keys, counts.take()))
        rounds, key_steps = rounds + 1, key_steps + stats.key_steps
    streamed = time.perf_counter() - start
    while time.perf_counter() - start < budget_seconds:
        stats = learner.train(Pending(keys, None, []))
        rounds, key_steps = rounds + 1, key_steps + stats.key_steps
        if stats.active == 0:
            break
    seconds = time.perf_counter() - start
    tv_counting, tv_truth, tv_counting_truth = _accuracy(learner, subsets, within, sizes, table)
    state = _state_bytes(learner)
    dense = keys * CATALOGUE * 4 * 13  # the fixed-category layout: ~13 float32 cells per key and category
    return {
        "name": "open_catalogue", "keys": keys, "categories": len(table), "events": int(events),
        "steps": learner.steps_taken, "rounds": rounds, "seconds": round(seconds, 3), "seconds_streaming": round(streamed, 3),
        "key_steps": int(key_steps), "keys_steps_per_second": round(key_steps / seconds, 1),
        "tv_learned_counting": round(tv_counting, 5), "tv_learned_truth": round(tv_truth, 5),
        "tv_counting_truth": round(tv_counting_truth, 5), "truth_ratio": round(tv_truth / max(tv_counting_truth, 1e-12), 3),
        "target": f"mean TV(learned, counting) <= {TARGET}", "met": tv_counting <= TARGET,
        "seconds_to_target": None, "nonfinite": learner.nonfinite_total(),
        "rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "state_bytes_per_key": round(state / keys, 1), "dense_state_bytes_per_key": dense // keys,
        "keys_per_width": {w: int((c.owner >= 0).sum()) for w, c in sorted(learner.supports.classes.items())},
        "mean_support": round(float(np.concatenate([c.size[c.owner >= 0] for c in learner.supports.classes.values()]).mean()), 1),
    }


def _accuracy(learner: Learner, subsets, within, sizes, table) -> tuple[float, float, float]:
    """Mean over keys of TV(learned, counting), TV(learned, truth) and TV(counting, truth); the truth
    is the key's distribution once its whole subset is open (early events came from a part of it)."""
    index = {label: i for i, label in enumerate(table.labels)}
    tv_c, tv_l, tv_h = [], [], []
    for width, c in learner.supports.classes.items():
        rows = np.flatnonzero(c.owner >= 0)
        if not len(rows):
            continue
        model = learner.classes[width].model
        t = torch.from_numpy(rows).to(model.device)
        learned, counting = model.probabilities(rows=t).double().cpu().numpy(), model.empirical(t).double().cpu().numpy()
        for j, row in enumerate(rows.tolist()):
            key = int(c.owner[row])
            truth = np.zeros(width)
            column = {int(g): k for k, g in enumerate(c.categories[row, : c.size[row]].tolist())}
            for rank in range(sizes[key]):
                g = index.get(f"c{subsets[key, rank]}")
                if g is not None and g in column:
                    truth[column[g]] += within[key, rank]
            unseen = 1.0 - truth.sum()  # the key's rarest categories, not seen yet: probability 0 in both
            tv_c.append(0.5 * np.abs(learned[j] - counting[j]).sum())
            tv_l.append(0.5 * (np.abs(learned[j] - truth).sum() + unseen))
            tv_h.append(0.5 * (np.abs(counting[j] - truth).sum() + unseen))
    return float(np.mean(tv_c)), float(np.mean(tv_l)), float(np.mean(tv_h))
