"""Which input partitions carry each key: a key belongs to the instance that owns them.

The Kafka source records the partitions each key was seen on; a checkpoint saves them (by name),
state rows go to the state partition of each, and a rebalance drops the keys none of whose
partitions stayed. The names are kept up to date as keys are seen, so a checkpoint copies a dict
instead of naming every key's partitions (at 100,000 keys that held the event loop 75–145 ms).

>>> from aiokafka import TopicPartition
>>> owners = KeyOwners()
>>> owners.saw("a", TopicPartition("events", 1)); owners.saw("b", TopicPartition("events", 2))
>>> owners.state()
{'a': ('events:1',), 'b': ('events:2',)}
>>> owners.keep({TopicPartition("events", 1)})
['b']
>>> owners.sole({TopicPartition("events", 1)}), owners.sole({TopicPartition("events", 2)})
(['a'], [])
"""
from __future__ import annotations

from collections.abc import Iterable

from aiokafka import TopicPartition


def partition_name(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


def partition_from_name(name: str) -> TopicPartition:
    topic, partition = name.rsplit(":", 1)
    return TopicPartition(topic, int(partition))


def _names(partitions: Iterable[TopicPartition]) -> tuple[str, ...]:
    return tuple(sorted(map(partition_name, partitions)))


class KeyOwners:
    def __init__(self) -> None:
        self._partitions: dict[str, set[TopicPartition]] = {}  # key → partitions it was seen on
        self._names: dict[str, tuple[str, ...]] = {}            # key → the names of those, sorted

    def saw(self, key: str, tp: TopicPartition) -> None:
        owned = self._partitions.setdefault(key, set())
        if tp not in owned:
            owned.add(tp)
            self._names[key] = _names(owned)

    def own(self, keys: Iterable[str], tp: TopicPartition) -> None:
        """``keys`` were restored from the state partition of ``tp``: ``tp`` alone owns them."""
        name = (partition_name(tp),)
        for key in keys:
            self._partitions[key], self._names[key] = {tp}, name

    def partitions(self) -> set[TopicPartition]:
        """Every partition some key was seen on."""
        return {tp for tps in self._partitions.values() for tp in tps}

    def sole(self, partitions: set[TopicPartition]) -> list[str]:
        """The keys seen on exactly ``partitions``."""
        return [key for key, owned in self._partitions.items() if owned == partitions]

    def keep(self, partitions: set[TopicPartition]) -> list[str]:
        """Forget every partition but ``partitions``; returns the keys left with none (and forgets them)."""
        gone = [key for key, owned in self._partitions.items() if not owned & partitions]
        for key in gone:
            del self._partitions[key], self._names[key]
        for key, owned in self._partitions.items():
            if not owned <= partitions:
                owned &= partitions
                self._names[key] = _names(owned)
        return gone

    def state(self) -> dict[str, tuple[str, ...]]:
        """Key → the names of its partitions (a copy, for a checkpoint)."""
        return dict(self._names)

    def load(self, state: dict) -> None:
        self._partitions = {key: {partition_from_name(n) for n in names} for key, names in state.items()}
        self._names = {key: _names(tps) for key, tps in self._partitions.items()}
