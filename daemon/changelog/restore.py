"""Restoring keys from a state partition: which rows hold, and which replayed events they include.

A state partition is read from its start to its high watermark. Compaction may have removed
records (offsets have gaps) and kept, per key, at least the newest one; tombstones may remain.
:func:`latest` applies the records in log order: the last record of a key wins, and a tombstone
deletes the key.

Each row carries, in its headers, the source offset it includes events up to
(:data:`SOURCE_OFFSET_HEADER`): the row counts every event of its key read from its source
partition before that offset. The consumer resumes at the group's committed offset; a row written
after that commit (the instance stopped between writing its rows and committing) already counts
some of the events replayed from there. :class:`ReplayFilter` skips them, per key, until the
consumer passes the row's offset.

>>> rows = latest([Record(0, "a", b"1", 10), Record(3, "b", b"2", 10), Record(4, "a", None, None),
...                Record(9, "b", b"3", 25)])
>>> sorted((key, r.value, r.source_offset) for key, r in rows.items())
[('b', b'3', 25)]
>>> replay = ReplayFilter()
>>> replay.add("src:0", rows, committed=20)
>>> replay.keep("src:0", "b", 21), replay.keep("src:0", "b", 25), replay.keep("src:0", "c", 21)
(False, True, True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterable, Mapping

SOURCE_OFFSET_HEADER = "gumbeld-source-offset"
FORMAT_HEADER = "gumbeld-row-format"


@dataclass(frozen=True)
class Record:
    """One record of a state partition, as far as restoring is concerned."""

    offset: int                  # in the state partition
    key: str                     # the distribution key
    value: bytes | None          # the row; None: a tombstone
    source_offset: int | None    # the row counts its key's events before this source offset


def latest(records: Iterable[Record]) -> dict[str, Record]:
    """The rows that hold after applying ``records`` in log (offset) order: last wins, tombstones delete."""
    rows: dict[str, Record] = {}
    for record in sorted(records, key=lambda r: r.offset):
        if record.value is None:
            rows.pop(record.key, None)
        else:
            rows[record.key] = record
    return rows


def use_local_checkpoint(local_offset: int | None, committed: int | None) -> bool:
    """Whether the local checkpoint holds a partition's newest state.

    The group commits an offset only after the rows up to it are on the state topic, and the local
    checkpoint is written after that commit; so the checkpoint is newest when it has got as far as
    the commit. With no commit at all, nothing was ever written: the checkpoint (or nothing) holds.

    >>> use_local_checkpoint(120, 120), use_local_checkpoint(100, 120), use_local_checkpoint(None, 5)
    (True, False, False)
    >>> use_local_checkpoint(None, None), use_local_checkpoint(40, None)
    (True, True)
    """
    if committed is None:
        return True
    return local_offset is not None and local_offset >= committed


class ReplayFilter:
    """Per source partition, keys whose restored row includes events the consumer will replay."""

    def __init__(self) -> None:
        self._until: dict[Hashable, dict[str, int]] = {}

    def add(self, partition: Hashable, rows: Mapping[str, Record], committed: int) -> None:
        """Rows restored for ``partition``, whose consumer resumes at ``committed``."""
        ahead = {key: r.source_offset for key, r in rows.items()
                 if r.source_offset is not None and r.source_offset > committed}
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
