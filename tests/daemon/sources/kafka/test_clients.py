"""gumbeld with the world's Kafka clients, against the real broker.

gumbeld's own tests produce and read with aiokafka, which shares its assumptions. Here the events
come from librdkafka (every codec, idempotent, in committed transactions) and KafkaJS, and the
learned-distribution topic is read by both: what other ecosystems write must be counted exactly,
and what gumbeld publishes — snapshots and tombstones — must be readable by them and match the
published JSON Schema. Records at the edges of the protocol (no key, no value, headers, too large,
a key that is not UTF-8) must each be counted or dead-lettered with their reason, and never hold up
the records behind them on their partition.
"""
from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from tests.clients import kafkajs, librdkafka, wire
from tests.clients.librdkafka import Message
from tests.clients.schema import snapshot_validator
from tests.daemon.process import Daemon
from tests.daemon.sources.kafka.client_runs import (create_topics, daemon_flags, random_events, records_of,
                                                     stop_cleanly, unique_name, wait_counted)

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
TRANSACTIONS = 3


def _send(case: str, bootstrap: str, topic: str, events: list[Message]) -> list[tuple[int, int]]:
    """Send ``events`` as ``case`` says; returns where librdkafka put each (KafkaJS: nothing)."""
    if case == "librdkafka-transactional":  # committed transactions, a commit marker after each
        return librdkafka.produce_transactions(bootstrap, topic, _transactions(events), unique_name("tx"))
    if case == "librdkafka-idempotent":
        return librdkafka.produce(bootstrap, topic, events, {"enable.idempotence": True, "acks": "all"})
    if case == "kafkajs-gzip":
        summary = kafkajs.produce(bootstrap, topic, [(m.key.decode(), m.value.decode()) for m in events],
                                  compression="gzip")
        assert summary == {"sent": len(events), "keys": dict(Counter(m.key.decode() for m in events))}
        return []
    return librdkafka.produce(bootstrap, topic, events, {"compression.type": case.removeprefix("librdkafka-")})


