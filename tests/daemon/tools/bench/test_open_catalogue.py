"""The ``open_catalogue`` scenario of ``gumbeld bench convergence`` at a scale the suite affords
(200 keys, 200,000 events, seed 0): it runs the open learner end to end and reports its fields."""
import torch

from daemon.tools.bench.open_catalogue import run_open_catalogue


def test_a_small_open_catalogue_learns_every_key_over_its_own_support():
    row = run_open_catalogue(torch.device("cpu"), seed=0, scale=0.02, budget_seconds=60)
    assert row["keys"] == 200 and row["events"] == 200_000 and row["nonfinite"] == 0
    assert row["categories"] > 1_000, "categories are added as the stream names them"
    assert row["met"] and row["tv_learned_counting"] <= 0.01, row
    # no further from the truth than counting the same events, within 10 %
    assert row["truth_ratio"] <= 1.1, row
    # memory follows the supports: a key holds its few dozen categories, not the 20,000 of the catalogue
    assert row["state_bytes_per_key"] < 0.01 * row["dense_state_bytes_per_key"], row
    assert set(row["keys_per_width"]) <= {8, 16, 32, 64, 128, 256} and sum(row["keys_per_width"].values()) == 200
