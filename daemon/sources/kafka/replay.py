"""Replayed events that restored state already counts: skipped, per key, until the consumer passes them.

A state row restored for a key counts every event of that key read from its source partition
before the row's source offset. The consumer resumes at the group's committed offset; a row
written after that commit (its instance stopped between writing its rows and committing) already
counts some of the events replayed from there. :class:`ReplayFilter` skips them.

>>> replay = ReplayFilter()
>>> replay.add("src:0", {"b": 25, "c": None}, committed=20)
>>> replay.keep("src:0", "b", 21), replay.keep("src:0", "b", 25), replay.keep("src:0", "c", 21)
(False, True, True)
>>> replay.passed("src:0", 25); bool(replay)
False
"""
from __future__ import annotations

from typing import Hashable, Mapping


class ReplayFilter:
    """Per source partition, keys whose restored row includes events the consumer will replay."""

    def __init__(self) -> None:
        self._until: dict[Hashable, dict[str, int]] = {}

    def add(self, partition: Hashable, counted_until: Mapping[str, int | None], committed: int) -> None:
        """Keys restored for ``partition`` (each with the source offset its row counts events up to;
        None: unknown), whose consumer resumes at ``committed``."""
        ahead = {key: until for key, until in counted_until.items() if until is not None and until > committed}
        if ahead:
            self._until[partition] = ahead
        else:
            self._until.pop(partition, None)

    def keep(self, partition: Hashable, key: str, offset: int) -> bool:
        """Whether the event of ``key`` at source ``offset`` is new to the state (count it)."""
        until = self._until.get(partition)
        return until is None or offset >= until.get(key, offset)

    def passed(self, partition: Hashable, position: int) -> None:
        """The consumer of ``partition`` is at ``position``: rows it has passed need no filtering."""
        until = self._until.get(partition)
        if until is not None and position >= max(until.values()):
            del self._until[partition]

    def forget(self, partition: Hashable) -> None:
        """``partition`` left this instance."""
        self._until.pop(partition, None)

    def __bool__(self) -> bool:
        return bool(self._until)