def _transactions(events: list) -> list[list]:
    size = -(-len(events) // TRANSACTIONS)
    return [events[start:start + size] for start in range(0, len(events), size)]


def test_librdkafka_and_kafkajs_producers_are_counted_exactly_with_every_codec(kafka_broker, tmp_path):
    bootstrap = kafka_broker.bootstrap
    cases = [f"librdkafka-{codec}" for codec in CODECS] + ["librdkafka-idempotent", "librdkafka-transactional",
                                                            "kafkajs-gzip"]
    topics = {case: unique_name(case) for case in cases}
    learned, dead = unique_name("learned"), unique_name("dead")

    create_topics(bootstrap, [*topics.values(), learned, dead], 2)

    expected, placed = Counter(), {}
    for seed, case in enumerate(cases):  # three keys of its own per case, 3,000 events in all
        events = random_events([f"{case}-{i}" for i in range(3)], 3_000, seed)
        expected.update(m.key.decode() for m in events)
        placed[case] = _send(case, bootstrap, topics[case], events)

    on_the_wire = {case: asyncio.run(wire.batches(bootstrap, topic, [0, 1])) for case, topic in topics.items()}
    for codec in CODECS:  # the codec really was used: gumbeld decompressed these batches itself
        assert {b.codec for b in on_the_wire[f"librdkafka-{codec}"]} == {codec}
    assert {b.codec for b in on_the_wire["kafkajs-gzip"]} == {"gzip"}
    assert all(b.producer_id >= 0 for b in on_the_wire["librdkafka-idempotent"])
    transactional = on_the_wire["librdkafka-transactional"]
    assert all(b.transactional for b in transactional)
    markers = sum(len({partition for partition, _ in transaction})
                  for transaction in _transactions(placed["librdkafka-transactional"]))
    assert sum(b.control for b in transactional) == markers  # one per transaction and partition it wrote

    daemon = Daemon(tmp_path, *daemon_flags(bootstrap, list(topics.values()), learned, dead))
    try:
        wait_counted(daemon, expected)
    finally:
        stop_cleanly(daemon)  # publishes a final snapshot of every key
    newest = {}
    for record in records_of(bootstrap, learned):
        newest[record.key.decode()] = json.loads(record.value)
    assert {key: snapshot["events"] for key, snapshot in newest.items()} == dict(expected), \
        "".join(line for line in daemon.log if "ERROR" in line or "WARNING" in line)[-4000:]


def test_librdkafka_and_kafkajs_readers_get_every_snapshot_schema_valid_and_the_tombstone(kafka_broker, tmp_path):
    bootstrap = kafka_broker.bootstrap
    events, learned, dead = unique_name("events"), unique_name("learned"), unique_name("dead")

    create_topics(bootstrap, (events, learned, dead), 1)

    # room for two keys: the third evicts the least recent, reader-1, which gets a tombstone. gzip:
    # KafkaJS decodes it natively (snappy, lz4 and zstd need its codec plugins); every codec is read
    # back by aiokafka and librdkafka in test_compression.py
    daemon = Daemon(tmp_path, *daemon_flags(bootstrap, [events], learned, dead, "--model.max_keys", "2",
                                      "--sinks.kafka.compression_type", "gzip"))
    try:
        for seed, key in enumerate(("reader-1", "reader-2", "reader-3")):
            librdkafka.produce(bootstrap, events, random_events([key], 500, seed=20 + seed))
            wait_counted(daemon, {key: 500})
        daemon.wait_for(lambda: any(line.get("evicted") and line["key"] == "reader-1" for line in daemon.snapshots))
    finally:
        stop_cleanly(daemon)

    reference = [(r.offset, r.key.decode(), None if r.value is None else r.value.decode())
                 for r in records_of(bootstrap, learned)]
    # at least once: an eviction whose publish the shutdown interrupted is published again
    tombstones = [(offset, key) for offset, key, value in reference if value is None]
    assert tombstones and {key for _, key in tombstones} == {"reader-1"}
    ends = {0: reference[-1][0] + 1}
    by_librdkafka = [(r.offset, r.key.decode(), None if r.value is None else r.value.decode())
                     for r in librdkafka.read(bootstrap, learned, ends)]
    by_kafkajs = [(r["offset"], r["key"], r["value"]) for r in kafkajs.read(bootstrap, learned, ends)]
    assert by_librdkafka == reference  # every record, the tombstone included, in order
    assert by_kafkajs == reference

    validator = snapshot_validator()
    for offset, key, value in reference:
        if value is None:
            continue
        snapshot = json.loads(value)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(snapshot)]
        assert not errors, f"snapshot at offset {offset} breaks {validator.schema.get('title')}: {errors}"
        assert snapshot["key"] == key
    first_tombstone = tombstones[0][0]
    # its snapshots end there (the tombstone itself may come again: a publish cut short by the stop is repeated)
    after = [offset for offset, key, value in reference if offset > first_tombstone and key == "reader-1" and value]
    assert not after, f"snapshots of an evicted key after its tombstone, at offsets {after}"


# -- records at the edges of the protocol ---------------------------------------------------------
MAX_MESSAGE_BYTES = 4096
GOOD = json.dumps({"category": "a"}).encode()
EDGES = {  # name → the record; all on one partition, in this order, before the good events
    "no key": Message(None, GOOD),
    "tombstone": Message(b"edge", None),
    "headers": Message(b"edge-headers", GOOD, [("trace-id", b"4bf92f35"), ("trace-id", b"twice"),
                                              ("content-type", b"application/json"), ("no-value", None)]),
    "oversized": Message(b"edge", json.dumps({"category": "a", "pad": "x" * MAX_MESSAGE_BYTES}).encode()),
    "key not UTF-8": Message(b"\xff\xfe", GOOD),
}
AFTER = 1_000  # good events behind the edge records on their partition


