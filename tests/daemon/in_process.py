"""A service in-process for tests: its settings, a source the test feeds, a sink that records."""
import asyncio
import json
import threading

import numpy as np

from daemon.events import EventBatch
from daemon.settings import GumbeldSettings

SHUTDOWN_TIMEOUT = 8.0


def service_settings(tmp_path, **overrides) -> GumbeldSettings:
    base = {
        "metrics": {"port": 0},
        "checkpoint": {"directory": str(tmp_path / "state"), "interval": 2.0},
        "dead_letter": {"path": str(tmp_path / "dead.jsonl")},
        "sinks": {"stdout": False},
        "publish_interval": 0.25,
        "shutdown_timeout": SHUTDOWN_TIMEOUT,
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return GumbeldSettings(**base)


def train_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("gumbeld-train") and t.is_alive()]


class ScriptedSource:
    """A source fed by the test: ``push(key, categories)`` queues a batch; records ``stop``."""

    name = "scripted"
    rebalancing = restoring = False

    def __init__(self) -> None:
        self.queue: asyncio.Queue[EventBatch] = asyncio.Queue()
        self.stopped = 0

    def push(self, key: str, categories) -> None:
        categories = np.asarray(categories, dtype=np.int64)
        self.queue.put_nowait(EventBatch([key], np.zeros(len(categories), np.int64), categories))

    def position(self) -> dict:
        return {}

    def restore(self, position: dict) -> None:
        pass

    async def commit(self, offsets: dict) -> None:
        pass

    def listen(self, listener) -> None:
        pass

    async def stop(self) -> None:
        self.stopped += 1

    async def batches(self):
        while True:
            yield await self.queue.get()


class RecordingSink:
    """Keeps every published line (decoded); records ``aclose``; may run ``on_publish`` first."""

    name = "recording"

    def __init__(self, on_publish=None) -> None:
        self.records: list[dict] = []
        self.closed = 0
        self.on_publish = on_publish

    async def publish(self, publication) -> None:
        if self.on_publish is not None:
            await self.on_publish(publication)
        self.records += [json.loads(line) for line in publication.lines]

    async def aclose(self) -> None:
        self.closed += 1
