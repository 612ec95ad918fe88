"""Snapshots and dead letters on this machine: standard output and JSON-lines files.

The stream and file sinks write its already encoded lines from a worker thread, so a
slow pipe or disk never stalls the event loop. Evictions appear there as their records
(``{"key", "evicted": true, "reason", "evicted_at"}``). When the reader of the stream sink's pipe
goes away, its ``publish`` raises :class:`~daemon.sinks.sink.ReaderGone`. The dead-letter file is written from a
thread too (:class:`DeadLetterFile`).
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Iterable

from ..events import BadEvent
from ..snapshots import Publication
from .sink import ReaderGone

log = logging.getLogger("gumbeld")


class StreamSink:
    """One JSON object per line on a text stream (stdout by default).

    A write that fails with EPIPE (``gumbeld run | head -n 3``, or ``gumbeld watch -`` quit) points
    the stream's file descriptor at the null device and raises :class:`ReaderGone`; from then on
    everything written to the stream, and its flush at interpreter exit, goes there without error.
    """

    name = "stdout"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout

    async def publish(self, publication: Publication) -> None:
        await self._unless_reader_gone(self.write_lines, publication.lines)

    def write_lines(self, lines: list[bytes]) -> None:
        self._stream.write(b"".join(line + b"\n" for line in lines).decode())
        self._stream.flush()

    async def aclose(self) -> None:
        try:
            await self._unless_reader_gone(self._stream.flush)
        except ReaderGone:  # closing: there is nobody left to tell
            pass

    async def _unless_reader_gone(self, write, *args) -> None:
        """``write(*args)`` in a worker thread; on EPIPE, discard the stream's output and raise :class:`ReaderGone`."""
        try:
            await asyncio.to_thread(write, *args)
        except BrokenPipeError:
            self._discard_output()
            raise ReaderGone(f"{self.name} was closed by its reader") from None

    def _discard_output(self) -> None:
        """Point the stream's file descriptor at the null device (a stream without one is left as it is).

        The lines still buffered in the stream would otherwise fail again at every flush, and at
        interpreter exit Python would report the BrokenPipeError it cannot raise any more.
        """
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):  # an in-memory stream: its buffer is harmless
            return
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)


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

    ``write`` only queues: one thread of its own encodes and appends the letters in the order they
    were written, so a slow disk never stalls the event loop. ``flush`` returns once everything
    written before it is in the file; it is awaited before every checkpoint, so offsets are
    committed only once their dead letters are written. Past ``max_pending`` queued letters,
    ``backpressure`` waits for the thread instead of growing memory. A write that failed (a full
    disk) is raised by the next ``write`` or ``flush``, as it would have been by the write itself.
    """

    name = "file"

    def __init__(self, path: Path, *, max_pending: int = 100_000) -> None:
        self._sink = JsonLinesSink(path)
        self.max_pending = max_pending
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gumbeld-dead-letters")
        self._lock = threading.Lock()
        self._queued = 0  # letters handed to the thread, not yet in the file
        self._failure: BaseException | None = None

    def write(self, bad: Iterable[BadEvent], at: str) -> int:
        self._raise_failure()
        bad = list(bad)
        if bad:
            with self._lock:
                self._queued += len(bad)
            self._thread.submit(self._append, bad, at)
        return len(bad)

    def _append(self, bad: list[BadEvent], at: str) -> None:
        try:
            if self._failure is None:  # after a failure nothing more is written: the order would break
                self._sink.write_lines([json.dumps(dead_letter_record(b, at), separators=(",", ":")).encode()
                                        for b in bad])
        except BaseException as error:
            self._failure = error
        finally:
            with self._lock:
                self._queued -= len(bad)

    async def flush(self) -> None:
        await asyncio.wrap_future(self._thread.submit(lambda: None))  # one thread: runs after every write
        self._raise_failure()

    async def backpressure(self) -> None:
        if self._queued >= self.max_pending:
            await self.flush()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        """Write what is queued, then close the file (a failed write is logged, not raised)."""
        self._thread.shutdown(wait=True)
        self._sink.close()
        if self._failure is not None:
            log.error("dead letters were lost: writing them failed: %s", self._failure)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)
