"""Metrics of the state topics: bytes written, rows restored, how long restores take.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = StateMetrics(registry)
>>> metrics.written(rows=3, tombstones=1, nbytes=2316)
>>> metrics.restored(rows=40, seconds=0.25, source="changelog")
>>> registry.get_sample_value("gumbeld_state_bytes_written_total"), registry.get_sample_value(
...     "gumbeld_state_rows_restored_total", {"source": "changelog"})
(2316.0, 40.0)
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

RESTORE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class StateMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.bytes_written = Counter("gumbeld_state_bytes_written", "Bytes of key rows written to the state topics; "
                                     "rate() gives bytes per second", registry=registry)
        self.rows_written = Counter("gumbeld_state_rows_written", "Key rows written to the state topics, by kind",
                                    ["kind"], registry=registry)
        self.rows_restored = Counter("gumbeld_state_rows_restored", "Key rows restored on partition assignment, "
                                     "from the state topic (changelog) or the local checkpoint", ["source"],
                                     registry=registry)
        self.restore_seconds = Histogram("gumbeld_state_restore_duration_seconds", "Seconds from a partition's "
                                         "assignment to its consumption resuming", buckets=RESTORE_BUCKETS,
                                         registry=registry)

    def written(self, *, rows: int, tombstones: int, nbytes: int) -> None:
        self.rows_written.labels("row").inc(rows)
        self.rows_written.labels("tombstone").inc(tombstones)
        self.bytes_written.inc(nbytes)

    def restored(self, *, rows: int, seconds: float, source: str) -> None:
        self.rows_restored.labels(source).inc(rows)
        self.restore_seconds.observe(seconds)
