"""``gumbeld produce`` against a real broker: counts, encodings, keys and distributions."""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer

from daemon.sources.kafka.decode import RecordDecoder
from daemon.tools.bench.tansu import free_port
from daemon.tools.produce import compression_option, main
from tests.kafka_broker import consume_all, create_topic

LABELS = ["red", "green", "blue"]
KEYS = {"web": [0.5, 0.3, 0.2], "app": [0.1, 0.1, 0.8]}
# chi-square critical value for 2 degrees of freedom at p = 0.001: a correct generator fails
# this 1 time in 1,000 seeds; the seed is fixed, so the test is deterministic anyway
CHI2_CRITICAL_DF2 = 13.816


def _topic(kind: str) -> str:
    return f"produce-{kind}-{uuid.uuid4().hex[:8]}"


def _produce_args(bootstrap: str, topic: str, *extra: str) -> list[str]:
    keys = json.dumps({k: {"probabilities": p} for k, p in KEYS.items()})
    return ["--bootstrap-servers", bootstrap, "--topic", topic, "--keys", keys, "--categories", json.dumps(LABELS),
            "--seed", "7", "--no-idempotence", *extra]


def _chi_square(counts: np.ndarray, probabilities: list[float]) -> float:
    expected = counts.sum() * np.asarray(probabilities)
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("value_format, messages", [("json", 5000), ("scalar", 5000), ("text", 5000), ("array", 5)])
def test_produces_the_configured_distributions_in_each_format(kafka_broker, capsys, value_format, messages):
    topic = _topic(value_format)
    asyncio.run(create_topic(kafka_broker.bootstrap, topic, partitions=4))

    code = main(_produce_args(kafka_broker.bootstrap, topic, "--events", "5000", "--format", value_format))

    assert code == 0
    assert "5000 events in %d messages" % messages in capsys.readouterr().err
    records = asyncio.run(consume_all(kafka_broker.bootstrap, topic, timeout=30))
    assert len(records) == messages
    batch = RecordDecoder(LABELS, value_format=value_format).decode(records)
    assert batch.bad == [] and len(batch) == 5000
    assert sorted(batch.key_names) == sorted(KEYS)
    for i, key in enumerate(batch.key_names):
        counts = np.bincount(batch.categories[batch.keys == i], minlength=len(LABELS))
        assert counts.sum() >= 1000  # keys are drawn uniformly, per event or per array of 1,000 events
        assert _chi_square(counts, KEYS[key]) < CHI2_CRITICAL_DF2, (key, counts.tolist())


def test_values_are_the_documented_encodings(kafka_broker):
    expected = {"json": b'{"category":"%s"}', "scalar": b'"%s"', "text": b"%s"}
    for value_format, template in expected.items():
        topic = _topic(value_format)
        asyncio.run(create_topic(kafka_broker.bootstrap, topic, partitions=1))
        assert main(_produce_args(kafka_broker.bootstrap, topic, "--events", "300", "--format", value_format)) == 0
        values = {r.value for r in asyncio.run(consume_all(kafka_broker.bootstrap, topic))}
        assert values == {template % label.encode() for label in LABELS}


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_are_read_back_whole(kafka_broker, capsys, codec):
    topic = _topic(f"compressed-{codec}")
    asyncio.run(create_topic(kafka_broker.bootstrap, topic, partitions=2))

    code = main(_produce_args(kafka_broker.bootstrap, topic, "--events", "3000", "--compression-type", codec))

    assert code == 0 and "3000 events in 3000 messages" in capsys.readouterr().err
    records = asyncio.run(consume_all(kafka_broker.bootstrap, topic, timeout=30))
    batch = RecordDecoder(LABELS, value_format="json").decode(records)
    assert len(records) == 3000 and batch.bad == [] and sorted(batch.key_names) == sorted(KEYS)


