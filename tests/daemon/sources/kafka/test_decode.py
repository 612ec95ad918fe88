import json

import pytest
from aiokafka.structs import ConsumerRecord

from daemon.sources.kafka.decode import RecordDecoder

LABELS = ["red", "green", "blue"]


def _records(values, keys=None, topic="events", partition=0):
    keys = keys or [b"k"] * len(values)
    return [ConsumerRecord(topic, partition, offset, 0, 0, key, value, None, len(key or b""), len(value or b""), [])
            for offset, (key, value) in enumerate(zip(keys, values))]


def _decoded(decoder, records):
    batch = decoder.decode(records)
    events = [(batch.key_names[k], LABELS[c]) for k, c in zip(batch.keys.tolist(), batch.categories.tolist())]
    return events, [(b.reason, b.origin.get("offset")) for b in batch.bad]


def test_json_objects_with_every_kind_of_bad_message_around_good_ones():
    values = [b'{"category": "red"}', b"not json", b'{"category": "purple"}', b"", b"[1]",
              b'{"colour": "red"}', b'{"category": 2}', b'{"category": true}', b'{"category": 1.0}',
              b"x" * 2000, b'{"category": "green", "extra": [1, 2]}']
    events, bad = _decoded(RecordDecoder(LABELS, max_message_bytes=1000), _records(values))
    assert events == [("k", "red"), ("k", "blue"), ("k", "green")]
    assert bad == [("empty", 3), ("oversized", 9), ("not_json", 1), ("unknown_category", 2), ("not_an_object", 4),
                   ("missing_field", 5), ("wrong_type", 7), ("wrong_type", 8)]


def test_keys_come_from_the_message_key_and_missing_keys_are_dead_lettered_or_defaulted():
    records = _records([b'{"category": "red"}'] * 3, keys=[b"a", None, b"b"])
    events, bad = _decoded(RecordDecoder(LABELS), records)
    assert events == [("a", "red"), ("b", "red")] and bad == [("missing_key", 1)]
    events, bad = _decoded(RecordDecoder(LABELS, default_key="all"), records)
    assert events == [("a", "red"), ("all", "red"), ("b", "red")] and bad == []


def test_keys_can_come_from_a_json_field():
    records = _records([b'{"key": "x", "category": "blue"}', b'{"category": "blue"}', b'{"key": 7, "category": "red"}',
                        b'{"key": null, "category": "red"}', b"{nope"])
    events, bad = _decoded(RecordDecoder(LABELS, key_from="field"), records)
    assert events == [("x", "blue")]
    assert bad == [("missing_field", 1), ("wrong_type", 2), ("missing_field", 3), ("not_json", 4)]
    events, bad = _decoded(RecordDecoder(LABELS, key_from="field", default_key="all"), records)
    assert events == [("x", "blue"), ("all", "blue"), ("all", "red")]
    assert bad == [("wrong_type", 2), ("not_json", 4)], "a key of the wrong type is not replaced by the default"


SEGMENT = [  # Segment-style track calls: the category and the user nested
    {"type": "track", "userId": "u1", "properties": {"category": "red"}, "context": {"user.id": "x1"}},
    {"type": "track", "userId": "u2", "properties": {"category": 2}, "context": {"user.id": "x2"}},
    {"type": "track", "userId": "u1", "properties": {"colour": "red"}},
    {"type": "track", "userId": "u1", "properties": "red"},
    {"type": "track", "userId": "u1", "properties": {"category": 2.0}},
    {"type": "track", "userId": "u1", "properties": {"category": "mauve"}},
    {"type": "track", "userId": ["u1"], "properties": {"category": "red"}},
    {"type": "track", "properties": {"category": "red"}},
]


