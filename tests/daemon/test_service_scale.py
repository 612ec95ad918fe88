"""The service in-process at scale and through its key lifecycle: shutdown under load, settling,
change-based publishing with evictions (startup failures: test_service_startup.py).

No Kafka here (see ``tests/daemon/sources/kafka/test_evictions.py``). The whole file runs in well under a
minute on 2 cores.
"""
import asyncio
import json
import os
import time
from datetime import datetime

import numpy as np

from daemon.learning.pending import Pending
from daemon.service import Service
from tests.daemon.in_process import (
    SHUTDOWN_TIMEOUT,
    RecordingSink,
    ScriptedSource,
    service_settings,
    train_threads,
)
from tests.daemon.serving import until


def _metric(service: Service, name: str, labels: dict | None = None) -> float | None:
    return service.registry.get_sample_value(name, labels or {})




def _started(service: Service) -> bool:
    return getattr(service, "_started", False)


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def _tv(p, q) -> float:
    return 0.5 * float(np.abs(np.asarray(p, dtype=float) - np.asarray(q, dtype=float)).sum())


# -- shutdown at scale ------------------------------------------------------------------------------
async def test_shutdown_of_20000_keys_under_load_is_within_the_timeout_and_checkpoints_after_the_stop(tmp_path):
    """20,000 generated keys × K = 16 at 200,000 events/s for ~5 s, then stop: serve() returns 0
    within ``shutdown_timeout``, and the final checkpoint was written after the stop with every key."""
    out = tmp_path / "snapshots.jsonl"
    settings = service_settings(
        tmp_path, model={"n_categories": 16, "max_keys": 20_000}, publish_interval=1.0,
        sinks={"jsonl_path": str(out)},
        source={"synthetic": {"generated_keys": {"count": 20_000, "popularity_zipf": 1.1, "dirichlet_alpha": 0.5,
                                                 "seed": 0}, "rate": 200_000.0, "batch_size": 2000}})
    service = Service(settings)
    task = asyncio.create_task(service.serve())
    await until(task, lambda: _started(service), 60, "startup")
    streaming = time.monotonic()
    await until(task, lambda: time.monotonic() - streaming >= 5.0 and _metric(service, "gumbeld_training_steps_total"),
                 30, "5 s of streaming with training")
    keys_seen = len(service.training.keys)
    assert keys_seen > 1_000, "the stream must have reached many keys"

    stopped_at = time.time()
    started = time.monotonic()
    service.stopping.set()
    assert await asyncio.wait_for(task, timeout=SHUTDOWN_TIMEOUT + 5) == 0
    took = time.monotonic() - started
    assert took < SHUTDOWN_TIMEOUT, f"shutdown took {took:.2f} s"

    checkpoint = tmp_path / "state" / "checkpoint.pt"
    assert checkpoint.exists()
    assert os.stat(checkpoint).st_mtime >= stopped_at - 0.01, "the final checkpoint is written after the stop"
    assert service.checkpointer.store.saved_at >= stopped_at
    saved = service.checkpointer.store.load()
    names = [n for n in saved["keys"]["names"] if n is not None]
    assert len(names) >= keys_seen and len(set(names)) == len(names)
    assert train_threads() == []
    assert any(line.startswith(b'{"key":"key-') for line in out.read_bytes().splitlines()[-100:])


async def test_a_stop_while_work_waits_for_the_training_thread_loses_no_counted_event(tmp_path):
    """The final checkpoint holds every event the source emitted (its position says how many).

    One training round runs long (a slow step); the publishes that took pending counts from ingest
    queue behind it on the training thread, and the stop arrives then. What they took must still
    reach the model, or the checkpoint records a source position past events it never counted.
    """
    settings = service_settings(
        tmp_path, model={"n_categories": 8, "max_keys": 5_000}, publish_interval=0.1, checkpoint={"interval": 30.0},
        source={"synthetic": {"generated_keys": {"count": 2_000}, "rate": 100_000.0, "batch_size": 1000}})
    service = Service(settings, sinks=[])
    task = asyncio.create_task(service.serve())
    await until(task, lambda: _started(service) and service.training.learner.steps_taken > 0, 60, "training")
    loop, train, calls = asyncio.get_running_loop(), service.training.learner.train, []

    def slow_round(pending):
        calls.append(pending)
        if len(calls) == 1:
            time.sleep(0.4)                                  # publishes queue up behind it meanwhile
            loop.call_soon_threadsafe(service.stopping.set)  # SIGTERM
            time.sleep(0.2)                                  # the main loop ends while they wait
        return train(pending)

    service.training.learner.train = slow_round
    assert await asyncio.wait_for(task, timeout=SHUTDOWN_TIMEOUT + 5) == 0
    saved = service.checkpointer.store.load()
    emitted = saved["source"]["emitted_total"]
    counted = sum(int(c["model"]["histogram"]["events"].sum()) for c in saved["learner"]["classes"].values())
    assert counted == emitted, (f"the checkpoint's source position includes {emitted} events, "
                                f"its model counted {counted}: {emitted - counted} lost")


