"""Reading what gumbeld publishes: a typed snapshot, the latest one per key, and live updates.

For subscribers of the learned-distribution topic (``sinks.kafka.topic``) or of the JSON lines
(:func:`parse_line` reads one line: a snapshot or an eviction record).
:class:`Snapshot` (:mod:`daemon.contract`) validates the published contract (see the README): the
lists agree in length, both distributions sum to 1, divergences lie in their ranges, each
category's interval holds its bounds in order. Its JSON
Schema, for subscribers in other languages, is checked in at ``docs/snapshot.schema.json``
(``python -m daemon.tools.client`` prints it).

>>> line = ('{"key": "a", "categories": ["x", "y"], "probabilities": [0.25, 0.75], '
...         '"empirical": [0.2, 0.8], "divergence": {"tv": 0.05, "kl": 0.006, "js": 0.0015}, '
...         '"temperature": 1.0, "step": 10, "events": 5, "effective_events": 5.0, '
...         '"intervals": {"level": 0.9, "lower": [0.04, 0.5], "upper": [0.5, 0.96]}, '
...         '"published_at": "2026-01-01T00:00:00.000Z", "model": "gumbel-softmax-gan", "version": 3}')
>>> snapshot = Snapshot.model_validate_json(line)
>>> snapshot.key, snapshot.distribution(), snapshot.intervals.upper
('a', {'x': 0.25, 'y': 0.75}, [0.5, 0.96])
>>> parse(None) is None  # a tombstone: the key was evicted
True
>>> parse_line('{"key": "a", "evicted": true, "reason": "ttl", "evicted_at": "2026-01-01T00:00:00.000Z"}')
Update(key='a', snapshot=None)
>>> latest_of([("a", line), ("b", line.replace('"a"', '"b"')), ("a", None)]).keys()
dict_keys(['b'])
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import orjson
from pydantic import ValidationError

from ..contract import Divergence, Intervals, Snapshot, schema  # noqa: F401 (part of this module's interface)
from ..kafka.read import PartitionReader


def parse(value: bytes | str | None) -> Snapshot | None:
    """A message value as a :class:`Snapshot`; ``None`` for a tombstone. Raises ``ValueError`` if malformed."""
    return None if value is None else Snapshot.model_validate_json(value)


def latest_of(messages: Iterable[tuple[str, bytes | str | None]], malformed: list | None = None) -> dict[str, Snapshot]:
    """The latest snapshot of each key among ``(key, value)`` messages in order; a tombstone removes its
    key. Malformed values are skipped (and appended to ``malformed`` as ``(key, error)`` if given)."""
    latest: dict[str, Snapshot] = {}
    for key, value in messages:
        try:
            snapshot = parse(value)
        except ValidationError as error:
            if malformed is not None:
                malformed.append((key, error))
            continue
        if snapshot is None:
            latest.pop(key, None)
        else:
            latest[key] = snapshot
    return latest


async def latest(topic: str, *, bootstrap_servers: str, timeout: float = 60.0, malformed: list | None = None,
                 **client_options) -> dict[str, Snapshot]:
    """Key → latest :class:`Snapshot` of a learned-distribution topic, read to its current end."""
    async with PartitionReader({"bootstrap_servers": bootstrap_servers, **client_options}, topic,
                               timeout=timeout) as reader:
        records = [r async for batch in reader for r in batch]
    return latest_of(((_key(r.key), r.value) for r in records), malformed)


@dataclass
class Update:
    key: str
    snapshot: Snapshot | None    # None: the key was evicted


def parse_line(line: bytes | str) -> Update:
    """One line of gumbeld's JSON-lines output (stdout, ``sinks.jsonl_path``): a snapshot, or an eviction
    record (``{"key", "evicted": true, ...}``) as an update without snapshot. Raises ``ValueError``
    (pydantic's ``ValidationError``) if it is neither."""
    try:
        snapshot = Snapshot.model_validate_json(line)
    except ValidationError:
        key = _evicted_key(line)
        if key is None:
            raise
        return Update(key, None)
    return Update(snapshot.key, snapshot)


def _evicted_key(line: bytes | str) -> str | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(record, dict) and record.get("evicted") is True and isinstance(record.get("key"), str) and record["key"]:
        return record["key"]
    return None


@dataclass
class Subscription:
    """``async for update in Subscription(topic, bootstrap_servers=...)``: every snapshot and eviction
    as it arrives (from the beginning of the topic unless ``from_end``), with :attr:`latest`, the
    latest snapshot of each live key, kept up to date (tombstones remove keys). Malformed messages
    are skipped and counted in :attr:`malformed`."""

    topic: str
    bootstrap_servers: str
    from_end: bool = False
    client_options: dict = field(default_factory=dict)
    latest: dict[str, Snapshot] = field(default_factory=dict)
    malformed: int = 0

    async def __aiter__(self) -> AsyncIterator[Update]:
        from aiokafka import (
            AIOKafkaConsumer,  # the only module of this one that needs a live consumer
        )
        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap_servers, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="latest" if self.from_end else "earliest",
                                    **self.client_options)
        try:  # a consumer that failed to start is stopped too, or it would warn of being left open
            await consumer.start()
            async for record in consumer:
                key = _key(record.key)
                try:
                    snapshot = parse(record.value)
                except ValidationError:
                    self.malformed += 1
                    continue
                if snapshot is None:
                    self.latest.pop(key, None)
                else:
                    self.latest[key] = snapshot
                yield Update(key, snapshot)
        finally:
            await consumer.stop()


def _key(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace") if raw is not None else ""


if __name__ == "__main__":
    print(orjson.dumps(schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
