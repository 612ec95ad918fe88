import json

import numpy as np
import orjson

from daemon.events import EventCodec
from daemon.field_path import FieldPath

LABELS = ["red", "green", "blue"]


def test_each_kind_of_bad_record_is_set_aside_with_its_reason_and_good_ones_decode():
    records = [
        {"key": "a", "category": "red"},
        b"not json at all",
        b"[1, 2]",
        {"category": "red"},
        {"key": 7, "category": "red"},
        {"key": "a"},
        {"key": "a", "category": 1.5},
        {"key": "a", "category": True},
        {"key": "a", "category": "purple"},
        {"key": "a", "category": 3},
        json.dumps({"key": "b", "category": 2}).encode(),
        b"\xff\xfe",
    ]
    batch = EventCodec(LABELS).decode(records, origins=[{"offset": i} for i in range(len(records))])
    assert batch.key_names == ["a", "b"]
    assert batch.keys.tolist() == [0, 1] and batch.categories.tolist() == [0, 2]
    assert [(b.reason, b.origin["offset"]) for b in batch.bad] == [
        ("not_json", 1), ("not_an_object", 2), ("missing_field", 3), ("wrong_type", 4), ("missing_field", 5),
        ("wrong_type", 6), ("wrong_type", 7), ("unknown_category", 8), ("unknown_category", 9), ("not_json", 11),
    ]
    assert batch.bad[0].raw == b"not json at all"


def test_a_default_key_applies_when_records_carry_none():
    batch = EventCodec(LABELS, default_key="all").decode([{"category": "blue"}])
    assert batch.key_names == ["all"] and batch.categories.tolist() == [2]


def test_an_empty_batch_decodes_to_nothing():
    batch = EventCodec(LABELS).decode([])
    assert len(batch) == 0 and batch.bad == [] and batch.keys.dtype == np.int64


def test_key_and_category_paths_reach_into_nested_objects_and_the_details_name_them():
    codec = EventCodec(LABELS, key_field="/context/user.id", category_field="payload.after.category")
    records = [
        {"context": {"user.id": "u"}, "payload": {"after": {"category": "green"}}},
        {"context": {"user.id": "u"}, "payload": {"after": None}},
        {"context": {"user.id": "u"}, "payload": {"after": {"category": [1]}}},
        {"context": {"user": {"id": "u"}}, "payload": {"after": {"category": "red"}}},
        {"context": {"user.id": None}, "payload": {"after": {"category": "red"}}},
        {"context": {"user.id": 5}, "payload": {"after": {"category": "red"}}},
    ]
    batch = codec.decode(records)
    assert batch.key_names == ["u"] and batch.categories.tolist() == [1]
    assert [(b.reason, b.detail) for b in batch.bad] == [
        ("missing_field", "no 'payload.after.category' field"),
        ("wrong_type", "'payload.after.category' must be a label or an index, got list"),
        ("missing_field", "no '/context/user.id' field and no default key is set"),
        ("missing_field", "'/context/user.id' is null and no default key is set"),
        ("wrong_type", "'/context/user.id' must be a string, got int"),
    ]
    defaulted = EventCodec(LABELS, key_field="/context/user.id", category_field="payload.after.category",
                           default_key="all").decode(records[3:])
    assert defaulted.key_names == ["all"] and len(defaulted) == 2 and [b.reason for b in defaulted.bad] == ["wrong_type"]


def test_parse_all_reads_a_path_as_it_parses_and_gives_none_where_there_is_nothing():
    texts = [b'{"p": {"c": "red"}, "c": 1}', b'{"p": null}', b"[1]", b'"c"']
    for loads in (json.loads, orjson.loads):
        codec = EventCodec(LABELS, loads=loads)
        for tail in ([], [b"{nope"]):  # all parse, or one does not: the same values, None for it
            assert codec.parse_all(texts + tail) == [{"p": {"c": "red"}, "c": 1}, {"p": None}, [1], "c"] + [None] * len(tail)
            assert codec.parse_all(texts + tail, at=FieldPath("c")) == [1, None, None, None] + [None] * len(tail)
            assert codec.parse_all(texts + tail, at=FieldPath("/p/c")) == ["red", None, None, None] + [None] * len(tail)
