"""The latest published snapshot of each key: what ``/v1`` answers from.

:class:`Published` is a snapshot sink like the others: it takes each publication's encoded values
(the same bytes the topic gets), and a tombstone removes its key. Readers on the event loop never
wait for it, nor for the training thread: a key's value is one dict entry, replaced whole, and the
sorted index of keys that pages are read from is replaced whole too (copy on write), so a page
comes from one consistent index.

>>> import asyncio
>>> from daemon.snapshots import Eviction, Publication, SnapshotBatch
>>> published = Published()
>>> published.take([b"b", b"a", b"c"], [b'{"version":1}', b'{"version":2}', b'{"version":3}'])
>>> published.page(prefix="", after=None, limit=2)
['a', 'b']
>>> published.take([b"b"], [None])
>>> published.get("b") is None, published.page(prefix="", after="a", limit=2)
(True, ['c'])
"""
from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass

import orjson

from ..snapshots import Publication
from .updates import Updates

REBUILD_OVER = 256  # changes to the key index past which it is sorted anew rather than edited


@dataclass(frozen=True)
class Snapshot:
    """The fields of a published snapshot that requests need, read from its JSON."""

    value: bytes
    record: dict

    @classmethod
    def of(cls, value: bytes) -> "Snapshot":
        return cls(value, orjson.loads(value))

    @property
    def version(self) -> int:
        return self.record["version"]

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


class Published:
    name = "api"

    def __init__(self) -> None:
        self.updates = Updates()  # what GET /v1/stream clients follow
        self._values: dict[str, bytes] = {}
        self._index: list[str] = []  # the keys of _values, sorted; replaced, never edited in place

    def __len__(self) -> int:
        return len(self._values)

    async def publish(self, publication: Publication) -> None:
        await asyncio.to_thread(self.take, publication.keys, publication.values)

    async def aclose(self) -> None:
        self.updates.close()

    def take(self, keys: list[bytes], values: list[bytes | None]) -> None:
        """Keep ``values[i]`` as the snapshot of ``keys[i]``; a None value removes the key."""
        added, removed = set(), set()
        for raw, value in zip(keys, values):
            key = raw.decode("utf-8", "replace")
            if value is None:
                if self._values.pop(key, None) is not None:
                    removed.add(key)
            else:
                if key not in self._values:
                    added.add(key)
                self._values[key] = value
        if added or removed:
            self._index = self._reindexed(added, removed)
        self.updates.offer(keys, values)

    def _reindexed(self, added: set[str], removed: set[str]) -> list[str]:
        if len(added) + len(removed) > REBUILD_OVER:
            return sorted(self._values)
        index = list(self._index)
        for key in removed:
            at = bisect.bisect_left(index, key)
            if at < len(index) and index[at] == key:
                del index[at]
        for key in added:
            if key in self._values:
                bisect.insort(index, key)
        return index

    def get(self, key: str) -> bytes | None:
        """The latest snapshot of ``key`` as published, or None."""
        return self._values.get(key)

    def page(self, prefix: str, after: str | None, limit: int) -> list[str]:
        """Up to ``limit`` keys starting with ``prefix``, in order, after the key ``after``."""
        index = self._index
        start = bisect.bisect_right(index, after) if after is not None and after >= prefix else \
            bisect.bisect_left(index, prefix)
        keys = []
        for key in index[start:start + limit]:
            if not key.startswith(prefix):
                break
            keys.append(key)
        return keys