@pytest.mark.parametrize("category_field", ["properties.category", "/properties/category"])
def test_nested_categories_and_keys_decode_and_the_dead_letters_name_the_path(category_field):
    records = _records([json.dumps(event).encode() for event in SEGMENT])
    batch = RecordDecoder(LABELS, key_from="field", key_field="userId", category_field=category_field).decode(records)
    assert [(batch.key_names[k], LABELS[c]) for k, c in zip(batch.keys.tolist(), batch.categories.tolist())] == [
        ("u1", "red"), ("u2", "blue")]
    assert [(b.reason, b.origin["offset"], b.detail) for b in batch.bad] == [
        ("wrong_type", 6, "'userId' must be a string, got list"),
        ("missing_field", 7, "no 'userId' field and no default key is set"),
        ("missing_field", 2, f"no '{category_field}' field"),
        ("missing_field", 3, f"no '{category_field}' field"),
        ("wrong_type", 4, f"'{category_field}' must be a label or an index, got float"),
        ("unknown_category", 5, "category 'mauve' is not one of the 3 configured"),
    ]


def test_a_nested_key_path_and_a_pointer_to_a_name_with_a_dot():
    records = _records([json.dumps(event).encode() for event in SEGMENT[:2]], keys=[None, None])
    decoder = RecordDecoder(LABELS, key_from="field", key_field="/context/user.id", category_field="properties.category")
    events, bad = _decoded(decoder, records)
    assert events == [("x1", "red"), ("x2", "blue")] and bad == []
    events, bad = _decoded(RecordDecoder(LABELS, key_from="field", key_field="context.user.id"), records)
    assert events == [] and [reason for reason, _ in bad] == ["missing_field"] * 2, "a dotted path splits at dots"


def test_a_pointer_indexes_arrays_in_the_exact_and_the_fast_path():
    values = [b'{"items": [{"category": "green"}, {"category": "red"}]}', b'{"items": []}', b'{"items": {"0": 1}}']
    decoder = RecordDecoder(LABELS, category_field="/items/0/category")
    for _ in range(2):  # the second time from the memo
        events, bad = _decoded(decoder, _records(values))
        assert events == [("k", "green")] and bad == [("missing_field", 1), ("missing_field", 2)]


FRAME = b"\x00\x00\x00\x01\x07"  # magic byte 0, schema id 263


def test_confluent_framed_values_are_decoded_after_their_frame_and_bad_frames_dead_lettered():
    values = [FRAME + b'{"category": "red"}', FRAME + b'{"category": 2}', b'{"category": "red"}', b"\x00\x00\x01",
              b"\x01\x00\x00\x00\x07" + b'{"category": "red"}', FRAME, FRAME + b"{nope", b""]
    for _ in range(2):  # the second time from the memo
        batch = RecordDecoder(LABELS, value_framing="confluent").decode(_records(values))
        assert batch.categories.tolist() == [0, 2]
        assert [(b.reason, b.origin["offset"], b.raw) for b in batch.bad] == [
            ("bad_framing", 2, values[2]), ("bad_framing", 3, values[3]), ("bad_framing", 4, values[4]),
            ("empty", 5, FRAME), ("empty", 7, b""), ("not_json", 6, values[6])], "dead letters keep the frame"
        assert [b.detail for b in batch.bad][:3] == [
            "magic byte 0x7b ('{'), expected 0x00: the value is not schema-registry framed",
            "2 bytes short of the 5-byte schema-registry frame (got 3 bytes)",
            "magic byte 0x01, expected 0x00: the value is not schema-registry framed"]


def test_framing_applies_to_keys_in_the_value_and_nested_fields():
    decoder = RecordDecoder(LABELS, value_framing="confluent", key_from="field", key_field="userId",
                            category_field="properties.category")
    events, bad = _decoded(decoder, _records([FRAME + json.dumps(event).encode() for event in SEGMENT[:2]]))
    assert events == [("u1", "red"), ("u2", "blue")] and bad == []


@pytest.mark.parametrize("value_format, payloads, categories", [
    ("text", [b"red", b"blue", b"nope"], [0, 2]),
    ("scalar", [b'"red"', b"2", b'"nope"'], [0, 2]),
    ("array", [b'["red","blue"]', b'[ "green" ]', b'["nope"]'], [0, 2, 1]),
])
def test_framed_text_scalar_and_array_values(value_format, payloads, categories):
    values = [FRAME + p for p in payloads] + [payloads[0]]
    batch = RecordDecoder(LABELS, value_format=value_format, value_framing="confluent").decode(_records(values))
    assert batch.categories.tolist() == categories
    assert [b.reason for b in batch.bad] == ["bad_framing", "unknown_category"]


