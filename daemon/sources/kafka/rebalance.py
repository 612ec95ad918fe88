"""Rebalances of the consumer group, as the service hears of them.

aiokafka tells the :class:`~daemon.sources.kafka.source.KafkaSource`, which keeps its offsets and
key owners straight and then tells the service's :class:`PartitionListener`.
"""
from __future__ import annotations

from typing import Protocol

from aiokafka import TopicPartition


class PartitionListener(Protocol):
    """The service's side of a rebalance: what becomes of the state when partitions come and go."""

    restores: bool  # newly assigned partitions are paused until :meth:`restore` says where to resume

    async def prepare(self) -> None:
        """Before the first assignment (e.g. the state topics exist)."""

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """``partitions`` are about to go: what was consumed from them must be saved and committed now."""

    async def lost(self, keys: list[str]) -> None:
        """None of the partitions carrying ``keys`` came back: other instances own them now."""

    async def restore(self, tp: TopicPartition, local_offset: int | None) -> int | None:
        """The keys of newly assigned ``tp``; returns the offset to resume at (None: the group's)."""
