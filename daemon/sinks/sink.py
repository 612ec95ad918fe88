"""Where snapshots and dead letters go: the interfaces every sink has.

A snapshot sink takes each publication (its messages encoded once, for every sink) and is closed
at shutdown; the dead letters take the bad events of each batch as they are found, and are made
durable (``flush``) before a checkpoint commits the offsets of their events.
"""
from __future__ import annotations

from typing import Protocol

from ..events import BadEvent
from ..snapshots import Publication


class SnapshotSink(Protocol):
    name: str

    async def publish(self, publication: Publication) -> None: ...

    async def aclose(self) -> None: ...


class ReaderGone(Exception):
    """The reader of a stream sink closed its end of the pipe: nothing written there is read any more."""


class DeadLetters(Protocol):
    name: str  # where the letters go, for messages: "Kafka", "file"

    def write(self, bad: list[BadEvent], at: str) -> int:
        """Queue ``bad`` (on the event loop: never waits); returns how many were queued."""

    async def flush(self) -> None:
        """Wait until every queued letter is durable."""

    async def backpressure(self) -> None:
        """Wait for a flush when too many letters are queued."""

    async def aclose(self) -> None: ...
