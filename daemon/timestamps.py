"""Timestamps as gumbeld writes them, in snapshots, dead letters and logs: RFC 3339, UTC, milliseconds."""
from __future__ import annotations

from datetime import datetime, timezone


def rfc3339(timestamp: float) -> str:
    """``timestamp`` (seconds since the epoch) in RFC 3339, UTC, to the millisecond.

    >>> rfc3339(1000.0)
    '1970-01-01T00:16:40.000Z'
    """
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
