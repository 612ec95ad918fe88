"""The daemon's producers compress with sinks.kafka.compression_type, what they write reads back
whole with aiokafka and librdkafka, and gumbeld bench compression reports what each codec costs."""
import asyncio
import json
import time

import pytest

from daemon.kafka.producer import Producer
from daemon.settings import KafkaSourceSettings
from daemon.tools.bench import compression
from tests.clients import librdkafka
from tests.clients.wire import batches
from tests.kafka_broker import consume_all, create_topic


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
async def test_the_producer_writes_batches_in_its_codec_that_read_back_whole(kafka_broker, codec):
    topic = f"codec-{codec}-{time.time_ns()}"
    await create_topic(kafka_broker.bootstrap, topic, 1)
    producer = Producer(KafkaSourceSettings(bootstrap_servers=kafka_broker.bootstrap), enable_idempotence=False,
                        timeout=10.0, compression_type=codec)
    messages = [(f"k{i}".encode(), json.dumps({"n": i, "pad": "x" * 50}).encode(), []) for i in range(300)]
    try:
        await producer.send_all(topic, messages)
    finally:
        await producer.close()
    written = await batches(kafka_broker.bootstrap, topic, [0])
    assert written and {batch.codec for batch in written} == {codec}
    expected = [m[:2] for m in messages]
    assert [(r.key, r.value) for r in await consume_all(kafka_broker.bootstrap, topic)] == expected
    by_librdkafka = await asyncio.to_thread(librdkafka.read, kafka_broker.bootstrap, topic, {0: len(messages)})
    assert [(r.key, r.value) for r in by_librdkafka] == expected


def test_bench_compression_reports_bytes_and_cpu_per_codec_and_payload(kafka_broker, tmp_path, capsys):
    report = tmp_path / "compression.json"
    assert compression.main(["--bootstrap-servers", kafka_broker.bootstrap, "--keys", "300", "--categories", "8",
                             "--rounds", "1", "--json", str(report)]) == 0
    rows = json.loads(report.read_text())["rows"]
    assert {(r["payload"], r["codec"]) for r in rows} == {(p, c) for p in ("snapshots", "state_rows")
                                                          for c in compression.CODECS}
    for row in rows:
        # every key's state row; a snapshot for each key with events (a few drew none)
        assert row["messages"] == 300 if row["payload"] == "state_rows" else 280 < row["messages"] <= 300
        assert row["cpu_seconds"] > 0 and row["wall_seconds"] > 0
        # JSON snapshots repeat their field names and labels: every codec shrinks them
        assert row["ratio"] == 1.0 if row["codec"] == "none" else row["ratio"] < (0.8 if row["payload"] == "snapshots" else 1.0)
    assert "| snapshots | zstd |" in capsys.readouterr().out


def test_wire_bytes_are_the_batches_a_producer_builds():
    messages = [(b"k", b"v" * 100)] * 1000
    plain = compression.wire_bytes(messages, "none")
    assert 1000 * 100 < plain < 1000 * 140  # the values, and a few bytes of framing per record and batch
    assert compression.wire_bytes(messages, "zstd") < plain / 20  # one repeated value compresses to little
