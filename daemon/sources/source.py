"""What the service asks of a source of events (synthetic or Kafka)."""
from __future__ import annotations

from typing import AsyncIterator, Protocol

from ..events import EventBatch
from .kafka.rebalance import PartitionListener


class Source(Protocol):
    name: str
    rebalancing: bool  # partitions are moving: their keys' state is in flight, publish nothing
    restoring: bool    # keys may be on their way here: a key not here may be here soon

    def batches(self) -> AsyncIterator[EventBatch]:
        """The events, batch by batch, until stopped (or, for a finite source, until the end)."""

    def position(self) -> dict:
        """Where the events counted so far end, for a checkpoint."""

    def restore(self, position: dict) -> None:
        """Go on from ``position`` (a checkpoint's)."""

    async def commit(self, offsets: dict) -> None:
        """The checkpoint holding ``position()["offsets"]`` is durable: commit them."""

    def listen(self, listener: PartitionListener) -> None:
        """Tell ``listener`` when the keys it owns move between instances."""

    async def stop(self) -> None:
        """Stop reading and close what is open."""
