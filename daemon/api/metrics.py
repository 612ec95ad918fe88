"""The metrics of ``/v1`` (``gumbeld run`` and ``gumbeld serve``) and of ``gumbeld serve``'s topic.

``gumbeld_api_requests_total{endpoint, status}`` counts every ``/v1`` answer; ``endpoint`` is the
route's template (``/v1/keys/{key}``), so a key never becomes a label. The read server's own state
is read when Prometheus scrapes (:class:`FollowerCollector`): nothing is counted per record twice.
"""
from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("gumbeld_api_requests", "/v1 answers, by route and status",
                                ["endpoint", "status"], registry=registry)

    def answered(self, endpoint: str, status: int) -> None:
        self.requests.labels(endpoint, str(status)).inc()


class FollowerCollector:
    """``gumbeld serve``: keys held, whether it has caught up with the topic, records skipped."""

    def __init__(self, follower) -> None:
        self.follower = follower  # a TopicFollower: caught_up, skipped, published

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("gumbeld_serve_keys", "keys gumbeld serve holds a snapshot of")
        yield GaugeMetricFamily("gumbeld_serve_caught_up", "1 once gumbeld serve has read the topic to the end it had at start")
        yield CounterMetricFamily("gumbeld_serve_records_skipped", "records of the topic that are not snapshots of a key")

    def collect(self) -> Iterator[Metric]:
        keys, caught_up, skipped = self.describe()
        keys.add_metric([], len(self.follower.published))
        caught_up.add_metric([], 1.0 if self.follower.caught_up else 0.0)
        skipped.add_metric([], self.follower.skipped)
        yield from (keys, caught_up, skipped)
