"""The service end to end, in-process: learn, publish, serve, checkpoint, drain, resume."""
import asyncio
import io
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from daemon.service import Service, StartupError
from daemon.settings import GumbeldSettings
from daemon.state.checkpoint import CheckpointStore
from tests.daemon.serving import until

TRUTH = np.array([0.0, 0.0, 0.1, 0.3, 0.6])


def _settings(tmp_path, **overrides) -> GumbeldSettings:
    base = {
        "metrics": {"port": 0},
        "checkpoint": {"directory": str(tmp_path / "state"), "interval": 0.5},
        "dead_letter": {"path": str(tmp_path / "dead.jsonl")},
        "source": {"synthetic": {"rate": 200_000.0, "batch_size": 2000}},
        "publish_interval": 0.25,
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return GumbeldSettings(**base)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()



def _events(service: Service) -> int:
    """Events counted into the model so far."""
    return sum(int(c.model.histogram.events.sum()) for c in service.training.learner.classes.values())


def _saved_events(learner: dict) -> int:
    """Events counted into the model of a saved learner state."""
    return sum(int(c["model"]["histogram"]["events"].sum()) for c in learner["classes"].values())

async def _run_until(service: Service, condition, timeout: float = 30.0):
    task = asyncio.create_task(service.serve())
    await until(task, condition, timeout, "the condition")
    return task


def _snapshots(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _close_to_truth(stream: io.StringIO) -> bool:
    snaps = _snapshots(stream)
    return bool(snaps) and 0.5 * np.abs(np.array(snaps[-1]["probabilities"]) - TRUTH).sum() <= 0.01


async def test_learns_publishes_serves_and_drains(tmp_path):
    out = io.StringIO()
    service = Service(_settings(tmp_path), sinks=[_stdout_like(out)])
    task = await _run_until(service, lambda: _close_to_truth(out))
    port = service.http.port
    status, body = await asyncio.to_thread(_get, port, "/metrics")
    assert status == 200 and 'gumbeld_events_total{key="default"}' in body
    assert (await asyncio.to_thread(_get, port, "/readyz"))[0] == 200

    snap = _snapshots(out)[-1]
    assert set(snap) == {"key", "categories", "probabilities", "empirical", "divergence", "temperature", "step",
                         "events", "effective_events", "intervals", "as_of", "published_at", "model", "version"}
    assert snap["as_of"].endswith("Z")  # the synthetic source stamps its events
    assert snap["effective_events"] == snap["events"] and snap["intervals"]["level"] == 0.9  # no prior by default
    assert abs(sum(snap["probabilities"]) - 1.0) <= 1e-6 and snap["published_at"].endswith("Z")
    assert set(snap["divergence"]) == {"tv", "kl", "js"}
    versions = [s["version"] for s in _snapshots(out)]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)

    service.stopping.set()
    started = time.monotonic()
    assert await asyncio.wait_for(task, timeout=10) == 0
    assert time.monotonic() - started < 10
    final = _snapshots(out)[-1]
    assert final["version"] > snap["version"]
    assert (tmp_path / "state" / "checkpoint.pt").exists()


async def test_readyz_turns_503_while_draining(tmp_path):
    service = Service(_settings(tmp_path), sinks=[])
    task = await _run_until(service, lambda: getattr(service, "http", None) is not None and service.training.learner.steps_taken > 0)
    service.health.draining()
    status, body = await asyncio.to_thread(_get, service.http.port, "/readyz")
    assert status == 503 and "draining" in body
    service.stopping.set()
    assert await asyncio.wait_for(task, timeout=10) == 0


async def test_restart_resumes_exactly_from_the_checkpoint(tmp_path):
    first = Service(_settings(tmp_path), sinks=[])
    task = await _run_until(first, lambda: getattr(first, "training", None) is not None and first.training.learner.steps_taken >= 500)
    first.stopping.set()
    await asyncio.wait_for(task, timeout=10)
    saved = CheckpointStore(tmp_path / "state").load()
    steps, events = first.training.learner.steps_taken, _events(first)
    assert events > 0

    second = Service(_settings(tmp_path), sinks=[])
    await second.startup()
    try:
        restored = second.training.learner.state_dict()
        assert second.training.learner.steps_taken == steps
        assert _events(second) == events
        _assert_equal_states(saved["learner"], restored)
        assert second.training.keys.names == ["default"]
    finally:
        await second.shutdown()
    assert second.training.learner.steps_taken >= steps  # continued, never restarted from zero


async def test_corrupt_checkpoint_refuses_to_start_unless_told_to_start_fresh(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "checkpoint.pt").write_bytes(b"definitely not a checkpoint")
    with pytest.raises(StartupError, match="checkpoint"):
        await Service(_settings(tmp_path), sinks=[]).startup()
    fresh = Service(_settings(tmp_path, checkpoint={"fresh_start": True}), sinks=[])
    await fresh.startup()
    assert fresh.training.learner.steps_taken == 0
    await fresh.shutdown()


async def test_checkpoint_of_other_categories_is_refused(tmp_path):
    first = Service(_settings(tmp_path), sinks=[])
    task = await _run_until(first, lambda: getattr(first, "training", None) is not None and first.training.learner.steps_taken > 0)
    first.stopping.set()
    await asyncio.wait_for(task, timeout=10)
    other = _settings(tmp_path, model={"categories": ["a", "b", "c", "d", "e"]})
    with pytest.raises(StartupError, match="categories"):
        await Service(other, sinks=[]).startup()


async def test_training_takes_new_counts_while_a_checkpoint_is_written(tmp_path):
    # the first save waits until the model counted events past those it holds: on the training
    # thread, or with training kept off new counts until it ends, it would wait its 10 s out
    service, grown = Service(_settings(tmp_path), sinks=[]), []

    def save_when_counts_moved(state):
        if not grown:
            held = _saved_events(state["learner"])
            deadline = time.monotonic() + 10
            while _events(service) <= held and time.monotonic() < deadline:
                time.sleep(0.01)
            grown.append(_events(service) - held)
        return save(state)

    task = await _run_until(service, lambda: service.checkpointer is not None)
    save, service.checkpointer.store.save = service.checkpointer.store.save, save_when_counts_moved
    await until(task, lambda: bool(grown), 30, "a checkpoint save")
    service.stopping.set()
    await asyncio.wait_for(task, timeout=10)
    assert grown[0] > 0
    assert _saved_events(service.checkpointer.store.load()["learner"]) > 0


async def test_training_never_blocks_the_event_loop_for_more_than_50ms(tmp_path):
    """Loop lag: how late a 5 ms timer fires, sampled for 3 s while training and ingest run flat out."""
    never_settles = {"settle_tolerance": 1e-9, "settle_floor": 1e-9, "max_steps_awake": 10**9}
    service = Service(_settings(tmp_path, source={"synthetic": {"rate": 0.0, "batch_size": 2000}},
                                publish_interval=0.2, checkpoint={"interval": 1.0}, model=never_settles), sinks=[])
    task = await _run_until(service, lambda: getattr(service, "training", None) is not None and service.training.learner.steps_taken > 0)
    lags, loop = [], asyncio.get_running_loop()
    end = loop.time() + 3.0
    while loop.time() < end:
        before = loop.time()
        await asyncio.sleep(0.005)
        lags.append(loop.time() - before - 0.005)
    steps = service.training.learner.steps_taken
    service.stopping.set()
    await asyncio.wait_for(task, timeout=10)
    assert steps > 200, "training must have been running during the measurement"
    assert max(lags) < 0.050, f"max loop lag {max(lags) * 1000:.1f} ms"


def _stdout_like(stream: io.StringIO):
    from daemon.sinks.local import StreamSink
    return StreamSink(stream)


def _assert_equal_states(a, b, path=""):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_equal_states(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    else:
        assert a == b, path
