"""Rebalances of the consumer group, as the service hears of them.

aiokafka calls a ``ConsumerRebalanceListener`` of the consumer's; :class:`RebalanceListener`
hands each call to the :class:`~daemon.kafka.source.KafkaSource`, which keeps its offsets and key
owners straight and tells the service's :class:`PartitionListener`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition

if TYPE_CHECKING:
    from .source import KafkaSource


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


class RebalanceListener(ConsumerRebalanceListener):
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked) -> None:
        if revoked:
            await self.source.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        await self.source.assigned(set(assigned))
