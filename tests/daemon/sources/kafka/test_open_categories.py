"""Open categories through a real Kafka-protocol broker: labels learned as they appear, and both
``model.category_overflow`` policies past ``model.max_categories``.

The service runs in-process, consuming a topic of the session's broker and publishing to another,
read back with aiokafka.
"""
import asyncio
import itertools
import json
import time

import numpy as np

from daemon.service import Service
from daemon.settings import GumbeldSettings
from tests.daemon.serving import until
from tests.kafka_broker import consume_all, create_topic, produce

_ids = itertools.count()


def _topics(prefix: str) -> dict[str, str]:
    n = next(_ids)
    return {name: f"{prefix}-{name}-{n}-{int(time.time() * 1000)}" for name in ("events", "learned")}


def _settings(bootstrap: str, topics: dict, tmp_path, overflow: str) -> GumbeldSettings:
    return GumbeldSettings(
        source={"kind": "kafka", "kafka": {"bootstrap_servers": bootstrap, "topics": [topics["events"]],
                                           "group_id": topics["events"], "request_timeout": 3.0,
                                           # a restart rejoins the group in seconds, not the default 45 s
                                           "session_timeout_ms": 6000, "heartbeat_interval_ms": 500,
                                           "rebalance_timeout_ms": 6000}},
        sinks={"stdout": False, "jsonl_path": str(tmp_path / "out.jsonl"),
               "kafka": {"topic": topics["learned"], "enable_idempotence": False, "send_timeout": 5.0}},
        dead_letter={"path": str(tmp_path / "dead.jsonl")},
        model={"categories": "open", "max_categories": 3, "category_overflow": overflow},
        metrics={"port": 0}, publish_interval=0.3, checkpoint={"directory": str(tmp_path / "state")})


def _messages(key: str, categories) -> list[tuple[bytes, bytes]]:
    return [(key.encode(), json.dumps({"category": c}).encode()) for c in categories]


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def _run_until(service: Service, done, what: str) -> None:
    task = asyncio.create_task(service.serve())
    try:
        await until(task, done, 60, what)
        await asyncio.sleep(0.6)  # two more publishes
    finally:
        service.stopping.set()
        assert await asyncio.wait_for(task, timeout=30) == 0


def _first_labels(rng) -> list:
    """300 events of "teal", 7 (an index category: the label "7") and "plum", in that order of appearance."""
    return ["teal", 7, "plum"] + rng.choice(["teal", "7", "plum"], size=297, p=[0.6, 0.3, 0.1]).tolist()


async def test_new_categories_past_the_limit_are_dead_lettered(kafka_broker, tmp_path):
    bootstrap, topics = kafka_broker.bootstrap, _topics("open-dl")
    await create_topic(bootstrap, topics["events"], 1)
    await create_topic(bootstrap, topics["learned"], 1)
    await produce(bootstrap, topics["events"], _messages("k", _first_labels(np.random.default_rng(1))))
    await produce(bootstrap, topics["events"], _messages("k", ["sand"] * 5 + ["teal"] * 20))
    service = Service(_settings(bootstrap, topics, tmp_path, "dead_letter"))
    await _run_until(service, lambda: any(r.get("events") == 320 for r in _lines(tmp_path / "out.jsonl")),
                     "k's 320 good events published")

    snapshot = json.loads((await consume_all(bootstrap, topics["learned"]))[-1].value)
    assert snapshot["key"] == "k" and snapshot["categories"] == ["teal", "7", "plum"]
    assert len(snapshot["probabilities"]) == len(snapshot["empirical"]) == 3
    assert abs(sum(snapshot["probabilities"]) - 1) < 1e-5
    dead = _lines(tmp_path / "dead.jsonl")
    assert len(dead) == 5 and {d["reason"] for d in dead} == {"category_limit"}
    assert service.registry.get_sample_value("gumbeld_bad_events_total", {"reason": "category_limit"}) == 5


def _by_label(snapshot: dict, field: str) -> dict[str, float]:
    return dict(zip(snapshot["categories"], snapshot[field]))


async def test_new_categories_past_the_limit_fold_into_other_and_survive_a_restart(kafka_broker, tmp_path):
    bootstrap, topics = kafka_broker.bootstrap, _topics("open-other")
    await create_topic(bootstrap, topics["events"], 1)
    await create_topic(bootstrap, topics["learned"], 1)
    await produce(bootstrap, topics["events"], _messages("k", ["teal", "plum", "teal"] * 100))
    await produce(bootstrap, topics["events"], _messages("k", ["sand", "rust"] * 50))   # 100 events, no room
    settings = _settings(bootstrap, topics, tmp_path, "other")
    await _run_until(Service(settings), lambda: any(r.get("events") == 400 for r in _lines(tmp_path / "out.jsonl")),
                     "k's 400 events published")
    snapshot = json.loads((await consume_all(bootstrap, topics["learned"]))[-1].value)
    assert snapshot["categories"] == ["teal", "plum", "__other__"]
    assert np.allclose(snapshot["empirical"], [0.5, 0.25, 0.25], atol=1e-6)
    assert snapshot["step"] > 0 and snapshot["divergence"]["tv"] < 0.05, snapshot  # trained from uniform (TV 0.17)
    assert not _lines(tmp_path / "dead.jsonl")

    # a restart resumes the table and the supports from the checkpoint: a new key sees the same indices
    await produce(bootstrap, topics["events"], _messages("j", ["plum", "ochre", "teal", "plum"] * 10))
    restarted = Service(settings)
    await _run_until(restarted, lambda: any(r.get("key") == "j" for r in _lines(tmp_path / "out.jsonl")),
                     "j published after the restart")
    assert restarted.training.learner.table.labels == ["teal", "plum", "__other__"]
    j = [r for r in _lines(tmp_path / "out.jsonl") if r.get("key") == "j"][-1]
    assert j["events"] == 40 and sorted(j["categories"]) == ["__other__", "plum", "teal"]
    empirical = _by_label(j, "empirical")
    assert abs(empirical["plum"] - 0.5) < 1e-6 and abs(empirical["teal"] - 0.25) < 1e-6, j