@pytest.mark.parametrize("value_format, values", [
    ("scalar", [b'"red"', b"2", b'"nope"', b"{"]),
    ("text", [b"red", b"blue", b"nope", b"\xff"]),
])
def test_scalar_and_text_formats(value_format, values):
    events, bad = _decoded(RecordDecoder(LABELS, value_format=value_format), _records(values))
    assert events == [("k", "red"), ("k", "blue")]
    assert [reason for reason, _ in bad] == (["unknown_category", "not_json"] if value_format == "scalar"
                                             else ["unknown_category", "not_utf8"])


def test_json_arrays_carry_many_events_and_bad_elements_are_dead_lettered_alone():
    values = [json.dumps(["red"] * 500 + ["blue"] * 250).encode(), b'["green", "mauve", 7, 1]', b'{"a": 1}']
    batch = RecordDecoder(LABELS, value_format="array").decode(_records(values))
    assert batch.categories.tolist().count(0) == 500 and batch.categories.tolist().count(2) == 250
    assert batch.categories.tolist().count(1) == 2
    assert [(b.reason, b.origin["offset"], b.origin.get("element")) for b in batch.bad] == [
        ("unknown_category", 1, 1), ("unknown_category", 1, 2), ("wrong_type", 2, None)]


def test_origins_name_topic_partition_offset_and_key():
    bad = RecordDecoder(LABELS).decode(_records([b"oops"], topic="t", partition=3)).bad[0]
    assert bad.origin == {"topic": "t", "partition": 3, "offset": 0, "key": "k"} and bad.raw == b"oops"


@pytest.mark.parametrize("value", [b'["red","blue"]', b'[ "red", "blue" ]', b'["red",\n"blue"]'])
def test_array_layouts_decode_alike_with_or_without_the_fast_path(value):
    batch = RecordDecoder(LABELS, value_format="array").decode(_records([value]))
    assert batch.categories.tolist() == [0, 2] and batch.bad == []


@pytest.mark.parametrize("value, reason", [(b'["red","blue"', "not_json"), (b'["red",]', "not_json"),
                                           (b'["red","blue"],["red"]', "not_json"), (b"[]", None)])
def test_malformed_arrays_never_pass_the_fast_path(value, reason):
    batch = RecordDecoder(LABELS, value_format="array").decode(_records([value]))
    assert len(batch) == 0
    assert [b.reason for b in batch.bad] == ([reason] if reason else [])


def test_labels_with_commas_still_decode_in_arrays():
    decoder = RecordDecoder(["a,b", "c"], value_format="array")
    batch = decoder.decode(_records([b'["a,b","c","a,b"]']))
    assert batch.categories.tolist() == [0, 1, 0]


def test_memoised_values_decode_as_the_first_time():
    decoder = RecordDecoder(LABELS)
    values = [b'{"category": "red"}', b'{"category": 9}', b'{"category": "red"}']
    for _ in range(3):
        events, bad = _decoded(decoder, _records(values))
        assert events == [("k", "red"), ("k", "red")] and bad == [("unknown_category", 1)]


@pytest.mark.parametrize("value_format", ["json", "scalar", "text", "array"])
def test_open_categories_are_added_as_they_appear_in_every_format(value_format):
    from daemon.categories import CategoryTable
    table = CategoryTable(max_categories=3, overflow="dead_letter")
    decoder = RecordDecoder([], value_format=value_format, table=table)
    as_value = {"json": lambda c: json.dumps({"category": c}).encode(), "scalar": lambda c: json.dumps(c).encode(),
                "text": lambda c: str(c).encode()}.get(value_format)
    categories = ["teal", 7, "teal", "7", "plum", "sand", "teal"]
    values = [json.dumps(categories).encode()] if value_format == "array" else [as_value(c) for c in categories]
    batch = decoder.decode(_records(values))
    assert table.labels == ["teal", "7", "plum"], "order of appearance; the integer 7 is the label '7'"
    assert [table.labels[c] for c in batch.categories.tolist()] == ["teal", "7", "teal", "7", "plum", "teal"]
    assert [b.reason for b in batch.bad] == ["category_limit"], "sand came past max_categories"
    again = decoder.decode(_records(values))          # known labels now take the fast path
    assert again.categories.tolist() == batch.categories.tolist() and len(again.bad) == 1


