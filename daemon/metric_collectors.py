"""The metrics computed when Prometheus scrapes, from the latest values :class:`~daemon.metrics.Metrics` left.

``gumbeld_checkpoint_age_seconds`` is the time since the last checkpoint, so it must be computed
at scrape time; the per-key ``gumbeld_probability`` and ``gumbeld_divergence`` are replaced as a
whole at each publish, which is cheaper as one collector over a dict than as gauge children.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

OTHER_KEY = "__other__"


@dataclass(frozen=True)
class KeyValues:
    categories: tuple[str, ...]
    learned: tuple[float, ...]
    empirical: tuple[float, ...]
    divergence: tuple[tuple[str, float], ...]


class CheckpointAgeCollector:
    """``gumbeld_checkpoint_age_seconds``, computed at scrape time; no sample before a checkpoint."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.saved_at: float | None = None

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("gumbeld_checkpoint_age_seconds",
                                "Seconds since the checkpoint last held the current state (saved, or found "
                                "unchanged); absent before the first.")

    def collect(self) -> Iterator[Metric]:
        family = next(self.describe())
        saved_at = self.saved_at
        if saved_at is not None:
            family.add_metric([], max(0.0, self.clock() - saved_at))
        yield family


class KeyGaugesCollector:
    """``gumbeld_probability`` and ``gumbeld_divergence``, from the latest values of each key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.labelled: dict[str, KeyValues] = {}
        self.other_divergence: dict[str, float] = {}  # per measure, the worst among keys past the cap

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "gumbeld_probability", "Probability of a category: kind=learned by the generator, "
            "kind=empirical from the events.", labels=["key", "category", "kind"])
        yield GaugeMetricFamily(
            "gumbeld_divergence", "Divergence between the empirical and the learned distribution "
            "(tv: total variation; kl: KL(empirical||learned) and js: Jensen-Shannon, in nats).",
            labels=["key", "measure"])

    def collect(self) -> Iterator[Metric]:
        probability, divergence = self.describe()
        with self.lock:
            labelled = list(self.labelled.items())
            others = dict(self.other_divergence)
        for key, values in labelled:
            for category, learned, empirical in zip(values.categories, values.learned, values.empirical):
                probability.add_metric([key, category, "learned"], learned)
                probability.add_metric([key, category, "empirical"], empirical)
            for measure, value in values.divergence:
                divergence.add_metric([key, measure], value)
        for measure in sorted(others):
            divergence.add_metric([OTHER_KEY, measure], others[measure])
        yield probability
        yield divergence
