import asyncio

import numpy as np

from daemon.settings import DriftSettings, SyntheticKey, SyntheticSettings
from daemon.sources.synthetic import SyntheticSource


def _source(**kw) -> SyntheticSource:
    return SyntheticSource(SyntheticSettings(**kw), clock=lambda: 0.0)


def test_batches_follow_each_keys_distribution():
    """200,000 events; tolerance 0.01 per probability (≈ 4 standard errors at this size)."""
    source = _source(keys={"a": SyntheticKey(probabilities=[0.5, 0.5, 0, 0, 0]),
                           "b": SyntheticKey(probabilities=[0, 0, 0.1, 0.3, 0.6])}, batch_size=10_000)
    rng = np.random.default_rng(0)
    counts = np.zeros((2, 5))
    for _ in range(20):
        batch = source.batch(rng)
        np.add.at(counts, (batch.keys, batch.categories), 1)
    freq = counts / counts.sum(axis=1, keepdims=True)
    assert np.abs(freq - [[0.5, 0.5, 0, 0, 0], [0, 0, 0.1, 0.3, 0.6]]).max() < 0.01
    assert counts[0, 2:].sum() == 0 and counts[1, :2].sum() == 0
    assert source.emitted.sum() == 200_000


def test_drift_switches_after_the_configured_events_and_resumes_from_the_position():
    drift = DriftSettings(probabilities=[1, 0, 0, 0, 0], after_events=1000)
    source = _source(keys={"k": SyntheticKey(probabilities=[0, 0, 0, 0, 1], drift=drift)}, batch_size=500)
    rng = np.random.default_rng(0)
    first = [source.batch(rng).categories for _ in range(2)]
    assert all((c == 4).all() for c in first)
    assert (source.batch(rng).categories == 0).all()
    resumed = _source(keys={"k": SyntheticKey(probabilities=[0, 0, 0, 0, 1], drift=drift)}, batch_size=500)
    resumed.restore(source.position())
    assert (resumed.batch(rng).categories == 0).all()


def test_periodic_drift_alternates():
    drift = DriftSettings(probabilities=[1, 0, 0, 0, 0], period_events=100)
    source = _source(keys={"k": SyntheticKey(probabilities=[0, 0, 0, 0, 1], drift=drift)}, batch_size=100)
    rng = np.random.default_rng(0)
    assert [int(source.batch(rng).categories[0]) for _ in range(4)] == [4, 0, 4, 0]


async def test_rate_paces_the_stream_by_deadline():
    now = [0.0]
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    source = SyntheticSource(SyntheticSettings(rate=1000.0, batch_size=100), clock=lambda: now[0], sleep=fake_sleep)
    stream = source.batches()
    for _ in range(10):
        await stream.__anext__()
    assert abs(now[0] - 0.9) < 1e-9  # ten batches of 100 at 1000/s: the tenth is due at 0.9 s
    await stream.aclose()


async def test_unlimited_rate_still_yields_to_the_event_loop():
    source = _source(rate=0.0, batch_size=10)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    stream = source.batches()
    for _ in range(50):
        await stream.__anext__()
    task.cancel()
    assert ticks >= 40
