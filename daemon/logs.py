"""Log output of gumbeld: text lines for people, or one JSON object per line for collectors.

Logs go to stderr so that the stdout sink stays machine-readable. Fields given through
``logger.info("…", extra={"key": "web"})`` appear in both formats.
"""
from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

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
