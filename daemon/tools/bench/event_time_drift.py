"""The event-time drift scenario of ``gumbeld bench convergence`` (``drift_event_time``).

Two keys, one at 1,000 events per second of event time and one at 10 (100× apart), switch from
``[.6, .3, .1, 0, 0]`` to ``[0, 0, .1, .3, .6]`` (TV 0.9) at the same moment, 30 minutes in, and
stream on for an hour after it. The scenario runs twice:

- ``half_life = "5m"``: forgetting in event time. Both keys should come back to within TV 0.02 of
  the new truth at about the same event time after the switch (target: within 2× of each other);
- ``half_life = 3000`` events, which is 5 minutes at the slow key's rate and 3 seconds at the fast
  one's: forgetting in events, for comparison; the keys come back ~100× apart.

Each second of event time brings each key its events (times spread over the second, categories
drawn from the truth), counted as ingest counts them (:class:`~daemon.event_time.Watermarks`,
:class:`~daemon.event_time.TimeWeights`, :class:`~daemon.learning.pending.SparseCounts`), then
:data:`STEPS_PER_SECOND` training steps of both keys. A key is back at the first second after
which TV(learned, new truth) stays ≤ 0.02 to the end. The row also gives when each key's
histogram (counting) first comes within 0.02, which the learned distribution follows with a lag
of training steps (first, not for good: a histogram of a few thousand events' worth is noisy).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from gumbel_models import GANConfig, GumbelGAN

from ...event_time import TimeWeights, Watermarks
from ...learning.pending import RowEvents, SparseCounts

RATES = (1000, 10)                 # events per second of event time: the fast key, the slow key
BEFORE = np.array([0.6, 0.3, 0.1, 0.0, 0.0])
AFTER = np.array([0.0, 0.0, 0.1, 0.3, 0.6])
SWITCH_S, AFTER_S = 1800, 3600     # the switch, 30 minutes in; an hour after it
HALF_LIFE_S = 300.0                # "5m"
HALF_LIFE_EVENTS = 3000.0          # 5 minutes at the slow key's rate
STEPS_PER_SECOND = 10
TARGET, RATIO = 0.02, 2.0          # TV to the new truth; the keys' times back, within this factor
START_MS = 1_796_637_600_000


def run_event_time_drift(device: torch.device, seed: int = 0, *, scale: float = 1.0) -> dict:
    """The scenario's row: per forgetting, each key's event seconds back to the target. ``scale``
    shrinks the event time and both half-lives with it (a smoke run)."""
    start = time.perf_counter()
    switch, after = max(1, int(SWITCH_S * scale)), max(1, int(AFTER_S * scale))
    in_time = GANConfig(n_categories=5, half_life_ms=HALF_LIFE_S * 1000 * scale)
    in_events = GANConfig(n_categories=5, half_life=HALF_LIFE_EVENTS * scale)
    runs = {"time": _run(in_time, True, switch, after, device, seed),
            "events": _run(in_events, False, switch, after, device, seed)}
    back = {mode: [_back_at(trace) for trace in learned.T] for mode, (learned, _) in runs.items()}
    counting = {mode: [_first_at(trace) for trace in histogram.T] for mode, (_, histogram) in runs.items()}
    ratio = {mode: _ratio(seconds) for mode, seconds in back.items()}
    return {
        "name": "drift_event_time", "keys": len(RATES), "categories": len(AFTER),
        "events": int(sum(RATES) * (switch + after)), "seconds": round(time.perf_counter() - start, 3),
        "target": f"both keys back within TV {TARGET} of the new truth at event times within {RATIO}x "
                  f"of each other (half_life = \"5m\")",
        "met": ratio["time"] is not None and ratio["time"] <= RATIO,
        "rates_per_second": list(RATES),
        "seconds_back_half_life_5m": back["time"], "ratio_half_life_5m": ratio["time"],
        "counting_seconds_back_half_life_5m": counting["time"],
        "seconds_back_half_life_3000_events": back["events"], "ratio_half_life_3000_events": ratio["events"],
        "counting_seconds_back_half_life_3000_events": counting["events"],
        "tv_learned_truth": round(float(runs["time"][0][-1].mean()), 5),
        "tv_counting_truth": round(float(runs["time"][1][-1].mean()), 5),
    }


def format_event_time_drift(row: dict) -> str:
    """Event seconds back after the switch, learned (counting), per key and forgetting."""
    lines = [f"  {'forgetting':<24}  {'fast key: s back':>18}  {'slow key: s back':>18}  {'ratio':>6}"]
    for label, mode in (('half_life = "5m"', "half_life_5m"), ("half_life = 3000 events", "half_life_3000_events")):
        cells = [f"{_show(learned)} ({_show(counted)})" for learned, counted
                 in zip(row[f"seconds_back_{mode}"], row[f"counting_seconds_back_{mode}"])]
        lines.append(f"  {label:<24}  {cells[0]:>18}  {cells[1]:>18}  {_show(row[f'ratio_{mode}']):>6}")
    return "\n".join(lines)


def _run(config: GANConfig, in_time: bool, switch: int, after: int, device: torch.device,
         seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``[after, keys]`` twice: TV to the new truth of each key's learned distribution and of its
    histogram, at the end of each second after the switch."""
    rng = np.random.default_rng(seed)
    model = GumbelGAN(config, len(RATES), seed=seed, device=device)
    marks = Watermarks(None)
    counts = SparseCounts(len(AFTER), weights=TimeWeights(config.half_life_ms, marks) if in_time else None)
    rows = np.repeat(np.arange(len(RATES)), RATES)
    truth = torch.as_tensor(AFTER, dtype=torch.float32, device=device)
    learned, counting = np.zeros((after, len(RATES))), np.zeros((after, len(RATES)))
    for second in range(switch + after):
        times = START_MS + 1000 * second + rng.integers(0, 1000, len(rows))
        categories = rng.choice(len(AFTER), len(rows), p=BEFORE if second < switch else AFTER)
        marks.admit(rows, times)
        counts.add(rows, categories, times)
        cells = counts.take()
        arrived = RowEvents.of_cells(cells, marks.newest)
        dense = np.zeros((len(arrived.rows), len(AFTER)))
        np.add.at(dense, (np.searchsorted(arrived.rows, cells.rows), cells.categories), cells.counts)
        model.observe(dense, arrived.rows, arrived.newest, arrived.events)
        model.step(STEPS_PER_SECOND)
        if second >= switch:
            for trace, probabilities in ((learned, model.probabilities()), (counting, model.empirical())):
                trace[second - switch] = (0.5 * (probabilities - truth).abs().sum(-1)).cpu().numpy()
    return learned, counting


def _back_at(trace: np.ndarray) -> int | None:
    """Seconds after the switch from which ``trace`` stays ≤ :data:`TARGET` (None: never)."""
    above = np.flatnonzero(trace > TARGET)
    if not len(above):
        return 1
    return None if above[-1] == len(trace) - 1 else int(above[-1]) + 2


def _first_at(trace: np.ndarray) -> int | None:
    """Seconds after the switch when ``trace`` first comes within :data:`TARGET` (None: never)."""
    below = np.flatnonzero(trace <= TARGET)
    return int(below[0]) + 1 if len(below) else None


def _ratio(seconds: list[int | None]) -> float | None:
    if any(s is None for s in seconds):
        return None
    return round(max(seconds) / min(seconds), 2)


def _show(value) -> str:
    return "never" if value is None else str(value)
