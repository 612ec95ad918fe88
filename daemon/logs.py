"""Log output of gumbeld: text lines for people, or one JSON object per line for collectors.

Logs go to stderr so that the stdout sink stays machine-readable. Fields given through
``logger.info("…", extra={"key": "web"})`` appear in both formats.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Callable, Hashable, TextIO

from daemon.settings import LogSettings
from daemon.timestamps import rfc3339

_HANDLER_NAME = "gumbeld"
# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def configure_logging(settings: LogSettings, stream: TextIO | None = None) -> logging.Handler:
    """Route the root logger to ``stream`` (stderr by default) in the configured format and level.

    Calling it again replaces the handler it installed before, so it is safe to call repeatedly.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
        handler.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.level)
    return handler


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """``2024-05-01T12:00:00.123Z INFO daemon.service: started key=web``"""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{rfc3339(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        extras = " ".join(f"{k}={v}" for k, v in _extra_fields(record).items())
        if extras:
            line += " " + extras
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, any extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extra_fields(record).items():
            payload.setdefault(key, value)  # an extra field never hides a standard one
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class Throttle:
    """One log line per ``interval`` seconds for each cause; the lines held back are counted.

    A failure that repeats every second would otherwise bury the log; the first of a cause is
    always let through, and the next one says how many were held back meanwhile.

    >>> now = [0.0]
    >>> throttle = Throttle(60.0, clock=lambda: now[0])
    >>> throttle.allow("fetch"), throttle.allow("fetch"), throttle.allow("commit")
    (0, None, 0)
    >>> now[0] = 60.0
    >>> throttle.allow("fetch")
    1
    """

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self._clock = interval, clock
        self._logged_at: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}

    def allow(self, cause: Hashable) -> int | None:
        """``None`` to hold this line back; else how many lines of ``cause`` were held back before it."""
        now = self._clock()
        if now - self._logged_at.get(cause, float("-inf")) < self.interval:
            self._held[cause] = self._held.get(cause, 0) + 1
            return None
        self._logged_at[cause] = now
        return self._held.pop(cause, 0)

    @staticmethod
    def since(held: int) -> str:
        """`` (N more since the last report)`` when lines were held back, else nothing."""
        return f" ({held} more since the last report)" if held else ""
