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
import itertools
import json
import time
from collections import Counter

import numpy as np
import pytest

from tests.clients import kafkajs, librdkafka, wire
from tests.clients.librdkafka import Message
from tests.clients.schema import snapshot_validator
from tests.daemon.process import Daemon
from tests.kafka_broker import consume_all, create_topic

LABELS = ["a", "b", "c", "d"]
TRUTH = [0.4, 0.3, 0.2, 0.1]
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
TRANSACTIONS = 3
_ids = itertools.count()


def _name(prefix: str) -> str:
    return f"clients-{prefix}-{next(_ids)}-{int(time.time() * 1000)}"


def _create_topics(bootstrap: str, topics, partitions: int) -> None:
    async def create() -> None:
        for topic in topics:
            await create_topic(bootstrap, topic, partitions)
    asyncio.run(create())


def _events(keys: list[str], n: int, seed: int) -> list[Message]:
    """``n`` JSON events ``{"category": …}``, each keyed by one of ``keys`` at random (fixed seed)."""
    rng = np.random.default_rng(seed)
    return [Message(keys[k].encode(), json.dumps({"category": LABELS[c]}).encode())
            for k, c in zip(rng.integers(len(keys), size=n), rng.choice(len(LABELS), size=n, p=TRUTH))]


def _flags(bootstrap: str, topics: list[str], learned: str, dead: str, *extra: str) -> list[str]:
    return ["--source.kind", "kafka", "--source.kafka.bootstrap_servers", bootstrap,
            "--source.kafka.topics", json.dumps(topics), "--source.kafka.group_id", _name("group"),
            "--source.kafka.request_timeout", "3", "--source.kafka.retry_backoff_max", "2",
            # the broker holds a join for a share of the rebalance timeout, waiting for other members
            "--source.kafka.session_timeout_ms", "6000", "--source.kafka.rebalance_timeout_ms", "2000",
            "--sinks.kafka.topic", learned, "--sinks.kafka.enable_idempotence", "false",  # Tansu lacks aiokafka's
            "--sinks.kafka.send_timeout", "5", "--dead_letter.topic", dead,               # InitProducerId
            "--model.categories", json.dumps(LABELS), "--publish_interval", "0.3", "--checkpoint.interval", "1",
            *extra]


def _latest(lines: list[dict]) -> dict[str, dict]:
    """Each key's newest snapshot among the daemon's stdout lines (eviction records end a key)."""
    latest: dict[str, dict] = {}
    for line in lines:
        if line.get("evicted"):
            latest.pop(line["key"], None)
        else:
            latest[line["key"]] = line
    return latest


def _counted(daemon: Daemon, expected: dict[str, int], timeout: float = 60.0) -> None:
    """Wait until every key of ``expected`` has a snapshot counting at least its events."""
    def reached() -> bool:
        latest = _latest(list(daemon.snapshots))
        return all(key in latest and latest[key]["events"] >= n for key, n in expected.items())
    daemon.wait_for(reached, timeout)


def _stop(daemon: Daemon) -> None:
    code, _ = daemon.stop()
    assert code == 0, "".join(daemon.log)[-4000:]


def _published(bootstrap: str, topic: str) -> list:
    """The records of ``topic`` as aiokafka reads them: the reference the other readers must match."""
    return asyncio.run(consume_all(bootstrap, topic, timeout=20))


def _send(case: str, bootstrap: str, topic: str, events: list[Message]) -> list[tuple[int, int]]:
    """Send ``events`` as ``case`` says; returns where librdkafka put each (KafkaJS: nothing)."""
    if case == "librdkafka-transactional":  # committed transactions, a commit marker after each
        return librdkafka.produce_transactions(bootstrap, topic, _transactions(events), _name("tx"))
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
    topics = {case: _name(case) for case in cases}
    learned, dead = _name("learned"), _name("dead")

    _create_topics(bootstrap, [*topics.values(), learned, dead], 2)

    expected, placed = Counter(), {}
    for seed, case in enumerate(cases):  # three keys of its own per case, 3,000 events in all
        events = _events([f"{case}-{i}" for i in range(3)], 3_000, seed)
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

    daemon = Daemon(tmp_path, *_flags(bootstrap, list(topics.values()), learned, dead))
    try:
        _counted(daemon, expected)
    finally:
        _stop(daemon)  # publishes a final snapshot of every key
    newest = {}
    for record in _published(bootstrap, learned):
        newest[record.key.decode()] = json.loads(record.value)
    assert {key: snapshot["events"] for key, snapshot in newest.items()} == dict(expected), \
        "".join(line for line in daemon.log if "ERROR" in line or "WARNING" in line)[-4000:]


