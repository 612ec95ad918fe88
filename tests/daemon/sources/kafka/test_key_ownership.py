"""One owner per key: keys read from a message field are refused in a group of several instances."""
import asyncio
import json
import time

import pytest

from daemon.errors import StartupError
from daemon.service import Service
from daemon.settings import GumbeldSettings
from tests.daemon.serving import until
from tests.kafka_broker import create_topic, produce

LABELS = ["red", "green", "blue"]


def _settings(bootstrap: str, topic: str, group: str, tmp_path, name: str) -> GumbeldSettings:
    return GumbeldSettings(
        source={"kind": "kafka", "kafka": {"bootstrap_servers": bootstrap, "topics": [topic], "group_id": group,
                                           "key_from": "field", "state": {"enabled": False},
                                           "request_timeout": 3.0, "session_timeout_ms": 6000,
                                           "heartbeat_interval_ms": 500, "rebalance_timeout_ms": 6000}},
        sinks={"stdout": False, "jsonl_path": str(tmp_path / f"{name}.jsonl")},
        dead_letter={"path": str(tmp_path / f"{name}-dead.jsonl")}, model={"categories": LABELS},
        metrics={"port": 0}, checkpoint={"directory": str(tmp_path / name)})


def test_keys_from_a_field_need_the_state_topic_off():
    with pytest.raises(ValueError, match="key_from = field needs source.kafka.state.enabled = false"):
        GumbeldSettings(source={"kind": "kafka", "kafka": {"key_from": "field"}})


async def test_keys_from_a_field_work_alone_and_are_refused_with_a_second_instance(kafka_broker, tmp_path):
    bootstrap, topic, group = kafka_broker.bootstrap, f"owners-{time.time_ns()}", f"g-{time.time_ns()}"
    await create_topic(bootstrap, topic, 2)
    # the same key on both partitions (the message key is not the distribution key)
    await produce(bootstrap, topic, [(f"m{i}".encode(), json.dumps({"key": "shared", "category": "red"}).encode())
                                     for i in range(40)])
    alone = Service(_settings(bootstrap, topic, group, tmp_path, "a"))
    first = asyncio.create_task(alone.serve())
    await until(first, lambda: (tmp_path / "a.jsonl").exists() and '"events":40' in (tmp_path / "a.jsonl").read_text(),
                60, "the one instance counts every event of the shared key")

    second_service = Service(_settings(bootstrap, topic, group, tmp_path, "b"))
    second = asyncio.create_task(second_service.serve())
    done, _ = await asyncio.wait({first, second}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    assert done, "an instance sharing the group with another stops"
    for task in done:
        with pytest.raises(StartupError, match="another instance of group"):
            task.result()
    # the one left, if any, may go on: it is alone in the group again and reads every partition
    for service, task in ((alone, first), (second_service, second)):
        if not task.done():
            service.stopping.set()
    await asyncio.wait({first, second}, timeout=30)
    for task in {first, second} - done:
        assert task.exception() is None or "another instance of group" in str(task.exception())
