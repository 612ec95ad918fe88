"""Histograms that forget in event time: each event weighs 2^(−age/h) whatever the batches were."""
import numpy as np
import pytest
import torch

from gumbel_models.histogram import NO_TIME, EmpiricalHistogram

H_MS = 60_000.0


def _expected(categories: np.ndarray, times: np.ndarray, k: int) -> np.ndarray:
    """Σ over events of 2^(−(T − t)/h) per category, T the newest time: the definition."""
    weights = np.exp2((times - times.max()) / H_MS)
    return np.bincount(categories, weights=weights, minlength=k)


def _observe_in_batches(histogram, categories, times, cuts):
    """Feed the events in the batches between ``cuts``, each weighed relative to its own newest time,
    as ingest hands them over."""
    for start, stop in zip(cuts[:-1], cuts[1:]):
        c, t = categories[start:stop], times[start:stop]
        newest = t.max()
        counts = np.bincount(c, weights=np.exp2((t - newest) / H_MS), minlength=histogram.counts.shape[1])
        histogram.observe(torch.from_numpy(counts)[None], torch.tensor([0]), torch.tensor([int(newest)]),
                          torch.tensor([len(c)]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_event_weighs_two_to_its_age_in_half_lives_however_the_batches_were_cut(seed):
    rng = np.random.default_rng(seed)
    n, k = 2000, 5
    # ten minutes of events, out of order by up to 30 s
    times = np.sort(rng.integers(0, 600_000, n)) + rng.integers(-30_000, 30_000, n) + 1_796_000_000_000
    categories = rng.integers(0, k, n)
    for cuts in ([0, n], np.unique(np.r_[0, rng.integers(1, n, 40), n]), np.arange(0, n + 1, 7).tolist() + [n]):
        histogram = EmpiricalHistogram(1, k, half_life_ms=H_MS)
        _observe_in_batches(histogram, categories, times, np.unique(cuts))
        # tolerance: float64 sums of 2,000 terms, in another order
        np.testing.assert_allclose(histogram.counts[0].numpy(), _expected(categories, times, k), rtol=1e-12)
        assert histogram.newest.tolist() == [int(times.max())] and histogram.events.tolist() == [n]


def test_a_batch_older_than_the_keys_newest_time_weighs_less_and_leaves_the_clock():
    histogram = EmpiricalHistogram(1, 2, half_life_ms=H_MS)
    histogram.observe(torch.tensor([[8.0, 0.0]]), torch.tensor([0]), torch.tensor([120_000]))
    histogram.observe(torch.tensor([[0.0, 8.0]]), torch.tensor([0]), torch.tensor([0]))  # two half-lives older
    assert histogram.counts.tolist() == [[8.0, 2.0]] and histogram.newest.tolist() == [120_000]


def test_counts_without_a_time_are_at_the_keys_newest_time():
    histogram = EmpiricalHistogram(2, 2, half_life_ms=H_MS)
    histogram.observe(torch.tensor([[4.0, 0.0], [1.0, 1.0]]), newest=torch.tensor([60_000, NO_TIME]))
    histogram.observe(torch.tensor([[0.0, 4.0], [1.0, 1.0]]), newest=torch.tensor([NO_TIME, NO_TIME]))
    assert histogram.counts.tolist() == [[4.0, 4.0], [2.0, 2.0]]
    assert histogram.newest.tolist() == [60_000, NO_TIME]


def test_without_forgetting_in_time_the_newest_times_are_kept_and_counts_are_not_weighed():
    histogram = EmpiricalHistogram(1, 2)
    histogram.observe(torch.tensor([[3.0, 1.0]]), newest=torch.tensor([5_000]))
    histogram.observe(torch.tensor([[1.0, 1.0]]), newest=torch.tensor([1_000]))
    assert histogram.counts.tolist() == [[4.0, 2.0]] and histogram.newest.tolist() == [5_000]


def test_the_newest_times_are_state_reset_with_a_row_and_absent_from_older_states():
    histogram = EmpiricalHistogram(2, 2, half_life_ms=H_MS)
    histogram.observe(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), newest=torch.tensor([10, 20]))
    state = histogram.state_dict()
    restored = EmpiricalHistogram(2, 2, half_life_ms=H_MS)
    restored.load_state_dict(state)
    assert restored.newest.tolist() == [10, 20] and restored.half_life_ms == H_MS
    restored.reset(torch.tensor([1]))
    assert restored.newest.tolist() == [10, NO_TIME]
    older = {name: value for name, value in state.items() if name not in ("newest", "half_life_ms")}
    restored.load_state_dict(older)
    assert restored.newest.tolist() == [NO_TIME, NO_TIME] and restored.half_life_ms is None


def test_forgetting_is_in_events_or_in_event_time_not_both():
    with pytest.raises(ValueError, match="not both"):
        EmpiricalHistogram(1, 2, half_life=100.0, half_life_ms=H_MS)
    with pytest.raises(ValueError, match="half_life_ms"):
        EmpiricalHistogram(1, 2, half_life_ms=0.0)
