"""Event time: when each event happened, as the event says, and how late an event may arrive.

Times are integers of milliseconds since the Unix epoch (what Kafka's record timestamps are). An
event's time comes from its Kafka record's timestamp (CreateTime or LogAppendTime, as the topic
is configured), or from a field of its JSON value (``source.kafka.time_field``): RFC 3339 text with
a UTC offset, or a number of epoch milliseconds. The synthetic source stamps its events by its rate.

Each key's watermark is the newest event time it has seen, less ``model.allowed_lateness``. An
event older than its key's watermark is late; unset, no event is late. Within a batch each event
is judged against the events of its key before it, so the outcome does not depend on how the
stream was cut into batches. A key's newest time is learned state (``newest`` of
:mod:`gumbel_models.histogram`): it is checkpointed and handed over with the key, and
:meth:`Watermarks.restore` gives it back.

Forgetting in event time (``model.half_life`` as a duration) weighs each event by
``2^(−(T − t)/h)``, ``T`` its key's newest time (:class:`TimeWeights`).

>>> parse_duration("90s"), parse_duration("1h"), parse_duration(2.5)
(90.0, 3600.0, 2.5)
>>> event_time_ms("1970-01-01T00:00:01.5Z"), event_time_ms(1500)
(1500, 1500)
>>> w = Watermarks(lateness_ms=1000)
>>> w.admit(np.array([0, 0, 0, 1]), np.array([5000, 3500, 4200, 10])).tolist()
[True, False, True, True]
>>> w.newest(np.array([0, 1])).tolist()
[5000, 10]
>>> TimeWeights(half_life_ms=1000, watermarks=w)(np.array([0, 0]), np.array([5000, 3000])).tolist()
[1.0, 0.25]
"""
from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import numpy as np

from gumbel_models.histogram import NO_TIME  # a row's newest time before its first event: no lateness reaches it

EARLIEST_MS, LATEST_MS = -62_135_596_800_000, 253_402_300_799_999  # 0001-01-01 .. 9999-12-31, as RFC 3339 allows
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")  # no unit: seconds


def parse_duration(value: Any) -> float:
    """Seconds of a duration given as a number of seconds (``2.5``, ``"2.5"``) or as text with a unit:
    ``"500ms"``, ``"90s"``, ``"30m"``, ``"1h"``, ``"7d"``; ValueError otherwise (negative, not
    finite, another unit)."""
    if isinstance(value, bool):
        raise ValueError(f"a duration is a number of seconds or text like '90s', '30m', '1h'; got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f"a duration is a number of seconds or text like '90s', '30m', '1h'; got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be finite and not negative, got {value!r}")
    return seconds


class BadTime(ValueError):
    """Why a value is not an event time (the ``bad_time`` reason's detail)."""


def event_time_ms(value: Any) -> int:
    """Epoch milliseconds of an RFC 3339 text (with its UTC offset) or of a number of epoch
    milliseconds; :class:`BadTime` for anything else, or a time outside the years 1–9999."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise BadTime(f"{value[:64]!r} is not an RFC 3339 time") from None
        if parsed.tzinfo is None:
            raise BadTime(f"{value[:64]!r} has no UTC offset (add Z or +hh:mm)")
        seconds = parsed.timestamp()
        ms = round(seconds * 1000)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise BadTime(f"{value!r} is not a time")
        ms = round(value)
    else:
        raise BadTime(f"an event time is RFC 3339 text or epoch milliseconds, got {type(value).__name__}")
    if not EARLIEST_MS <= ms <= LATEST_MS:
        raise BadTime(f"{value!r} is outside the years 1 to 9999")
    return int(ms)


class Watermarks:
    """The newest event time of each row (key), and which events of a batch are late.

    ``lateness_ms`` None: no event is late (the newest times are kept all the same).
    """

    def __init__(self, lateness_ms: int | None) -> None:
        self.lateness_ms = lateness_ms
        self._newest = np.zeros(0, dtype=np.int64)

    def admit(self, rows: np.ndarray, times: np.ndarray) -> np.ndarray:
        """``[n]`` bool: which events (rows and times ``[n]``, in arrival order) are not late; the
        newest time of each row moves to its newest event. Late events do not move it."""
        accepted = np.ones(len(rows), dtype=bool)
        if not len(rows):
            return accepted
        self._grow(int(rows.max()) + 1)
        if self.lateness_ms is None:  # nothing is late: only the newest times move
            np.maximum.at(self._newest, rows, times.astype(np.int64))
            return accepted
        order = np.argsort(rows, kind="stable")             # each row's events, in arrival order
        r, t = rows[order], times[order].astype(np.int64)
        first = np.r_[True, r[1:] != r[:-1]]
        group = np.cumsum(first) - 1
        values, rank = np.unique(t, return_inverse=True)
        # running maximum within each row: ranks offset by the row's group never mix across rows
        running = values[np.maximum.accumulate(group * len(values) + rank) - group * len(values)]
        before = np.where(first, NO_TIME, np.r_[NO_TIME, running[:-1]])
        before = np.maximum(before, self._newest[r])
        accepted[order] = t >= before - self.lateness_ms
        last = np.r_[first[1:], True]
        self._newest[r[last]] = np.maximum(self._newest[r[last]], running[last])
        return accepted

    def newest(self, rows: np.ndarray) -> np.ndarray:
        """``[n]`` int64: each row's newest event time (:data:`NO_TIME` before its first)."""
        self._grow(int(rows.max()) + 1 if len(rows) else 0)
        return self._newest[rows]

    def restore(self, rows: np.ndarray, newest: np.ndarray) -> None:
        """Rows of restored keys, with their newest times (``[n]`` int64, :data:`NO_TIME`: none kept)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows):
            self._grow(int(rows.max()) + 1)
            self._newest[rows] = np.maximum(self._newest[rows], np.asarray(newest, dtype=np.int64))

    def forget(self, rows) -> None:
        """Rows whose key left: the next key in the row starts without a time."""
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[rows < len(self._newest)]
        self._newest[rows] = NO_TIME

    def _grow(self, n_rows: int) -> None:
        if len(self._newest) < n_rows:
            size = max(n_rows, 2 * len(self._newest))
            self._newest = np.concatenate([self._newest, np.full(size - len(self._newest), NO_TIME, np.int64)])


class TimeWeights:
    """Each event's weight when forgetting in event time: ``2^(−(T_row − t)/h)``, with ``T_row`` its
    row's newest time (``watermarks``, which has seen the event) and ``h`` = ``half_life_ms``. At most 1."""

    def __init__(self, half_life_ms: float, watermarks: Watermarks) -> None:
        self.half_life_ms, self.watermarks = half_life_ms, watermarks

    def __call__(self, rows: np.ndarray, times: np.ndarray) -> np.ndarray:
        """``[n]`` float64: the weights of events at ``times`` of ``rows`` (``[n]`` each)."""
        return np.exp2((times - self.watermarks.newest(rows)) / self.half_life_ms)
