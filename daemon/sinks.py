"""Where snapshots and dead letters go: standard output and JSON-lines files.

Every snapshot sink has one asynchronous interface (``publish`` a :class:`Publication`,
``aclose``); the stream and file sinks write its already encoded lines from a worker thread, so a
slow pipe or disk never stalls the event loop. Evictions appear there as their records
(``{"key", "evicted": true, "reason", "evicted_at"}``).
"""
from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path
from typing import IO, Iterable, Protocol

from .events import BadEvent
from .snapshots import Publication


class SnapshotSink(Protocol):
    name: str

    async def publish(self, publication: Publication) -> None: ...

    async def aclose(self) -> None: ...


class StreamSink:
    """One JSON object per line on a text stream (stdout by default)."""

    name = "stdout"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout

    async def publish(self, publication: Publication) -> None:
        await asyncio.to_thread(self.write_lines, publication.lines)

    def write_lines(self, lines: list[bytes]) -> None:
        self._stream.write(b"".join(line + b"\n" for line in lines).decode())
        self._stream.flush()

    async def aclose(self) -> None:
        await asyncio.to_thread(self._stream.flush)


class JsonLinesSink:
    """Appends one JSON object per line to a file (created with its parent directories)."""

    name = "jsonl"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")

    async def publish(self, publication: Publication) -> None:
        await asyncio.to_thread(self.write_lines, publication.lines)

    def write_lines(self, lines: list[bytes]) -> None:
        self._file.write(b"".join(line + b"\n" for line in lines))
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def dead_letter_record(bad: BadEvent, at: str) -> dict:
    """The JSON form of a bad event: reason, detail, origin, and the raw record, losslessly."""
    record = {"reason": bad.reason, "detail": bad.detail, "origin": bad.origin, "dead_lettered_at": at}
    raw = bad.raw
    if isinstance(raw, (bytes, bytearray)):
        try:
            record["raw"] = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            record["raw_base64"] = base64.b64encode(bytes(raw)).decode("ascii")
    else:
        record["raw"] = raw if _json_safe(raw) else repr(raw)
    return record


def _json_safe(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


class DeadLetterFile:
    """The dead-letter sink: bad events as JSON lines (see :func:`dead_letter_record`).

    Each ``write`` reaches the file at once, so ``flush`` and ``backpressure`` have nothing to wait for.
    """

    def __init__(self, path: Path) -> None:
        self._sink = JsonLinesSink(path)

    def write(self, bad: Iterable[BadEvent], at: str) -> int:
        lines = [json.dumps(dead_letter_record(b, at), separators=(",", ":")).encode() for b in bad]
        self._sink.write_lines(lines)
        return len(lines)

    async def flush(self) -> None:
        pass

    async def backpressure(self) -> None:
        pass

    def close(self) -> None:
        self._sink.close()

    async def aclose(self) -> None:
        self.close()