@pytest.fixture(scope="module")
def edges(kafka_broker, tmp_path_factory) -> dict:
    """The edge records, then good events, consumed by two daemons at once: one with
    ``source.kafka.default_key`` unset, one with it set. Per daemon: where each edge record landed
    (offset), what the learned topic counts per key, and the dead letters by source offset."""
    bootstrap = kafka_broker.bootstrap
    runs = {"strict": [], "defaulted": ["--source.kafka.default_key", "unkeyed"]}
    topics = {run: {part: unique_name(f"edge-{run}-{part}") for part in ("events", "learned", "dead")} for run in runs}

    # one partition: the good events queue behind the edges
    create_topics(bootstrap, [topic for names in topics.values() for topic in names.values()], 1)

    records = [*EDGES.values(), *random_events(["after"], AFTER, seed=30)]
    placed = {run: librdkafka.produce(bootstrap, topics[run]["events"], records) for run in runs}
    daemons = {run: Daemon(tmp_path_factory.mktemp(run), *daemon_flags(
        bootstrap, [topics[run]["events"]], topics[run]["learned"], topics[run]["dead"],
        "--source.kafka.max_message_bytes", str(MAX_MESSAGE_BYTES), *flags)) for run, flags in runs.items()}
    try:
        for daemon in daemons.values():
            wait_counted(daemon, {"after": AFTER})
    finally:
        for daemon in daemons.values():
            stop_cleanly(daemon)  # the final checkpoint sends the dead letters still queued
    outcome = {}
    for run in runs:
        counted = {r.key.decode(): json.loads(r.value)["events"] for r in records_of(bootstrap, topics[run]["learned"])}
        letters = {int(dict(r.headers)["gumbeld.source.offset"]): r for r in records_of(bootstrap, topics[run]["dead"])}
        offsets = dict(zip(EDGES, (offset for _, offset in placed[run])))
        outcome[run] = {"offsets": offsets, "counted": counted, "letters": letters, "topic": topics[run]["events"]}
    return outcome


def _reason(outcome: dict, edge: str) -> str | None:
    letter = outcome["letters"].get(outcome["offsets"][edge])
    return None if letter is None else dict(letter.headers)["gumbeld.reason"].decode()


@pytest.mark.parametrize("run", ["strict", "defaulted"])
def test_no_edge_record_stalls_its_partition(edges, run):
    assert edges[run]["counted"]["after"] == AFTER


def test_a_record_without_key_is_dead_lettered_as_missing_key_unless_a_default_key_is_set(edges):
    assert _reason(edges["strict"], "no key") == "missing_key"
    assert _reason(edges["defaulted"], "no key") is None and edges["defaulted"]["counted"]["unkeyed"] == 1
    assert "unkeyed" not in edges["strict"]["counted"]


@pytest.mark.parametrize("run", ["strict", "defaulted"])
def test_a_tombstone_is_dead_lettered_as_empty(edges, run):
    assert _reason(edges[run], "tombstone") == "empty"


@pytest.mark.parametrize("run", ["strict", "defaulted"])
def test_a_record_with_headers_is_counted(edges, run):
    assert _reason(edges[run], "headers") is None and edges[run]["counted"]["edge-headers"] == 1


@pytest.mark.parametrize("run", ["strict", "defaulted"])
def test_a_record_over_max_message_bytes_is_dead_lettered_as_oversized(edges, run):
    assert _reason(edges[run], "oversized") == "oversized"
    assert "edge" not in edges[run]["counted"]  # neither the tombstone nor the oversized record counts


@pytest.mark.parametrize("run", ["strict", "defaulted"])
def test_a_key_that_is_not_utf8_is_dead_lettered_as_not_utf8(edges, run):
    assert _reason(edges[run], "key not UTF-8") == "not_utf8"


@pytest.mark.parametrize("run", ["strict", "defaulted"])
def test_dead_letters_are_exactly_the_edge_records_and_name_where_they_came_from(edges, run):
    outcome = edges[run]
    expected = {"tombstone", "oversized", "key not UTF-8"} | ({"no key"} if run == "strict" else set())
    assert set(outcome["letters"]) == {outcome["offsets"][edge] for edge in expected}
    for offset, letter in outcome["letters"].items():
        headers = dict(letter.headers)
        assert headers["gumbeld.source.topic"].decode() == outcome["topic"]
        assert headers["gumbeld.source.partition"] == b"0"


@pytest.mark.parametrize("run", ["strict", "defaulted"])
def test_dead_letters_keep_the_original_key_and_value(edges, run):
    outcome, changed = edges[run], {}
    for edge, offset in outcome["offsets"].items():
        letter, sent = outcome["letters"].get(offset), EDGES[edge]
        if letter is None:
            continue
        value = sent.value
        if edge == "oversized":  # gumbeld keeps a prefix of a value too large to take (at most 1 KiB)
            value = sent.value[:len(letter.value or b"")] if 0 < len(letter.value or b"") <= 1024 else sent.value
        if (letter.key, letter.value) != (sent.key, value):
            changed[edge] = {"sent": (sent.key, sent.value), "dead letter": (letter.key, letter.value)}
    assert not changed
