"""``gumbeld serve`` on the real broker: it serves every key of the learned-distribution topic, stays
up to date, forgets tombstoned keys, and says 503 until it has read the topic to its end."""
import asyncio
import json
import time

import orjson

from tests.daemon.api.serving import publication
from tests.daemon.process import Daemon
from tests.kafka_broker import create_topic, produce


def _json(daemon: Daemon, path: str) -> tuple[int, dict]:
    status, text = daemon.get(path)
    return status, (json.loads(text) if text.startswith("{") else {})


def test_serve_answers_for_every_key_of_the_topic_once_it_has_caught_up(kafka_broker, tmp_path):
    bootstrap, topic = kafka_broker.bootstrap, f"serve-learned-{int(time.time() * 1000)}"
    serve = Daemon(tmp_path, "--sinks.kafka.topic", topic, "--source.kafka.bootstrap_servers", bootstrap,
                   "--source.kafka.retry_backoff_max", "1", "--source.kafka.request_timeout", "3",
                   read_stdout=False, command="serve")
    try:
        serve.port()
        status, text = serve.get("/readyz")
        assert status == 503 and "catch-up" in text   # the topic does not even exist yet
        assert _json(serve, "/v1/keys/k1")[0] == 503  # so no key can be said to be missing

        first = publication({f"k{i}": [0.1, 0.2, 0.3, 0.4] for i in range(10)}, version=1)
        newer = publication({"k1": [0.4, 0.3, 0.2, 0.1]}, version=2)
        asyncio.run(create_topic(bootstrap, topic, 2))
        foreign = [(b"junk", b"not json"), (b"half", b'{"version": 1}'), (None, first.values[0])]  # skipped, counted
        asyncio.run(produce(bootstrap, topic, [*zip(first.keys, first.values), (b"k3", None), *foreign,
                                               *zip(newer.keys, newer.values)]))
        serve.wait_for(lambda: serve.get("/readyz")[0] == 200, 60)

        status, snapshot = _json(serve, "/v1/keys/k1")
        assert status == 200 and snapshot == orjson.loads(newer.values[0])
        assert _json(serve, "/v1/keys/k3")[0] == 404                     # tombstoned
        assert _json(serve, "/v1/keys/junk")[0] == 404 and _json(serve, "/v1/keys/half")[0] == 404
        assert any("3 records skipped" in line for line in serve.log)
        metrics = serve.get("/metrics")[1]
        for line in ("gumbeld_serve_keys 9.0", "gumbeld_serve_caught_up 1.0", "gumbeld_serve_records_skipped_total 3.0",
                     'gumbeld_api_requests_total{endpoint="/v1/keys/{key}",status="200"} 1.0'):
            assert line in metrics, line
        listed = _json(serve, "/v1/keys?limit=100")[1]
        assert [entry["key"] for entry in listed["keys"]] == sorted(f"k{i}" for i in range(10) if i != 3)

        latest = publication({"k2": [0.25] * 4}, version=7)              # it keeps following
        asyncio.run(produce(bootstrap, topic, list(zip(latest.keys, latest.values))))
        serve.wait_for(lambda: _json(serve, "/v1/keys/k2")[1].get("version") == 7, 30)
    finally:
        code, _ = serve.stop()
    assert code == 0, "".join(serve.log)[-3000:]


def test_serve_without_a_topic_says_why_and_exits_1(tmp_path):
    serve = Daemon(tmp_path, read_stdout=False, command="serve")
    assert serve.proc.wait(timeout=60) == 1
    serve.readers[0].join(10)
    assert "set sinks.kafka.topic" in "".join(serve.log)