# -- settling ---------------------------------------------------------------------------------------
async def test_a_settled_service_does_no_training(tmp_path):
    """A finite stream of three keys: once it ends and the keys settle, no training step runs."""
    keys = {"x": [0.7, 0.2, 0.1, 0.0], "y": [0.25, 0.25, 0.25, 0.25], "z": [0.0, 0.1, 0.3, 0.6]}
    settings = service_settings(tmp_path, model={"categories": ["a", "b", "c", "d"]},
                         source={"synthetic": {"keys": {k: {"probabilities": p} for k, p in keys.items()},
                                               "events": 30_000, "rate": 200_000.0, "batch_size": 1000}})
    service = Service(settings, sinks=[])
    task = asyncio.create_task(service.serve())
    try:
        await until(task, lambda: _started(service) and service.source.emitted_total >= 30_000, 60, "end of stream")

        def quiet_for_two_seconds():
            if _metric(service, "gumbeld_active_keys") != 0:
                quiet_for_two_seconds.since = None
                return False
            steps = _metric(service, "gumbeld_training_steps_total")
            if quiet_for_two_seconds.since is None or steps != quiet_for_two_seconds.steps:
                quiet_for_two_seconds.since, quiet_for_two_seconds.steps = time.monotonic(), steps
                return False
            return time.monotonic() - quiet_for_two_seconds.since >= 2.0
        quiet_for_two_seconds.since = quiet_for_two_seconds.steps = None

        await until(task, quiet_for_two_seconds, 40, "settled: no training step for 2 s")
        assert _metric(service, "gumbeld_active_keys") == 0
        assert _metric(service, "gumbeld_settled_keys") == 3
        assert _metric(service, "gumbeld_training_steps_total") > 0
        t = service.training.learner.steps_taken
        await asyncio.sleep(0.5)
        assert service.training.learner.steps_taken == t
        # nothing changes any more: a checkpoint finds the saved one current and writes nothing
        await service.checkpoint()
        written, saved_at = _metric(service, "gumbeld_checkpoints_written_total"), service.checkpointer.store.path.stat().st_mtime
        await service.checkpoint()
        assert _metric(service, "gumbeld_checkpoints_written_total") == written
        assert service.checkpointer.store.path.stat().st_mtime == saved_at
        assert _metric(service, "gumbeld_checkpoint_age_seconds") < 1.0
    finally:
        service.stopping.set()
        assert await asyncio.wait_for(task, timeout=SHUTDOWN_TIMEOUT + 5) == 0


# -- change-based publishing and evictions ----------------------------------------------------------
async def test_json_lines_get_changed_keys_only_and_an_eviction_record_after_the_ttl(tmp_path):
    """``steady`` gets events all along: published at every interval with more events. ``quiet``
    gets events once: republished only while its learned distribution moves by more than
    ``publish_tolerance``, then only every ``publish_full_interval``, and after ``key_ttl`` without
    events it is evicted: one record ``{"key", "evicted", "reason": "ttl", "evicted_at"}``, then nothing."""
    out = tmp_path / "snapshots.jsonl"
    ttl, full, interval, tolerance = 5.0, 1.5, 0.2, 1e-3
    settings = service_settings(tmp_path, model={"categories": ["a", "b", "c"], "key_ttl": ttl},
                         source={"synthetic": {"keys": {"unused": {"probabilities": [0.5, 0.3, 0.2]}}}},
                         sinks={"jsonl_path": str(out)}, publish_interval=interval, publish_full_interval=full,
                         publish_tolerance=tolerance)
    source = ScriptedSource()
    service = Service(settings, source=source)
    task = asyncio.create_task(service.serve())
    rng = np.random.default_rng(1)
    await until(task, lambda: _started(service), 60, "startup")
    source.push("quiet", rng.choice(3, size=3000, p=[0.5, 0.3, 0.2]))
    quiet_last_event = time.time()

    def lines() -> list[dict]:
        return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []

    try:
        while not any(r.get("evicted") for r in lines()):
            assert not task.done(), task.exception()
            assert time.time() - quiet_last_event < ttl + 10, "no eviction record"
            source.push("steady", rng.choice(3, size=50, p=[0.2, 0.2, 0.6]))
            await asyncio.sleep(0.1)
        assert "quiet" not in service.training.keys
        assert _metric(service, "gumbeld_events_total", {"key": "quiet"}) is None, "its series are removed"
        assert _metric(service, "gumbeld_keys_evicted_total", {"reason": "ttl"}) == 1
        for _ in range(5):  # a few more intervals: nothing more of quiet
            source.push("steady", rng.choice(3, size=50, p=[0.2, 0.2, 0.6]))
            await asyncio.sleep(0.1)
    finally:
        service.stopping.set()
        assert await asyncio.wait_for(task, timeout=SHUTDOWN_TIMEOUT + 5) == 0

    records = lines()
    evictions = [r for r in records if r.get("evicted")]
    assert len(evictions) == 1
    (eviction,) = evictions
    assert set(eviction) == {"key", "evicted", "reason", "evicted_at"}
    assert eviction["key"] == "quiet" and eviction["evicted"] is True and eviction["reason"] == "ttl"
    idle = _epoch(eviction["evicted_at"]) - quiet_last_event
    assert ttl <= idle <= ttl + 2 * interval + 1.0, f"evicted {idle:.2f} s after its last event"
    after = records[records.index(eviction) + 1:]
    assert not [r for r in after if r.get("key") == "quiet"], "an evicted key is not published again"

    quiet = [r for r in records if r.get("key") == "quiet" and not r.get("evicted")]
    assert quiet and all(r["events"] == 3000 for r in quiet)
    assert [r["version"] for r in quiet] == list(range(1, len(quiet) + 1))
    for previous, current in zip(quiet, quiet[1:]):
        gap = _epoch(current["published_at"]) - _epoch(previous["published_at"])
        moved = _tv(previous["probabilities"], current["probabilities"])
        assert gap >= full - 0.05 or moved > tolerance * 0.99, \
            f"republished after {gap:.2f} s though it moved only {moved:.2e} (no new events)"
    gaps = [_epoch(b["published_at"]) - _epoch(a["published_at"]) for a, b in zip(quiet, quiet[1:])]
    assert any(g >= full - 0.05 for g in gaps), f"never republished unchanged after the full interval: {gaps}"
    assert max(gaps) <= full + interval + 1.0, f"an unchanged key waited {max(gaps):.2f} s for its full republish"

    steady = [r for r in records if r.get("key") == "steady"]
    assert len(steady) >= 10
    events = [r["events"] for r in steady]
    assert events == sorted(events) and events[-1] > events[0]
    steady_gaps = [_epoch(b["published_at"]) - _epoch(a["published_at"]) for a, b in zip(steady, steady[1:])]
    assert max(steady_gaps) < full - 0.2, f"a key with new events waited {max(steady_gaps):.2f} s to be published"


