"""How far the Kafka source has read: offsets, the partitions each key came from, replays to skip.

A checkpoint saves :meth:`SourceProgress.state` beside the model that counted those events, so
the two always agree; the offsets are committed to the group only once that checkpoint is durable.
"""
from __future__ import annotations

from aiokafka import TopicPartition

from .key_owners import KeyOwners, partition_from_name, partition_name
from .replay import ReplayFilter


class SourceProgress:
    def __init__(self, default_key: str | None) -> None:
        self.default_key = default_key                     # the key of records without one
        self.offsets: dict[TopicPartition, int] = {}      # next offset to consume, per partition
        self.timestamps: dict[TopicPartition, float] = {}  # of the last record read, per partition (seconds)
        self.owners = KeyOwners()                          # key → partitions it was seen on
        self.replay = ReplayFilter()                       # replayed events that restored rows count

    def state(self) -> dict:
        return {"offsets": {partition_name(tp): offset for tp, offset in self.offsets.items()},
                "owners": self.owners.state()}

    def load(self, state: dict) -> None:
        self.offsets = {partition_from_name(n): int(o) for n, o in state.get("offsets", {}).items()}
        self.owners.load(state.get("owners", {}))

    def unreplayed(self, polled: dict) -> list:
        """The records of ``polled`` whose events restored rows do not count yet (see :mod:`daemon.sources.kafka.replay`)."""
        if not self.replay:
            return [record for records in polled.values() for record in records]
        kept = []
        for tp, records in polled.items():
            kept += [r for r in records if self.replay.keep(tp, r.key.decode("utf-8", "replace")
                                                            if isinstance(r.key, bytes) else "", r.offset)]
            self.replay.passed(tp, records[-1].offset + 1)
        return kept

    def advance(self, polled: dict) -> None:
        """Past the records of ``polled``; their keys are seen on their partitions."""
        for tp, records in polled.items():
            self.offsets[tp] = records[-1].offset + 1
            self.timestamps[tp] = records[-1].timestamp / 1000.0
            for key in {r.key for r in records}:
                name = _key_text(key) if isinstance(key, bytes) else self.default_key
                if name is not None:  # a key that is not UTF-8 was dead-lettered: no key of ours
                    self.owners.saw(name, tp)

    def keep(self, partitions: set[TopicPartition]) -> tuple[set[TopicPartition], list[str]]:
        """Forget every partition but ``partitions``; returns the partitions that went and the keys
        left with no partition."""
        lost = (set(self.offsets) | self.owners.partitions()) - partitions
        gone = self.owners.keep(partitions)
        for tp in lost:
            self.offsets.pop(tp, None)
            self.timestamps.pop(tp, None)
            self.replay.forget(tp)
        return lost, gone

    def took_over(self, tp: TopicPartition, counted_until: dict[str, int | None], committed: int) -> None:
        """The keys of ``counted_until`` were restored for ``tp``: it alone owns them now, and the replayed
        events their rows count (those before each key's offset) are skipped."""
        self.owners.own(counted_until, tp)
        self.replay.add(tp, counted_until, committed)


def _key_text(key: bytes) -> str | None:
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return None
