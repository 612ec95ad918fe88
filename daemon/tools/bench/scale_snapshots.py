"""The snapshot file of a ``gumbeld bench scale`` run, read as a subscriber would, incrementally.

>>> round(parse_rfc3339("2024-01-02T03:04:05.250Z") % 60, 3)
5.25
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson

from .scale_probe import MIB, percentile


def parse_rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()



class SnapshotReader:
    """Reads the JSON-lines sink file: the latest snapshot of each key and the distinct publish times.

    Only complete lines are parsed; the offset is remembered, so each call reads what was appended.
    Lines without ``probabilities`` are not snapshots (eviction records drop their key from the view).
    """

    def __init__(self, path: Path, chunk_bytes: int = 64 * MIB) -> None:
        self.path, self.chunk_bytes = path, chunk_bytes
        self.offset = 0
        self.lines = 0
        self.latest: dict[str, tuple[float, int]] = {}  # key -> (divergence.tv, events)
        self.publishes: list[float] = []                 # distinct published_at, in file order
        self._last_published: str | None = None

    def poll(self, until: float | None = None) -> None:
        """Read what was appended; with ``until`` (wall clock), stop before the first snapshot
        published after it, so the view is the subscriber's as of then."""
        try:
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                while True:
                    data = file.read(self.chunk_bytes)
                    end = data.rfind(b"\n") + 1
                    if end == 0:
                        return
                    used = self._parse(data[:end], until)
                    self.offset += used
                    if used < end or len(data) < self.chunk_bytes:
                        return
                    file.seek(self.offset)
        except FileNotFoundError:
            return

    def _parse(self, data: bytes, until: float | None) -> int:
        """Parse whole lines of ``data``; returns the bytes consumed."""
        latest, loads, used = self.latest, orjson.loads, 0
        for line in data.splitlines(keepends=True):
            record = loads(line) if line.strip() else None
            if record is not None and "probabilities" in record:
                published = record.get("published_at")
                if published is not None and published != self._last_published:
                    at = parse_rfc3339(published)
                    if until is not None and at > until:
                        return used
                    self._last_published = published
                    self.publishes.append(at)
                latest[record["key"]] = (float(record["divergence"]["tv"]), int(record["events"]))
            elif record is not None and record.get("evicted"):
                latest.pop(record.get("key"), None)
            used += len(line)
            self.lines += record is not None
        return used

    def tv_percentiles(self, min_events: int = 100) -> tuple[float | None, float | None, int]:
        """p50 and p99 of TV(learned, empirical) over the latest snapshots of keys with ``min_events`` events."""
        tv = [t for t, n in self.latest.values() if n >= min_events]
        return percentile(tv, 50), percentile(tv, 99), len(tv)

    def publish_gaps(self, start: float, end: float) -> list[float]:
        """Seconds between consecutive distinct publish times, both within [start, end] (wall clock)."""
        times = [t for t in self.publishes if start <= t <= end]
        return [b - a for a, b in zip(times, times[1:])]
