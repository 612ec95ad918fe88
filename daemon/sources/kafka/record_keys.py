"""The distribution key of each Kafka record, and where a record came from.

``key_from = "message_key"``: the record's key as UTF-8 text. ``key_from = "field"``: the string
at ``key_field`` in the value's JSON object (a :class:`~daemon.field_path.FieldPath`), by the
rules of :meth:`daemon.events.EventCodec.object_key`. A record without a key takes
``default_key``; without that it is dead-lettered: ``missing_key`` (no message key), ``not_utf8``
(a message key that is not UTF-8), or the codec's reason for the value (``missing_field``,
``wrong_type``, ``not_json``, ``not_an_object``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...events import BadEvent, EventCodec, InvalidEvent


class RecordKeys:
    def __init__(self, codec: EventCodec, key_from: str, default_key: str | None) -> None:
        self.codec, self.key_from, self.default_key = codec, key_from, default_key

    def ids(self, records: Sequence, values: Sequence[bytes],
            bad: list[BadEvent]) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Key id per record ``[n]``, the key names, and which records have a usable key ``[n]``;
        ``values``: the records' values, unframed. The others go to ``bad`` with their reason."""
        raw = [r.key for r in records] if self.key_from == "message_key" else self._field_keys(values)
        distinct: dict = {}
        ids = np.fromiter((distinct.setdefault(k, len(distinct)) for k in raw), dtype=np.int64, count=len(raw))
        names, usable = [], []
        for key in distinct:  # once per distinct key, not per record
            name, problem = self.name(key)
            usable.append(problem is None)
            names.append(name if problem is None else "")
            if problem is not None:
                for i in np.flatnonzero(ids == len(names) - 1):
                    bad.append(BadEvent(problem[0], problem[1], records[i].value, record_origin(records[i])))
        return ids, names, np.asarray(usable, dtype=bool)[ids] if len(ids) else np.zeros(0, dtype=bool)

    def name(self, key) -> tuple[str | None, tuple[str, str] | None]:
        """The key's name, or ``None`` and why there is none (reason, detail). ``key``: a message key
        (bytes or ``None``), or what :meth:`ids` found in a value (a string or an :class:`InvalidEvent`)."""
        if isinstance(key, InvalidEvent):
            return None, (key.reason, key.detail)
        if key is None:
            if self.default_key is None:
                where = "no key" if self.key_from == "message_key" else f"no '{self.codec.key_path}' field"
                return None, ("missing_key", f"the message has {where} and source.kafka.default_key is unset")
            return self.default_key, None
        if isinstance(key, bytes):
            try:
                return key.decode("utf-8"), None
            except UnicodeDecodeError:
                return None, ("not_utf8", "the message key is not UTF-8")
        return key, None

    def _field_keys(self, values: Sequence[bytes]) -> list:
        """The key in each value (``key_from = "field"``): a string, or the :class:`InvalidEvent` saying
        why there is none. The codec decides every value without a string at the path."""
        found = self.codec.parse_all(values, at=self.codec.key_path)
        if self.default_key is not None:  # as the codec does; a bad value is then caught with its category
            found = [self.default_key if key is None else key for key in found]
        if set(map(type, found)) <= {str}:  # the common case, checked at C speed
            return found
        return [key if type(key) is str else self._exact_key(value) for key, value in zip(found, values)]

    def _exact_key(self, value: bytes):
        codec = self.codec
        try:
            return codec.object_key(codec.event_object(codec.parse(value)))
        except InvalidEvent as invalid:
            return invalid


def record_origin(record) -> dict:
    """Where ``record`` came from; its key as text, or as ``key_hex`` when it is not UTF-8."""
    origin = {"topic": record.topic, "partition": record.partition, "offset": record.offset, "key": record.key}
    if isinstance(record.key, bytes):
        try:
            origin["key"] = record.key.decode("utf-8")
        except UnicodeDecodeError:
            del origin["key"]
            origin["key_hex"] = record.key.hex()
    return origin


class RecordProvenance:
    """Which record each event of a batch came from (``index`` ``[n]`` into ``records``): a bad
    event found after decoding (``late``) is dead-lettered as its record, with its origin."""

    def __init__(self, records: Sequence, index: np.ndarray) -> None:
        self.records, self.index = records, index

    def of(self, event: int) -> tuple[bytes, dict]:
        """The raw value and the origin of ``event``'s record."""
        record = self.records[int(self.index[event])]
        return record.value, record_origin(record)
