"""``gumbeld bench scale --catch-up``: gumbeld started on a backlog already in its Kafka topic.

Usage: ``gumbeld bench scale --catch-up [--keys 10000,100000] [--backlog 2000000] [--partitions 4]
[--after-seconds 35] [--bootstrap-servers HOST:PORT] [--zipf 1.1] [--dirichlet-alpha 0.5]
[--categories 16] [--seed 0] [--keep DIR] [--json PATH]``

Per key count, a topic of ``--partitions`` partitions is filled with ``--backlog`` single-event
JSON messages over N generated keys (popularity, distributions and seed as in the other runs) by
the load generator of ``gumbeld produce``; only then does ``gumbeld run`` start on it with the
Kafka source, as a new consumer group (from the earliest offset, state topics on): a deployment
starting on a backlog. Every 0.25 s the harness scrapes ``/metrics``; a thread probes ``/livez``
every 20 ms. Two windows are measured:

- ``catch_up``: from the last scrape before the first event was counted to the first scrape with
  the whole backlog counted; ``catch_up_events_per_second`` over the scrapes within it;
- ``after``: the ``--after-seconds`` that follow, which hold the first checkpoint of the keys
  caught up (``checkpoint.interval``, 30 s) and their publishes.

In each, the event-loop lag from the daemon's own ``gumbeld_event_loop_lag_seconds`` (how late a
0.1-s timer fires: p99, linear within a bucket, and the worst as its bucket's upper bound) and
the ``/livez`` round trips seen from outside (p99 and worst; a round trip spans several turns of
the loop). Without ``--bootstrap-servers`` a local Tansu broker is started.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import numpy as np
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ...settings import GeneratedKeys, SyntheticSettings
from ..produce import produce_events, start_producer
from ..produce_plan import ProducePlan
from .ingest_pass import delete_topics
from .scale_probe import (
    MIB, LivenessProber, finite, lag_percentile, lag_worst, percentile, rounded, rss_bytes, scrape, start_daemon)
from .scale_runs import measure_row
from .tansu import bench_broker

SAMPLE_SECONDS = 0.25
PROBE_SECONDS = 0.02
CATCH_UP_TABLE = ("keys", "backlog", "catch_up_seconds", "catch_up_events_per_second", "loop_lag_p99_s",
                  "loop_lag_max_s", "livez_p99_s", "livez_max_s", "after_loop_lag_p99_s", "after_loop_lag_max_s",
                  "after_livez_max_s", "checkpoints_written", "rss_mib", "exit_code")
CATCH_UP_REQUIRED = (*CATCH_UP_TABLE, "after_livez_p99_s", "livez_probes", "shutdown_seconds", "produce_seconds")


def add_catch_up_arguments(parser) -> None:
    parser.add_argument("--catch-up", action="store_true",
                        help="instead of the synthetic runs: gumbeld started on a Kafka backlog, per --keys")
    parser.add_argument("--backlog", type=int, default=2_000_000, help="--catch-up: events in the topic (default 2,000,000)")
    parser.add_argument("--partitions", type=int, default=4, help="--catch-up: partitions of the topic (default 4)")
    parser.add_argument("--after-seconds", type=float, default=35.0,
                        help="--catch-up: seconds measured after the catch-up, a checkpoint among them (default 35)")
    parser.add_argument("--catch-up-timeout", type=float, default=900.0,
                        help="--catch-up: seconds the backlog may take to be counted (default 900)")
    parser.add_argument("--bootstrap-servers", help="--catch-up: the Kafka to use (default: a local Tansu broker)")


async def fill_backlog(bootstrap: str, topic: str, keys: int, args) -> float:
    """Create ``topic`` and write the backlog to it; returns the seconds it took."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, args.partitions, 1)])
    finally:
        await admin.close()
    generated = GeneratedKeys(count=keys, popularity_zipf=args.zipf, dirichlet_alpha=args.dirichlet_alpha, seed=args.seed)
    plan = ProducePlan(topic, "json", SyntheticSettings(generated_keys=generated, seed=args.seed, rate=0),
                       [str(c) for c in range(args.categories)], events=args.backlog)
    producer = await start_producer({"bootstrap_servers": bootstrap, "enable_idempotence": False}, connect_timeout=30.0)
    try:
        summary = await produce_events(producer, plan, rng=np.random.default_rng(args.seed), clock=time.perf_counter,
                                       pause=asyncio.sleep)
    finally:
        await producer.stop()
    return summary.seconds




def catch_up_flags(keys: int, args, bootstrap: str, topic: str, group: str, workdir: Path) -> list[str]:
    return ["--source.kind", "kafka", "--source.kafka.bootstrap_servers", bootstrap, "--source.kafka.topics", topic,
            "--source.kafka.group_id", group, "--sinks.kafka.enable_idempotence", "false",
            "--model.n_categories", str(args.categories), "--model.max_keys", str(keys),
            "--sinks.stdout", "false", "--sinks.jsonl_path", str(workdir / "snapshots.jsonl"),
            "--checkpoint.directory", str(workdir / "state"), "--dead_letter.path", str(workdir / "dead.jsonl")]


