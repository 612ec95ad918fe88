"""Decoding Kafka records into event batches — the hot path, vectorised where it can be.

Value formats (``source.kafka.value_format``):

- ``json``: a JSON object; the category is at its ``category_field`` (and, with ``key_from =
  "field"``, the key at its ``key_field``): a name, a dotted path or a JSON Pointer
  (:class:`~daemon.field_path.FieldPath`);
- ``scalar``: a bare JSON scalar, ``"red"`` or ``3``;
- ``text``: the category label as plain UTF-8;
- ``array``: a JSON array of categories — many events in one message, for high-volume producers.

The distribution key is the record key (UTF-8) unless ``key_from = "field"``
(:class:`~daemon.sources.kafka.record_keys.RecordKeys`). An event's time is its record's timestamp
unless ``time_field`` names a field of the JSON object (:mod:`daemon.event_time`); a record without
a timestamp, or whose field holds no time, is dead-lettered (``bad_time``). With
``value_framing = "confluent"`` each value's 5-byte schema-registry frame is checked and sliced off
first (:mod:`daemon.sources.kafka.framing`); a dead letter keeps the value whole.

Fast path: values are parsed with orjson (6× ``json.loads`` per message, measured) in one list
comprehension, and categories looked up in one dict of labels and indices. Records the fast path
cannot vouch for — a parse failure, a non-object, an unknown or ill-typed category — go through
:class:`daemon.events.EventCodec` one by one, which names the exact reason: the fast path never
decides what is bad, it only accepts what is plainly good. The category's field is read as each
value is parsed (:meth:`~daemon.events.EventCodec.parse_all`): a plain name costs one
``dict.get``, a deeper path one :meth:`~daemon.field_path.FieldPath.find`. With open
categories (a :class:`~daemon.categories.CategoryTable`) the fast path knows the labels already in
the table; a new label, an index category and the text and array formats' misses take the exact
path, which adds the label.
"""
from __future__ import annotations

from itertools import repeat
from typing import Any, Sequence

import numpy as np
import orjson

from ...categories import CategoryTable
from ...event_time import BadTime, event_time_ms
from ...events import BadEvent, EventBatch, EventCodec, InvalidEvent
from ...field_path import FieldPath
from .framing import FRAME_BYTES, frame_problem, payloads
from .record_keys import RecordKeys, RecordProvenance, record_origin

FORMATS = ("json", "scalar", "text", "array")
MEMO_SIZE = 4096  # distinct message values remembered; typical streams repeat a handful


