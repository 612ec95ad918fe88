"""Timestamps as gumbeld writes them, in snapshots, dead letters and logs: RFC 3339, UTC, milliseconds."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from gumbel_models.histogram import NO_TIME


def rfc3339(timestamp: float) -> str:
    """``timestamp`` (seconds since the epoch) in RFC 3339, UTC, to the millisecond.

    >>> rfc3339(1000.0)
    '1970-01-01T00:16:40.000Z'
    """
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339_ms(times: np.ndarray) -> list[str | None]:
    """Epoch milliseconds ``[n]`` (int64) in RFC 3339, UTC, to the millisecond; None for ``NO_TIME``.

    >>> rfc3339_ms(np.array([1_000_000, NO_TIME]))
    ['1970-01-01T00:16:40.000Z', None]
    """
    text = np.datetime_as_string(np.asarray(times, dtype=np.int64).astype("datetime64[ms]"), unit="ms", timezone="UTC")
    return [None if t == NO_TIME else s for t, s in zip(np.asarray(times).tolist(), text.tolist())]