async def test_a_snapshot_holds_the_events_of_its_training_round_and_the_final_one_every_event(tmp_path):
    """Training stops taking counts after the key's first 300 events; 200 more are counted by
    ingest. The snapshots published meanwhile show the model as its rounds left it (300 events);
    the final one, at shutdown, counts the rest in first."""
    out = tmp_path / "snapshots.jsonl"
    settings = service_settings(tmp_path, model={"categories": ["a", "b", "c"]}, sinks={"jsonl_path": str(out)},
                                source={"synthetic": {"keys": {"unused": {"probabilities": [0.5, 0.3, 0.2]}}}},
                                publish_interval=0.1, publish_full_interval=0.2)
    source, rng = ScriptedSource(), np.random.default_rng(2)
    service = Service(settings, source=source)
    task = asyncio.create_task(service.serve())

    def snapshots() -> list[dict]:
        return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []

    try:
        await until(task, lambda: _started(service), 60, "startup")
        source.push("k", rng.choice(3, size=300, p=[0.5, 0.3, 0.2]))
        await until(task, lambda: any(r.get("events") == 300 for r in snapshots()), 30, "the first snapshot")
        service.training.take = lambda: Pending(service.training.keys.n_rows, None, [])  # training takes no more counts
        source.push("k", rng.choice(3, size=200, p=[0.5, 0.3, 0.2]))
        await until(task, lambda: _metric(service, "gumbeld_events_total", {"key": "k"}) == 500, 30, "ingest")
        published = len(snapshots())
        await until(task, lambda: len(snapshots()) >= published + 3, 30, "three more snapshots")
    finally:
        service.stopping.set()
        assert await asyncio.wait_for(task, timeout=SHUTDOWN_TIMEOUT + 5) == 0
    events = [r["events"] for r in snapshots() if r.get("key") == "k"]
    assert set(events[:-1]) == {300} and events[-1] == 500, events


async def test_evictions_collected_by_a_publish_cut_short_by_the_stop_are_still_delivered(tmp_path):
    """SIGTERM while a sink is taking a publication with evictions: the final publish (or the
    checkpoint, for the next start) still carries every eviction — a tombstone is delivered at least once."""
    service: Service | None = None
    cut_short = asyncio.Event()

    async def stop_during_an_eviction_publish(publication):
        if publication.evictions and not cut_short.is_set():
            cut_short.set()
            service.stopping.set()
            await asyncio.sleep(1.0)  # the sink is slow (a broker acknowledging): the stop arrives meanwhile

    sink = RecordingSink(on_publish=stop_during_an_eviction_publish)
    settings = service_settings(tmp_path, model={"n_categories": 4, "max_keys": 50}, publish_interval=0.2,
                         source={"synthetic": {"generated_keys": {"count": 500, "popularity_zipf": 0.5},
                                               "rate": 20_000.0, "batch_size": 20}})
    service = Service(settings, sinks=[sink])
    assert await asyncio.wait_for(service.serve(), timeout=60) == 0
    assert cut_short.is_set()
    evicted = _metric(service, "gumbeld_keys_evicted_total", {"reason": "max_keys"})
    assert evicted and evicted > 0
    delivered = sum(1 for r in sink.records if r.get("evicted"))
    pending = len(service.checkpointer.store.load()["evictions"])
    assert delivered + pending >= evicted, \
        f"{evicted:.0f} keys evicted, {delivered} eviction records delivered, {pending} kept for the next start"