def _window(samples: list, prober: LivenessProber, first: int, last: int, notes: list[str]) -> dict:
    """Loop lag and ``/livez`` between two samples."""
    (t0, m0), (t1, m1) = samples[first], samples[last]
    livez = prober.between(t0, t1)
    return {"loop_lag_p99_s": rounded(lag_percentile(m0, m1, 99)), "loop_lag_max_s": finite(lag_worst(m0, m1), notes),
            "livez_p99_s": rounded(percentile(livez, 99)), "livez_max_s": rounded(max(livez, default=None)),
            "livez_probes": len(livez),
            "checkpoints_written": int(m1.get("gumbeld_checkpoints_written_total", 0)
                                       - m0.get("gumbeld_checkpoints_written_total", 0)),
            "checkpoints_failed": int(m1.get("gumbeld_checkpoints_failed_total", 0)
                                      - m0.get("gumbeld_checkpoints_failed_total", 0))}


def run_catch_up(keys: int, args, bootstrap: str, workdir: Path) -> dict:
    """Fill the backlog, start gumbeld on it, measure both windows, stop it with SIGTERM."""
    run = uuid.uuid4().hex[:8]
    topic, group = f"gumbeld-bench-catch-up-{run}", f"gumbeld-bench-catch-up-{run}"
    notes: list[str] = []
    try:
        produce_seconds = asyncio.run(fill_backlog(bootstrap, topic, keys, args))
        child, port = start_daemon(workdir, catch_up_flags(keys, args, bootstrap, topic, group, workdir),
                                   args.startup_timeout)
        prober = LivenessProber(port, interval=PROBE_SECONDS)
        prober.start()
        samples: list[tuple[float, dict]] = []
        start = end = None  # sample indices: the last before events, the first with all of them
        rss_max, deadline = 0, time.monotonic() + args.startup_timeout + args.catch_up_timeout
        try:
            while True:
                tick = time.monotonic()
                child.check_running()
                metrics = scrape(port) or {}
                samples.append((time.monotonic(), metrics))
                rss_max = max(rss_max, rss_bytes(child.pid) or 0)
                events = metrics.get("gumbeld_events_total", 0.0)
                if start is None and events > 0:
                    start = max(0, len(samples) - 2)
                if start is not None and end is None and events >= args.backlog:
                    end = len(samples) - 1
                if end is not None and samples[-1][0] - samples[end][0] >= args.after_seconds:
                    break
                if end is None and tick > deadline:
                    notes.append(f"the backlog was not counted in time: {events:.0f} of {args.backlog} events")
                    break
                time.sleep(max(0.0, tick + SAMPLE_SECONDS - time.monotonic()))
            prober.stop()
            code, shutdown_seconds, _ = child.terminate(args.shutdown_timeout)
        finally:
            prober.stop()
            child.kill()
    finally:
        asyncio.run(delete_topics({"bootstrap_servers": bootstrap}, [topic, f"gumbeld.{group}.{topic}.state"]))
    row = {"mode": "catch_up", "keys": keys, "backlog": args.backlog, "partitions": args.partitions,
           "produce_seconds": rounded(produce_seconds, 2), "rss_mib": rounded(rss_max / MIB, 1) if rss_max else None,
           "exit_code": code, "shutdown_seconds": rounded(shutdown_seconds, 3), "notes": notes}
    if start is None or end is None:
        return {**dict.fromkeys(CATCH_UP_REQUIRED), **row}
    within = [i for i in range(start + 1, end) if 0 < samples[i][1].get("gumbeld_events_total", 0) < args.backlog]
    a, b = (within[0], within[-1]) if len(within) >= 2 else (start, end)
    (ta, ma), (tb, mb) = samples[a], samples[b]
    rate = (mb["gumbeld_events_total"] - ma.get("gumbeld_events_total", 0)) / (tb - ta) if tb > ta else None
    row.update(catch_up_seconds=rounded(samples[end][0] - samples[start][0], 2),
               catch_up_events_per_second=round(rate) if rate is not None else None, **_window(samples, prober, start, end, notes))
    after = _window(samples, prober, end, len(samples) - 1, notes)
    row.update({f"after_{name}": value for name, value in after.items()})
    row["checkpoints_written"] += after["checkpoints_written"]
    row["checkpoints_failed"] += after["checkpoints_failed"]
    if row["checkpoints_failed"]:
        notes.append(f"{row['checkpoints_failed']} checkpoints failed (see the daemon's log)")
    return row


def run_catch_ups(args, parser, runs: list[dict]) -> bool:
    """A catch-up run per ``--keys``, appended to ``runs``; returns whether one failed."""
    if min(args.backlog, args.partitions) < 1 or args.after_seconds < 0:
        parser.error("--backlog and --partitions must be >= 1, --after-seconds >= 0")
    failed = False
    with bench_broker(args.bootstrap_servers, parser) as (bootstrap, broker):
        for keys in args.keys:
            print(f"-- catch-up, {keys:,} keys: {args.backlog:,} events already in the topic ({broker})", flush=True)
            row, run_failed = measure_row(args.keep, f"catch-up-{keys}",
                                          lambda workdir: run_catch_up(keys, args, bootstrap, workdir),
                                          CATCH_UP_REQUIRED, mode="catch_up", keys=keys)
            runs.append(row)
            failed = failed or run_failed
    return failed


