"""Restoring keys from a state partition: which rows hold, and which replayed events they include.

A state partition is read from its start to its high watermark. Compaction may have removed
records (offsets have gaps) and kept, per key, at least the newest one; tombstones may remain.
:func:`latest` applies the records in log order: the last record of a key wins, and a tombstone
deletes the key.

Each row carries, in its headers, the source offset it includes events up to
(:data:`SOURCE_OFFSET_HEADER`): the row counts every event of its key read from its source
partition before that offset, and the source skips the replayed events it already counts
(:class:`~daemon.sources.kafka.replay.ReplayFilter`).

>>> rows = latest([Record(0, "a", b"1", 10), Record(3, "b", b"2", 10), Record(4, "a", None, None),
...                Record(9, "b", b"3", 25)])
>>> sorted((key, r.value, r.source_offset) for key, r in rows.items())
[('b', b'3', 25)]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

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
