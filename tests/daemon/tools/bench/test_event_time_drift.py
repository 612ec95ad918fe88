"""The ``drift_event_time`` scenario of ``gumbeld bench convergence`` at a fifth of its event time
(seed 0; half-lives of 60 s and 600 events): forgetting in event time brings keys at rates 100×
apart back together, forgetting in events does not."""
import torch

from daemon.tools.bench.event_time_drift import RATIO, format_event_time_drift, run_event_time_drift


def test_keys_at_rates_100x_apart_come_back_at_the_same_event_time_only_when_forgetting_in_time():
    row = run_event_time_drift(torch.device("cpu"), seed=0, scale=0.2)
    assert row["met"] and row["ratio_half_life_5m"] <= RATIO, row
    fast, slow = row["seconds_back_half_life_3000_events"]
    assert slow > 4 * fast, row  # in events the fast key forgets 100× sooner
    # the histograms: in time both cross together; in events the fast one at once
    counted_fast, counted_slow = row["counting_seconds_back_half_life_5m"]
    assert abs(counted_fast - counted_slow) <= 0.2 * counted_slow, row
    assert row["counting_seconds_back_half_life_3000_events"][0] * 20 < counted_slow, row
    assert "half_life = \"5m\"" in format_event_time_drift(row)