@pytest.mark.parametrize("codec, bits", [("none", 0), ("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4)])
def test_the_record_batches_built_for_sending_carry_the_codec(codec, bits):
    """The batch builder that send_messages fills compresses with the producer's codec (no broker needed)."""
    async def build() -> bytes:
        producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **compression_option(codec))
        builder = producer.create_batch()
        for i in range(200):
            builder.append(key=b"web", value=b'{"category":"red"}', timestamp=None)
        return bytes(builder._build())

    batch = asyncio.run(build())
    assert int.from_bytes(batch[21:23], "big") & 0x07 == bits  # a v2 record batch's attributes: the codec
    assert (len(batch) < 200 * len(b'{"category":"red"}')) == (codec != "none")


def test_an_array_message_carries_batch_events_of_one_key(kafka_broker):
    topic = _topic("array-batch")
    asyncio.run(create_topic(kafka_broker.bootstrap, topic, partitions=2))

    assert main(_produce_args(kafka_broker.bootstrap, topic, "--events", "2500", "--format", "array", "--batch", "1000")) == 0

    records = asyncio.run(consume_all(kafka_broker.bootstrap, topic))
    assert sorted(len(json.loads(r.value)) for r in records) == [500, 1000, 1000]  # the last one is cut short
    assert all(r.key.decode() in KEYS and set(json.loads(r.value)) <= set(LABELS) for r in records)


def test_generated_keys_follow_their_popularity(kafka_broker, capsys):
    """2,000 keys at Zipf 1.1: key-0 is the most frequent and every key seen is one of them."""
    topic = _topic("generated")
    asyncio.run(create_topic(kafka_broker.bootstrap, topic, partitions=4))
    generated = json.dumps({"count": 2000, "popularity_zipf": 1.1, "dirichlet_alpha": 0.5, "seed": 1})
    code = main(["--bootstrap-servers", kafka_broker.bootstrap, "--topic", topic, "--generated-keys", generated,
                 "--categories", json.dumps(LABELS), "--events", "5000", "--seed", "7", "--no-idempotence"])
    assert code == 0
    assert "5000 events in 5000 messages" in capsys.readouterr().err
    records = asyncio.run(consume_all(kafka_broker.bootstrap, topic, timeout=30))
    batch = RecordDecoder(LABELS, value_format="json").decode(records)
    assert batch.bad == [] and len(batch) == 5000
    counts = np.bincount(batch.keys, minlength=len(batch.key_names))
    assert set(batch.key_names) <= {f"key-{i}" for i in range(2000)}
    # p(key-0) = 1/H(2000, 1.1) ≈ 0.169: 846 ± 27 events (bounds at ±6σ); key-1 expects 395
    assert batch.key_names[int(counts.argmax())] == "key-0" and 680 < counts.max() < 1010


def test_a_key_always_goes_to_the_same_partition(kafka_broker):
    topic = _topic("partitions")
    asyncio.run(create_topic(kafka_broker.bootstrap, topic, partitions=4))
    assert main(_produce_args(kafka_broker.bootstrap, topic, "--events", "2000")) == 0
    partitions = {}
    for record in asyncio.run(consume_all(kafka_broker.bootstrap, topic)):
        partitions.setdefault(record.key, set()).add(record.partition)
    assert {k: len(p) for k, p in partitions.items()} == {b"web": 1, b"app": 1}


def test_rate_paces_the_events(kafka_broker, capsys):
    topic = _topic("rate")
    asyncio.run(create_topic(kafka_broker.bootstrap, topic, partitions=1))
    start = time.monotonic()
    assert main(_produce_args(kafka_broker.bootstrap, topic, "--events", "1500", "--rate", "1000")) == 0
    elapsed = time.monotonic() - start
    # deadline pacing: the last round of 50 events is sent at 1.45 s, then waits out its share
    assert 1.4 <= elapsed < 3.0
    assert "1500 events in 1500 messages" in capsys.readouterr().err


def test_sigterm_stops_an_unlimited_run_with_a_summary(kafka_broker):
    topic = _topic("sigterm")
    asyncio.run(create_topic(kafka_broker.bootstrap, topic, partitions=1))
    process = subprocess.Popen([sys.executable, "-m", "daemon", "produce",
                                *_produce_args(kafka_broker.bootstrap, topic, "--rate", "2000")],
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not asyncio.run(consume_all(kafka_broker.bootstrap, topic)) and time.monotonic() < deadline:
            time.sleep(0.2)  # until the producer is up and sending
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    summary = stderr.strip().splitlines()[-1]
    assert summary.startswith("gumbeld produce: ") and "events/s" in summary
    produced = int(summary.split()[2])
    assert produced == len(asyncio.run(consume_all(kafka_broker.bootstrap, topic)))


@pytest.mark.parametrize("options, message", [
    (["--rate", "-1"], "--rate"),
    (["--keys", "{not json"], "--keys"),
    (["--keys", '{"a": {"probabilities": [0.5, 0.6]}}'], "--keys"),
    (["--keys", '{"a": {"probabilities": [0.5, 0.5]}, "b": {"probabilities": [0.2, 0.3, 0.5]}}'], "same number"),
    (["--categories", '["a", "b"]'], "--categories"),
    (["--format", "xml"], "--format"),
    (["--compression-type", "brotli"], "--compression-type"),
    (["--generated-keys", '{"count": 0}'], "--generated-keys"),
    (["--generated-keys", '{"count": 10}', "--keys", '{"a": {"probabilities": [0.5, 0.5]}}'], "not both"),
    (["--generated-keys", '{"count": 10}', "--format", "array"], "not array"),
    (["--generated-keys", '{"count": 10}', "--categories", '["a"]'], "at least two"),
])
def test_bad_options_exit_2_with_a_message(capsys, options, message):
    argv = ["--bootstrap-servers", "127.0.0.1:1", "--topic", "t", *options]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_unreachable_broker_exits_1_after_the_connect_timeout(capsys):
    start = time.monotonic()
    code = main(["--bootstrap-servers", f"127.0.0.1:{free_port()}", "--topic", "t", "--events", "1",
                 "--connect-timeout", "1"])
    assert code == 1
    assert time.monotonic() - start < 10
    assert "cannot reach Kafka at 127.0.0.1:" in capsys.readouterr().err

