"""The population scenarios of ``gumbeld bench convergence`` at a scale the suite affords (600 keys,
seed 0): the pooled prior takes the small keys well below counting's error, to within 5 % of the
exact posterior mean's, through the game, and its intervals hold the truth about as often as they say."""
import numpy as np
import pytest
import torch

from daemon.tools.bench.population import draw_population, run_population


def test_a_shared_population_is_learned_near_its_posterior_mean_and_far_better_than_counting_for_small_keys():
    row = run_population("population_shared", torch.device("cpu"), seed=0, keys=600, budget_seconds=120)
    assert row["settled"] and row["nonfinite"] == 0, row
    small = [b for b in row["buckets"] if b["events"] in ("3–9", "10–29")]
    assert small and all(b["learned_vs_posterior"] <= 1.05 and b["learned_vs_counting"] < 0.8 for b in small), row
    assert 20 < row["prior_concentration"] < 80, row  # the truth: 40
    # 600 keys × 16 categories per row: ±0.03 covers the sampling noise of the smallest bucket
    assert 0.87 <= row["coverage"] <= 0.93 and all(0.82 <= b["coverage"] <= 0.98 for b in row["buckets"]), row


@pytest.mark.parametrize("name, categories", [("population_shared_k100", 100), ("population_independent", 16),
                                              ("population_clusters", 16)])
def test_each_population_has_its_shape_and_zipf_key_sizes(name, categories):
    truth, counts = draw_population(name, 2000, seed=1)
    assert truth.shape == counts.shape == (2000, categories)
    sizes = counts.sum(axis=1)
    assert sizes.min() >= 3 and 0.15 < np.mean(sizes < 30) < 0.6  # most keys are small


def test_an_unknown_population_is_refused():
    with pytest.raises(ValueError, match="unknown population"):
        draw_population("population_nonesuch", 10, seed=0)