class RecordDecoder:
    def __init__(self, labels: Sequence[str], *, value_format: str = "json", value_framing: str = "none",
                 key_from: str = "message_key", key_field: str = "key", category_field: str = "category",
                 default_key: str | None = None, max_message_bytes: int = 1 << 20,
                 table: CategoryTable | None = None, time_field: str | None = None) -> None:
        self.value_format, self.key_from = value_format, key_from
        self.time_path = None if time_field is None else FieldPath(time_field)
        self.framed, self.max_message_bytes = value_framing == "confluent", max_message_bytes
        self.codec = EventCodec(labels, key_field=key_field, category_field=category_field, default_key=default_key,
                                loads=orjson.loads, table=table)
        self.keys = RecordKeys(self.codec, key_from, default_key)
        self._memo: dict[bytes, int] = {}  # value bytes → category; decoding is deterministic
        if table is not None:  # the table's own dict of labels: it grows as labels arrive
            self._lookup = self._label_lookup = table.known
            self._text_lookup, self._array_tokens = {}, None
            return
        n = len(labels)
        self._lookup: dict[Any, int] = {**{label: i for i, label in enumerate(labels)}, **{i: i for i in range(n)}}
        self._text_lookup = {label.encode(): i for i, label in enumerate(labels)}
        self._label_lookup = {label: i for i, label in enumerate(labels)}  # str keys only: 1.0/True never match
        # Array elements by their exact JSON encoding: a message `[t1,t2,...]` whose every token is
        # one of these is a valid JSON array of those labels, so it needs no parser. Labels whose
        # encoding holds a comma would split wrongly: then there is no fast path at all.
        tokens = {orjson.dumps(label): i for i, label in enumerate(labels)}
        self._array_tokens = tokens if not any(b"," in t for t in tokens) else None

    def decode(self, records: Sequence) -> EventBatch:
        """``records``: objects with ``key``, ``value`` (bytes), ``topic``, ``partition``, ``offset``."""
        bad: list[BadEvent] = []
        good, values = self._screen(records, bad)
        if self.value_format == "array":
            names: list[str] = []
            keys, categories, times, origins = [], [], [], []
            self._decode_arrays(good, values, keys, categories, times, origins, bad, {}, names)
            empty = np.zeros(0, dtype=np.int64)
            keys, categories, times, origins = (np.concatenate(part) if part else empty
                                                for part in (keys, categories, times, origins))
            return EventBatch(names, keys, categories, bad, times, RecordProvenance(good, origins))
        categories = np.fromiter(self._categories(values), dtype=np.int64, count=len(good))
        key_ids, names, key_ok = self.keys.ids(good, values, bad)
        accepted = (categories >= 0) & key_ok
        for i in np.flatnonzero(~accepted & key_ok):  # the exact path names the reason (or accepts)
            index = self._exact(good[i], values[i], bad)
            if index is not None:
                categories[i], accepted[i] = index, True
        times = self._times(good, values, accepted, bad)
        return EventBatch(names, key_ids[accepted], categories[accepted], bad, times[accepted],
                          RecordProvenance(good, np.flatnonzero(accepted)))

    def _times(self, records: Sequence, values: Sequence[bytes], accepted: np.ndarray,
               bad: list[BadEvent]) -> np.ndarray:
        """Event time per record ``[n]`` (epoch ms); an accepted record without one is dead-lettered
        (``bad_time``) and no longer accepted."""
        if self.time_path is None:
            times = np.array([r.timestamp for r in records], dtype=np.int64)
            for i in np.flatnonzero(accepted & (times < 0)):
                bad.append(_without_timestamp(records[i]))
                accepted[i] = False
            return times
        found = self.codec.parse_all(values, at=self.time_path)
        times = np.zeros(len(records), dtype=np.int64)
        for i in np.flatnonzero(accepted):
            try:
                if found[i] is None:
                    raise BadTime(f"no '{self.time_path}' field, or it is null")
                times[i] = event_time_ms(found[i])
            except BadTime as problem:
                bad.append(BadEvent("bad_time", f"'{self.time_path}': {problem}", records[i].value,
                                    record_origin(records[i])))
                accepted[i] = False
        return times

    # -- screening ---------------------------------------------------------------------------
    def _screen(self, records: Sequence, bad: list[BadEvent]) -> tuple[list, list[bytes]]:
        """The records fit to decode, and their values (framed values: what follows the frame)."""
        values = [r.value for r in records]
        if all(values) and max(map(len, values), default=0) <= self.max_message_bytes:
            if not self.framed:
                return list(records), values  # the common case, checked at C speed
            unframed = payloads(values)
            if unframed is not None:
                return list(records), unframed
        good, kept = [], []
        for record in records:
            value = record.value
            problem = self._screen_one(value)
            if problem is None:
                good.append(record)
                kept.append(value[FRAME_BYTES:] if self.framed else value)
            else:
                bad.append(BadEvent(*problem, record_origin(record)))
        return good, kept

    def _screen_one(self, value: bytes) -> tuple[str, str, bytes] | None:
        """Why a value cannot be decoded at all (reason, detail, the raw value kept), or ``None``."""
        if not value:
            return "empty", "the message has no value", value
        if len(value) > self.max_message_bytes:
            return ("oversized", f"{len(value)} bytes, more than source.kafka.max_message_bytes = "
                    f"{self.max_message_bytes}", value[:1024])
        problem = frame_problem(value) if self.framed else None
        if problem is not None:
            return "bad_framing", problem, value
        if self.framed and len(value) == FRAME_BYTES:
            return "empty", "nothing follows the schema-registry frame", value
        return None

    # -- single-event formats ----------------------------------------------------------------
    def _categories(self, values: Sequence[bytes]) -> list:
        """Category index per value, or −1 where the record needs the exact (slow) path."""
        if not values:
            return []
        if self.value_format == "text":
            return list(map(self._text_lookup.get, values, repeat(-1)))
        memo = self._memo
        found = list(map(memo.get, values))
        if None not in found:
            return found
        missing = [v for v, f in zip(values, found) if f is None]
        parsed = self.codec.parse_all(missing, at=self.codec.category_path if self.value_format == "json" else None)
        lookup = self._lookup
        resolved = iter([lookup.get(c, -1) if type(c) is str or type(c) is int else -1 for c in parsed])
        if len(memo) < MEMO_SIZE:
            resolved = list(resolved)
            memo.update((v, c) for v, c in zip(missing[:MEMO_SIZE - len(memo)], resolved) if c >= 0)
            resolved = iter(resolved)
        return [f if f is not None else next(resolved) for f in found]

    def _exact(self, record, payload: bytes, bad: list[BadEvent]) -> int | None:
        """The category of one record by the codec's checks, or ``None`` with the reason in ``bad``."""
        codec = self.codec
        try:
            if self.value_format == "text":
                try:
                    label = payload.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise InvalidEvent("not_utf8", f"not UTF-8 text: {error}") from None
                return codec.category_index(label)
            value = codec.parse(payload)
            if self.value_format == "json":
                return codec.object_category(codec.event_object(value))
            return codec.category_index(value)
        except InvalidEvent as invalid:
            bad.append(BadEvent(invalid.reason, invalid.detail, record.value, record_origin(record)))
        return None

    # -- the batched format ------------------------------------------------------------------
    def _decode_arrays(self, records, payloads, keys, categories, times, origins, bad, key_ids, names) -> None:
        """Appends one array of keys, categories, times and record indices each per good message (its
        events share the record's timestamp)."""
        for position, (record, payload) in enumerate(zip(records, payloads)):
            if record.timestamp < 0:
                bad.append(_without_timestamp(record))
                continue
            found = None if self._array_tokens is None else self._array_fast(record, payload, key_ids, names)
            if found is None:
                found = self._array_exact(record, payload, bad, key_ids, names)
                if found is None:
                    continue
            key, indices = found
            keys.append(np.full(len(indices), key, dtype=np.int64))
            categories.append(indices)
            times.append(np.full(len(indices), record.timestamp, dtype=np.int64))
            origins.append(np.full(len(indices), position, dtype=np.int64))

    def _array_exact(self, record, payload: bytes, bad: list[BadEvent], key_ids: dict, names: list[str]):
        """``(key id, category indices)`` of an array message by the codec's checks; ``None`` when
        the whole message is bad (its reason in ``bad``). Bad elements alone are dead-lettered."""
        try:
            values = self.codec.parse(payload)
        except InvalidEvent as invalid:
            bad.append(BadEvent(invalid.reason, invalid.detail, record.value, record_origin(record)))
            return None
        if not isinstance(values, list):
            bad.append(BadEvent("wrong_type", f"expected a JSON array, got {type(values).__name__}",
                                record.value, record_origin(record)))
            return None
        name, problem = self.keys.name(record.key if self.key_from == "message_key" else None)
        if problem is not None:
            bad.append(BadEvent(problem[0], problem[1], record.value, record_origin(record)))
            return None
        indices = np.fromiter(map(self._label_lookup.get, values, repeat(-1)), dtype=np.int64, count=len(values))
        unknown = np.flatnonzero(indices < 0)
        if len(unknown):  # index categories, and the bad ones, take the exact path
            keep = np.ones(len(values), dtype=bool)
            for element in unknown:
                try:
                    indices[element] = self.codec.category_index(values[element])
                except InvalidEvent as invalid:
                    keep[element] = False
                    bad.append(BadEvent(invalid.reason, invalid.detail, values[element],
                                        {**record_origin(record), "element": int(element)}))
            indices = indices[keep]
        return _key_id(name, key_ids, names), indices

    def _array_fast(self, record, value: bytes, key_ids: dict, names: list[str]):
        """``(key id, category indices)`` of an array message whose every element is a label's exact
        JSON encoding; ``None`` for the exact path to decide."""
        if value[:1] != b"[" or value[-1:] != b"]":
            return None
        indices = np.fromiter(map(self._array_tokens.get, value[1:-1].split(b","), repeat(-1)), dtype=np.int64)
        if (indices < 0).any():
            return None
        name, problem = self.keys.name(record.key if self.key_from == "message_key" else None)
        if problem is not None:
            return None  # the exact path dead-letters it
        return _key_id(name, key_ids, names), indices


def _key_id(name: str, key_ids: dict, names: list[str]) -> int:
    """The batch's id of key ``name``, given on first sight (``names`` lists them in id order)."""
    key = key_ids.setdefault(name, len(key_ids))
    if key == len(names):
        names.append(name)
    return key


def _without_timestamp(record) -> BadEvent:
    """A record with Kafka's "no timestamp" (−1, old message formats) and no other time to read."""
    return BadEvent("bad_time", f"the record has no timestamp ({record.timestamp})", record.value,
                    record_origin(record))