def test_open_categories_fold_into_other_past_the_limit():
    from daemon.categories import OTHER, CategoryTable
    table = CategoryTable(max_categories=3, overflow="other")
    batch = RecordDecoder([], table=table).decode(_records(
        [json.dumps({"category": c}).encode() for c in ["a", "b", "c", "d", "a", -1]]))
    assert table.labels == ["a", "b", OTHER] and table.folded == 2
    assert [table.labels[c] for c in batch.categories.tolist()] == ["a", "b", OTHER, OTHER, "a"]
    assert [b.reason for b in batch.bad] == ["unknown_category"], "a negative index names no category"


def _stamped(values, timestamps):
    return [ConsumerRecord("events", 0, offset, timestamp, 0, b"k", value, None, 1, len(value), [])
            for offset, (value, timestamp) in enumerate(zip(values, timestamps))]


def test_an_events_time_is_its_records_timestamp_and_a_record_without_one_is_dead_lettered():
    values = [b'{"category": "red"}', b'{"category": "blue"}', b'{"category": "green"}']
    batch = RecordDecoder(LABELS).decode(_stamped(values, [1_700_000_000_000, -1, 1_700_000_000_500]))
    assert batch.times.tolist() == [1_700_000_000_000, 1_700_000_000_500]
    assert batch.categories.tolist() == [0, 1] and [(b.reason, b.origin["offset"]) for b in batch.bad] == [("bad_time", 1)]
    arrays = RecordDecoder(LABELS, value_format="array").decode(_stamped([b'["red","blue"]', b'["red"]'], [7, -1]))
    assert arrays.times.tolist() == [7, 7] and [b.reason for b in arrays.bad] == ["bad_time"]


def test_an_events_time_from_a_field_in_rfc_3339_or_epoch_milliseconds_and_one_that_cannot_be_read():
    values = [b'{"category": "red", "at": {"ts": "2026-12-07T10:00:00Z"}}', b'{"category": "red", "at": {"ts": 5}}',
              b'{"category": "blue"}', b'{"category": "blue", "at": {"ts": "noon"}}',
              b'{"category": "green", "at": {"ts": 1796637600001}}', b'{"category": "purple", "at": {"ts": 1}}']
    batch = RecordDecoder(LABELS, time_field="at.ts").decode(_stamped(values, [0] * 6))
    assert batch.times.tolist() == [1_796_637_600_000, 5, 1_796_637_600_001]
    assert [LABELS[c] for c in batch.categories] == ["red", "red", "green"]
    bad = sorted((b.reason, b.origin["offset"]) for b in batch.bad)
    assert bad == [("bad_time", 2), ("bad_time", 3), ("unknown_category", 5)]  # a bad category is said first
    assert "'at.ts'" in next(b.detail for b in batch.bad if b.origin["offset"] == 3)


def test_each_event_of_an_array_message_comes_from_its_record_whichever_path_decoded_it():
    records = _stamped([b'["red","green"]', b'[2, "blue", "purple"]', b'["blue"]'], [1, 2, 3])
    batch = RecordDecoder(LABELS, value_format="array").decode(records)
    assert batch.times.tolist() == [1, 1, 2, 2, 3]
    assert [batch.provenance.of(i)[1]["offset"] for i in range(len(batch))] == [0, 0, 1, 1, 2]
    assert [(b.reason, b.origin["offset"], b.origin["element"]) for b in batch.bad] == [("unknown_category", 1, 2)]
