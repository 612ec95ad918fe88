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

    Each distinct second is formatted once: the times of one publication span few seconds.

    >>> rfc3339_ms(np.array([1_000_000, NO_TIME, 1_000_999]))
    ['1970-01-01T00:16:40.000Z', None, '1970-01-01T00:16:40.999Z']
    """
    times = np.asarray(times, dtype=np.int64)
    timed = times != NO_TIME
    seconds, millis = np.divmod(times[timed], 1000)
    distinct, which = np.unique(seconds, return_inverse=True)
    prefixes = [rfc3339(float(s))[:-4] for s in distinct.tolist()]  # "…T00:16:40.000Z" without "000Z"
    texts = iter([f"{prefixes[i]}{m:03d}Z" for i, m in zip(which.tolist(), millis.tolist())])
    return [next(texts) if t else None for t in timed.tolist()]