def test_librdkafka_and_kafkajs_readers_get_every_snapshot_schema_valid_and_the_tombstone(kafka_broker, tmp_path):
    bootstrap = kafka_broker.bootstrap
    events, learned, dead = _name("events"), _name("learned"), _name("dead")

    _create_topics(bootstrap, (events, learned, dead), 1)

    # room for two keys: the third evicts the least recent, reader-1, which gets a tombstone. gzip:
    # KafkaJS decodes it natively (snappy, lz4 and zstd need its codec plugins); every codec is read
    # back by aiokafka and librdkafka in test_compression.py
    daemon = Daemon(tmp_path, *_flags(bootstrap, [events], learned, dead, "--model.max_keys", "2",
                                      "--sinks.kafka.compression_type", "gzip"))
    try:
        for seed, key in enumerate(("reader-1", "reader-2", "reader-3")):
            librdkafka.produce(bootstrap, events, _events([key], 500, seed=20 + seed))
            _counted(daemon, {key: 500})
        daemon.wait_for(lambda: any(line.get("evicted") and line["key"] == "reader-1" for line in daemon.snapshots))
    finally:
        _stop(daemon)

    reference = [(r.offset, r.key.decode(), None if r.value is None else r.value.decode())
                 for r in _published(bootstrap, learned)]
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
    topics = {run: {part: _name(f"edge-{run}-{part}") for part in ("events", "learned", "dead")} for run in runs}

    # one partition: the good events queue behind the edges
    _create_topics(bootstrap, [topic for names in topics.values() for topic in names.values()], 1)

    records = [*EDGES.values(), *_events(["after"], AFTER, seed=30)]
    placed = {run: librdkafka.produce(bootstrap, topics[run]["events"], records) for run in runs}
    daemons = {run: Daemon(tmp_path_factory.mktemp(run), *_flags(
        bootstrap, [topics[run]["events"]], topics[run]["learned"], topics[run]["dead"],
        "--source.kafka.max_message_bytes", str(MAX_MESSAGE_BYTES), *flags)) for run, flags in runs.items()}
    try:
        for daemon in daemons.values():
            _counted(daemon, {"after": AFTER})
    finally:
        for daemon in daemons.values():
            _stop(daemon)  # the final checkpoint sends the dead letters still queued
    outcome = {}
    for run in runs:
        counted = {r.key.decode(): json.loads(r.value)["events"] for r in _published(bootstrap, topics[run]["learned"])}
        letters = {int(dict(r.headers)["gumbeld.source.offset"]): r for r in _published(bootstrap, topics[run]["dead"])}
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


def test_librdkafka_create_times_are_the_event_times_and_events_past_the_lateness_are_dead_lettered(kafka_broker,
                                                                                                     tmp_path):
    """One partition, in this order: on time, 30 s older (within a lateness of 60 s), 120 s older
    (late), then 200 events on time. Exactly the late record is dead-lettered, as ``late``."""
    bootstrap = kafka_broker.bootstrap
    events, learned, dead = _name("times"), _name("times-learned"), _name("times-dead")

    _create_topics(bootstrap, (events, learned, dead), 1)
    now = int(time.time() * 1000)
    good = json.dumps({"category": "a"}).encode()
    stamped = [Message(b"clock", good, timestamp=t) for t in (now, now - 30_000, now - 120_000)]
    stamped += [Message(b"clock", m.value, timestamp=now + 1 + i) for i, m in enumerate(_events(["clock"], 200, seed=40))]
    placed = librdkafka.produce(bootstrap, events, stamped)
    daemon = Daemon(tmp_path, *_flags(bootstrap, [events], learned, dead, "--model.allowed_lateness", "60s"))
    try:
        _counted(daemon, {"clock": 202})
    finally:
        _stop(daemon)
    assert _latest(list(daemon.snapshots))["clock"]["events"] == 202
    letters = _published(bootstrap, dead)
    assert [(int(dict(r.headers)["gumbeld.source.offset"]), dict(r.headers)["gumbeld.reason"]) for r in letters] == [
        (placed[2][1], b"late")]


def test_a_topic_replayed_in_polls_of_another_size_learns_the_same_histograms_in_event_time(kafka_broker, tmp_path):
    """Two hours of librdkafka CreateTimes (out of order by up to 20 s), three keys at rates 25×
    apart, forgetting with a half-life of 5 minutes of event time: one instance reads polls of
    1,000 records, another of 7. Their final snapshots agree on every key's histogram (to the
    float32 rounding of the published values), mass and watermark. (Without the pooled prior, whose
    fits depend on when they ran, the mass is the histogram's alone.)"""
    bootstrap = kafka_broker.bootstrap
    events, learned, dead = _name("replay"), _name("replay-learned"), _name("replay-dead")
    _create_topics(bootstrap, (events, learned, dead), 1)
    rng = np.random.default_rng(41)
    start, n = int(time.time() * 1000) - 7_200_000, 3000
    keys = rng.choice(["fast", "middle", "slow"], size=n, p=[25 / 31, 5 / 31, 1 / 31])
    stamps = start + np.sort(rng.integers(0, 7_200_000, n)) + rng.integers(-20_000, 20_000, n)
    sent = [Message(key.encode(), json.dumps({"category": LABELS[c]}).encode(), timestamp=int(t))
            for key, c, t in zip(keys, rng.choice(len(LABELS), size=n, p=TRUTH), stamps)]
    librdkafka.produce(bootstrap, events, sent)
    expected = dict(Counter(str(k) for k in keys))
    finals = []
    for polls in ("1000", "7"):
        daemon = Daemon(tmp_path / polls, *_flags(bootstrap, [events], learned, dead, "--model.half_life", "5m",
                                                   "--model.allowed_lateness", "60s", "--model.prior", "none",
                                                   "--source.kafka.max_poll_records", polls))
        try:
            _counted(daemon, expected)
        finally:
            _stop(daemon)
        finals.append(_latest(list(daemon.snapshots)))
    one, other = finals
    assert {key: s["events"] for key, s in one.items()} == {key: s["events"] for key, s in other.items()} == expected
    for key in expected:
        assert one[key]["as_of"] == other[key]["as_of"] is not None
        np.testing.assert_allclose(one[key]["empirical"], other[key]["empirical"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(one[key]["effective_events"], other[key]["effective_events"], rtol=1e-6)
    # forgetting in time: the slow key weighs far fewer events than it counted, as the fast one does
    assert one["slow"]["effective_events"] < 0.5 * expected["slow"]
