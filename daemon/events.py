"""Events in batches, and the codec that turns raw records into them.

A batch is columnar: ``key_names[keys[i]]``, ``categories[i]`` (an index into the model's
categories) and ``times[i]`` (its event time, :mod:`daemon.event_time`) describe event ``i``.
Sources that generate events (synthetic) build batches directly; sources that receive records
(JSON) go through :class:`EventCodec`, which sets every invalid record aside as a
:class:`BadEvent` with its reason — the good records of the batch still count.

>>> codec = EventCodec(["a", "b"])
>>> batch = codec.decode([{"key": "k", "category": "b"}, {"key": "k", "category": "z"}, b"{"])
>>> batch.categories.tolist(), [bad.reason for bad in batch.bad]
([1], ['unknown_category', 'not_json'])
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .categories import CategoryTable
from .field_path import FieldPath

BAD_REASONS = ("not_json", "not_an_object", "missing_field", "wrong_type", "unknown_category", "key_limit",
               "empty", "oversized", "missing_key", "not_utf8", "category_limit", "bad_framing", "bad_time", "late")


@dataclass(frozen=True)
class BadEvent:
    reason: str          # one of BAD_REASONS
    detail: str
    raw: Any             # the record as received (bytes, str or a JSON value)
    origin: dict = field(default_factory=dict)  # where it came from (source, topic, partition, offset)


@dataclass
class EventBatch:
    key_names: list[str]
    keys: np.ndarray         # int64 [n], index into key_names
    categories: np.ndarray   # int64 [n], index into the model's categories
    bad: list[BadEvent] = field(default_factory=list)
    times: np.ndarray | None = None  # int64 [n], event times in epoch milliseconds (daemon.event_time); None: unknown
    provenance: Any = None   # received records: ``of(i)`` → (raw record, origin) of event i; None for generated events

    def __len__(self) -> int:
        return int(self.keys.shape[0])


class EventCodec:
    """Decode records ``{"key": str, "category": label | index}`` (dicts or JSON bytes/str).

    The key and the category are found at ``key_field`` and ``category_field``: a name, a dotted
    path or a JSON Pointer (:class:`~daemon.field_path.FieldPath`, e.g. ``properties.category``).
    A path that leads nowhere is ``missing_field`` (for the key: unless ``default_key`` is set; a
    JSON null counts as missing), one that leads to a value of another type is ``wrong_type``; both
    details name the path.
    A category is accepted as one of the configured labels (a string) or as an integer index
    ``0 ≤ i < K``; booleans, floats and other types are ``wrong_type``. With open categories
    (``table``, a :class:`~daemon.categories.CategoryTable`) any string or integer ``≥ 0`` names a
    category, added the first time it is seen; one the table refuses is ``category_limit``.
    Every check of a record's value lives here (:meth:`parse`, :meth:`event_object`, :meth:`object_category`,
    :meth:`category_index`); :class:`daemon.sources.kafka.decode.RecordDecoder` calls them for the records
    its fast path cannot vouch for. ``loads`` parses JSON text (``json.loads``; the Kafka decoder
    passes ``orjson.loads``).
    """

    def __init__(self, labels: Sequence[str], *, key_field: str = "key", category_field: str = "category",
                 default_key: str | None = None, loads: Callable[[Any], Any] = json.loads,
                 table: CategoryTable | None = None) -> None:
        self.labels, self.table = list(labels), table
        self._index = {label: i for i, label in enumerate(self.labels)}
        self.key_path, self.category_path = FieldPath(key_field), FieldPath(category_field)
        self.default_key = default_key
        self._loads = loads

    def decode(self, records: Sequence[Any], origins: Sequence[dict] | None = None) -> EventBatch:
        key_ids: dict[str, int] = {}
        keys, categories, bad = [], [], []
        for i, raw in enumerate(records):
            origin = origins[i] if origins is not None else {}
            try:
                key, category = self._decode_one(raw)
            except InvalidEvent as invalid:
                bad.append(BadEvent(invalid.reason, invalid.detail, raw, origin))
                continue
            keys.append(key_ids.setdefault(key, len(key_ids)))
            categories.append(category)
        return EventBatch(list(key_ids), np.asarray(keys, dtype=np.int64),
                          np.asarray(categories, dtype=np.int64), bad)

    def _decode_one(self, raw: Any) -> tuple[str, int]:
        record = self.event_object(self.parse(raw) if isinstance(raw, (bytes, bytearray, str)) else raw)
        return self.object_key(record), self.object_category(record)

    def parse(self, text: bytes | bytearray | str) -> Any:
        """The JSON value of ``text``; ``not_json`` if it is not JSON."""
        try:
            return self._loads(text)
        except ValueError as error:  # json's and orjson's decode errors, and UnicodeDecodeError
            raise InvalidEvent("not_json", f"not valid JSON: {error}") from None

    def parse_all(self, texts: Sequence, at: FieldPath | None = None) -> list:
        """The JSON value of each text — with ``at``, the value at that path in it — and ``None`` where
        there is none (:meth:`parse` and the path's checks say why). One comprehension when all
        parse, the common case; the path is read as each text is parsed, so that the parsed value is
        freed at once (a quarter faster than parsing them all first, measured on nested events)."""
        loads = self._loads
        try:
            if at is None:
                return [loads(text) for text in texts]
            if at.name is not None:  # one name deep: one dict.get, what a plain field always cost
                name = at.name
                return [value.get(name) if type(value := loads(text)) is dict else None for text in texts]
            find = at.find
            return [find(loads(text)) for text in texts]
        except ValueError:
            values = [self._value_or_none(text) for text in texts]
            return values if at is None else list(map(at.find, values))

    def _value_or_none(self, text) -> Any:
        try:
            return self._loads(text)
        except ValueError:
            return None

    @staticmethod
    def event_object(value: Any) -> dict:
        """``value`` itself if it is a JSON object (a dict); ``not_an_object`` otherwise."""
        if not isinstance(value, dict):
            raise InvalidEvent("not_an_object", f"expected a JSON object, got {type(value).__name__}")
        return value

    def object_key(self, record: dict) -> str:
        """The distribution key of an event object: the string at ``key_field``, else ``default_key``."""
        key = self.key_path.find(record, _MISSING)
        if key is _MISSING or key is None:
            if self.default_key is not None:
                return self.default_key
            found = f"no '{self.key_path}' field" if key is _MISSING else f"'{self.key_path}' is null"
            raise InvalidEvent("missing_field", f"{found} and no default key is set")
        if not isinstance(key, str):
            raise InvalidEvent("wrong_type", f"'{self.key_path}' must be a string, got {type(key).__name__}")
        return key

    def object_category(self, record: dict) -> int:
        """The category index of an event object's ``category_field``."""
        value = self.category_path.find(record, _MISSING)
        if value is _MISSING:
            raise InvalidEvent("missing_field", f"no '{self.category_path}' field")
        return self.category_index(value, f"'{self.category_path}'")

    def category_index(self, value: Any, what: str = "category") -> int:
        """The index of a category given as a label or an index; ``what`` names it in a ``wrong_type`` detail."""
        if self.table is not None:
            return self._open_index(value, what)
        if isinstance(value, str):
            if value in self._index:
                return self._index[value]
            raise InvalidEvent("unknown_category", f"category {value[:64]!r} is not one of the {len(self.labels)} configured")
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value < len(self.labels):
                return value
            raise InvalidEvent("unknown_category", f"category index {value} is outside 0..{len(self.labels) - 1}")
        raise InvalidEvent("wrong_type", f"{what} must be a label or an index, got {type(value).__name__}")

    def _open_index(self, value: Any, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InvalidEvent("wrong_type", f"{what} must be a label or an index, got {type(value).__name__}")
        if isinstance(value, int) and value < 0:
            raise InvalidEvent("unknown_category", f"category index {value} is negative")
        index = self.table.index(value)
        if index < 0:
            raise InvalidEvent("category_limit", self.table.refusal(value))
        return index


_MISSING = object()  # what a path finds where there is nothing (a JSON null is a value)


class InvalidEvent(Exception):
    """Why a record is not a valid event: ``reason`` (one of BAD_REASONS) and a ``detail`` for people."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail
