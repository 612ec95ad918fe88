"""``gumbeld bench api``: single-key reads of ``/v1`` from ``gumbeld run`` and ``gumbeld serve``,
while ``gumbeld run`` ingests.

Usage: ``gumbeld bench api [--keys 100000] [--rate 100000] [--warmup-seconds 60] [--seconds 20]
[--connections 64] [--threads 1] [--run-read-rate 400] [--serve-read-rate 5000] [--unpaced]
[--categories 16] [--zipf 1.1] [--seed 0] [--bootstrap-servers HOST:PORT] [--keep DIR] [--json PATH]``.

Each ``gumbeld run`` streams synthetic events (N keys, Zipf popularity, a Dirichlet(0.5)
distribution each) at ``--rate``. After ``--warmup-seconds`` the keys it has published are listed
through ``/v1/keys``, and phases of ``--seconds`` each follow, in two parts. In each phase, wrk
(:mod:`.api_load`) sends ``GET /v1/keys/{key}`` for keys drawn uniformly from the list, paced (at
``--run-read-rate`` or ``--serve-read-rate``) or flat out.

Part 1, ``gumbeld run`` as ``gumbeld bench scale`` runs it (a JSON-lines sink):

1. ``run, quiet``: no reads; the baseline of the same run.
2. ``run, paced reads`` and ``run, reads flat out``: to ``gumbeld run`` (paced by its own
   ``api.max_reads_per_second`` too, unless ``--unpaced``).

Part 2, a ``gumbeld run`` publishing to a topic of a Kafka broker (a local Tansu unless
``--bootstrap-servers``), and a ``gumbeld serve`` of that topic, once ready (``/readyz``):

3. ``serve beside run, ...``: to ``gumbeld serve``, while ``gumbeld run`` goes on ingesting and
   publishing on the same cores (and the broker too, when local).
4. ``serve alone, ...``: the same once ``gumbeld run`` is stopped, ``gumbeld serve`` and wrk
   each kept on a core of their own (with 2 cores or more), as on two machines.

Each row reports wrk's requests/s, latency p50/p99/max and non-2xx answers, and for the ``gumbeld
run`` beside it the events/s, event-loop lag p99 and worst (its own histogram), ``/livez`` worst,
TV(learned, empirical) p99 over keys with ≥ 100 events as of the phase's end, and the publish
interval p99: what ``gumbeld bench scale`` holds targets for.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gumbel_models import resolve_device

from .api_load import WrkUnavailable, pin, single_key_gets, wrk_binary
from .machine import describe_machine
from .scale_probe import (
    LivenessProber, finite, format_table, http_get, lag_percentile, lag_worst, percentile, rounded, scrape,
    start_daemon)
from .scale_runs import workdir_for
from .scale_snapshots import SnapshotReader
from .tansu import bench_broker

TV_MIN_EVENTS = 100
TABLE = ("phase", "read_rate", "requests_per_second", "latency_p50_ms", "latency_p99_ms", "latency_max_ms", "non_2xx",
         "events_per_second", "loop_lag_p99_s", "loop_lag_max_s", "livez_max_s", "tv_p99", "publish_interval_p99_s")
HELD = {"loop_lag_p99_s": ("<=", 0.05), "tv_p99": ("<=", 0.02), "publish_interval_p99_s": ("<=", 1.5)}
PACED, FLAT_OUT = {"latency_p99_ms": ("<=", 10), "non_2xx": ("<=", 0)}, {"requests_per_second": (">=", 5000)}
TARGETS = {"run, quiet": HELD, "run, paced reads": HELD, "run, reads flat out": HELD,
           "serve beside run, paced reads": PACED, "serve beside run, reads flat out": FLAT_OUT,
           "serve alone, paced reads": PACED, "serve alone, reads flat out": FLAT_OUT}


def run_flags(args, workdir: Path, sink: list[str]) -> list[str]:
    """``gumbeld run`` as ``gumbeld bench scale`` runs it, publishing to ``sink`` (flags), in ``workdir``."""
    generated = {"count": args.keys, "popularity_zipf": args.zipf, "dirichlet_alpha": 0.5, "seed": args.seed}
    paced = ["--api.max_reads_per_second", "0"] if args.unpaced else []
    return ["--model.n_categories", str(args.categories), "--model.max_keys", str(args.keys),
            "--source.synthetic.generated_keys", json.dumps(generated), "--source.synthetic.rate", f"{args.rate:g}",
            "--sinks.stdout", "false", *sink, *paced, "--checkpoint.directory", str(workdir / "state"),
            "--dead_letter.path", str(workdir / "dead.jsonl")]


def kafka_sink(bootstrap: str, topic: str) -> list[str]:
    return ["--sinks.kafka.topic", topic, "--source.kafka.bootstrap_servers", bootstrap,
            "--sinks.kafka.enable_idempotence", "false"]  # Tansu refuses InitProducerId


async def create_topic(bootstrap: str, topic: str, partitions: int = 2) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()


def published_keys(port: int, path: Path) -> int:
    """Write every key ``/v1/keys`` lists to ``path``, one per line; returns how many."""
    keys, cursor = [], None
    while True:
        query = "/v1/keys?limit=1000" + (f"&cursor={cursor}" if cursor is not None else "")
        status, body = http_get(port, query, 30.0)
        if status != 200:
            raise RuntimeError(f"GET {query}: {status} {body[:200]!r}")
        page = orjson.loads(body)
        keys += [entry["key"] for entry in page["keys"]]
        if (cursor := page["next_cursor"]) is None:
            break
    path.write_text("".join(f"{key}\n" for key in keys))
    return len(keys)


class IngestWatch:
    """What ``gumbeld run`` did over a phase: its metrics at both ends, its snapshots as of the end."""

    def __init__(self, port: int, snapshots: SnapshotReader | None, prober: LivenessProber) -> None:
        self.port, self.snapshots, self.prober = port, snapshots, prober

    def begin(self) -> None:
        self.start, self.start_wall, self.first = time.monotonic(), time.time(), scrape(self.port) or {}

    def end(self, notes: list[str]) -> dict:
        last, now, wall = scrape(self.port) or {}, time.monotonic(), time.time()
        tv_p99, gaps = None, []
        if self.snapshots is not None:
            self.snapshots.poll(until=wall)
            _, tv_p99, _ = self.snapshots.tv_percentiles(TV_MIN_EVENTS)
            gaps = self.snapshots.publish_gaps(self.start_wall, wall)
        events = last.get("gumbeld_events_total", 0.0) - self.first.get("gumbeld_events_total", 0.0)
        livez = self.prober.between(self.start, now)
        return {"events_per_second": round(events / (now - self.start)),
                "loop_lag_p99_s": rounded(lag_percentile(self.first, last, 99), 3),
                "loop_lag_max_s": finite(lag_worst(self.first, last), notes),
                "livez_max_s": rounded(max(livez), 3) if livez else None,
                "tv_p99": rounded(tv_p99), "publish_interval_p99_s": rounded(percentile(gaps, 99), 3)}


class Phases:
    """The phases of one ``gumbeld run`` (and of the ``gumbeld serve`` beside it), appended to ``rows``."""

    def __init__(self, args, workdir: Path, run_sink: list[str], rows: list[dict], notes: list[str]) -> None:
        self.args, self.workdir, self.rows, self.notes = args, workdir, rows, notes
        self.run, self.port = start_daemon(workdir, run_flags(args, workdir, run_sink), args.startup_timeout)
        self.serve = self.serve_port = None
        self.prober = LivenessProber(self.port)
        self.prober.start()
        jsonl = workdir / "snapshots.jsonl"
        self.watch = IngestWatch(self.port, SnapshotReader(jsonl) if "--sinks.jsonl_path" in run_sink else None,
                                 self.prober)

    def measure(self, name: str, read_port: int | None, rate: float = 0.0, cpus: set[int] | None = None) -> None:
        """One phase: reads of ``read_port`` (None: none) flat out or at ``rate``, from wrk on ``cpus``
        (None: any), and the run's ingest beside them."""
        ingesting = self.run.proc.poll() is None
        if ingesting:
            self.watch.begin()
        if read_port is None:
            reads = {}
            time.sleep(self.args.seconds)
        else:
            reads = single_key_gets(read_port, self.workdir / "keys.txt", seconds=self.args.seconds,
                                    connections=self.args.connections, threads=self.args.threads, seed=self.args.seed,
                                    workdir=self.workdir, rate=rate, cpus=cpus)
        self.rows.append({"phase": name, "read_rate": rate or None, **reads,
                          **(self.watch.end(self.notes) if ingesting else {})})
        for child in (self.run if ingesting else None, self.serve):
            if child is not None:
                child.check_running()

    def start_serve(self, flags: list[str]) -> None:
        """A ``gumbeld serve``, once it has caught up with the topic (``/readyz``)."""
        started = time.monotonic()
        self.serve, self.serve_port = start_daemon(self.workdir, flags, self.args.startup_timeout, command="serve")
        while http_get(self.serve_port, "/readyz", 10.0)[0] != 200:
            self.serve.check_running()
            if time.monotonic() - started > self.args.startup_timeout:
                raise RuntimeError(f"gumbeld serve was not ready within {self.args.startup_timeout:g} s")
            time.sleep(0.2)
        self.notes.append(f"gumbeld serve was ready {time.monotonic() - started:.1f} s after its start")

    def stop_run(self) -> None:
        self.prober.stop()
        if self.run.proc.poll() is None:
            code, seconds, _ = self.run.terminate(self.args.shutdown_timeout)
            if code != 0:
                self.notes.append(f"gumbeld run exited {code} {seconds:.1f} s after SIGTERM: {self.run.log_tail(3)}")

    def stop(self) -> None:
        self.stop_run()
        if self.serve is not None and self.serve.proc.poll() is None:
            self.serve.terminate(self.args.shutdown_timeout)


def measure(args, root: Path, bootstrap: str) -> dict:
    """Part 1: ``gumbeld run`` as ``bench scale`` runs it (a JSON-lines sink), read paced and flat
    out. Part 2: a ``gumbeld run`` publishing to a topic, and a ``gumbeld serve`` of that topic read
    beside it, then alone."""
    rows, notes = [], []
    part = Phases(args, root / "run", ["--sinks.jsonl_path", str(root / "run" / "snapshots.jsonl")], rows, notes)
    try:
        time.sleep(args.warmup_seconds)
        keys = published_keys(part.port, root / "run" / "keys.txt")
        part.measure("run, quiet", None)
        part.measure("run, paced reads", part.port, args.run_read_rate)
        part.measure("run, reads flat out", part.port)
    finally:
        part.stop()
    topic = f"bench-api-{time.time_ns()}"
    asyncio.run(create_topic(bootstrap, topic))
    part = Phases(args, root / "serve", kafka_sink(bootstrap, topic), rows, notes)
    try:
        time.sleep(args.warmup_seconds)
        published_keys(part.port, root / "serve" / "keys.txt")
        part.start_serve(["--sinks.kafka.topic", topic, "--source.kafka.bootstrap_servers", bootstrap])
        part.measure("serve beside run, paced reads", part.serve_port, args.serve_read_rate)
        part.measure("serve beside run, reads flat out", part.serve_port)
        part.stop_run()
        # Alone, serve and the load generator get a core each (on 2 cores or more), as on two machines.
        serve_cpus, wrk_cpus = ({0}, {1}) if len(os.sched_getaffinity(0)) >= 2 else (None, None)
        if serve_cpus is not None:
            pin(part.serve.pid, serve_cpus)
        part.measure("serve alone, paced reads", part.serve_port, args.serve_read_rate, wrk_cpus)
        part.measure("serve alone, reads flat out", part.serve_port, cpus=wrk_cpus)
    finally:
        part.stop()
    return {"keys_read": keys, "phases": rows, "notes": notes}


def verdicts(phases: list[dict]) -> dict[str, bool | None]:
    """Each target of :data:`TARGETS`, met or not (None: the figure is missing)."""
    met = {}
    for phase in phases:
        for field, (op, bound) in TARGETS.get(phase["phase"], {}).items():
            value = phase.get(field)
            met[f"{phase['phase']}: {field} {op} {bound:g}"] = (
                None if value is None else value >= bound if op == ">=" else value <= bound)
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gumbeld bench api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, default, text in (
            ("--keys", 100_000, "keys of the synthetic stream"), ("--rate", 100_000.0, "events per second"),
            ("--warmup-seconds", 60.0, "seconds of ingest before the keys are listed"),
            ("--seconds", 20.0, "length of each phase"), ("--connections", 64, "wrk's open connections"),
            ("--threads", 1, "wrk's threads"),
            ("--run-read-rate", 400.0, "requests/s of the paced reads from gumbeld run (below its api.max_reads_per_second)"),
            ("--serve-read-rate", 5000.0, "requests/s of the paced reads from gumbeld serve"), ("--categories", 16, "K, the categories of every key"),
            ("--zipf", 1.1, "key popularity: key i is drawn with probability ∝ (i+1)^-this"),
            ("--seed", 0, "seed of the keys, their distributions and the keys read"),
            ("--startup-timeout", 120.0, "seconds to wait for /livez, and for serve's /readyz"),
            ("--shutdown-timeout", 60.0, "seconds after SIGTERM before SIGKILL")):
        parser.add_argument(flag, type=type(default), default=default, help=f"{text} (default {default:g})")
    parser.add_argument("--unpaced", action="store_true", help="gumbeld run with api.max_reads_per_second = 0")
    parser.add_argument("--bootstrap-servers", help="Kafka to use (default: start a local Tansu broker)")
    parser.add_argument("--keep", type=Path, help="keep the run's directory under DIR (default: temporary)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    if min(args.keys, args.rate, args.seconds, args.connections, args.threads) <= 0 or args.warmup_seconds < 0:
        parser.error("--keys, --rate, --seconds, --connections and --threads must be > 0")
    try:
        wrk_binary()
    except WrkUnavailable as error:
        parser.error(str(error))
    report = {"machine": describe_machine(resolve_device("auto")),
              "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    with bench_broker(args.bootstrap_servers, parser) as (bootstrap, broker), workdir_for(args.keep, "api") as root:
        report["broker"] = broker
        try:
            report.update(measure(args, root, bootstrap))
        except RuntimeError as error:
            report["error"] = str(error)
    report["targets_met"] = verdicts(report.get("phases", []))
    if report.get("phases"):
        print(format_table(report["phases"], TABLE))
        for target, met in report["targets_met"].items():
            print(f"{'met' if met else 'MISSED' if met is False else 'unknown'}: {target}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if "error" in report:
        print(f"gumbeld bench api: {report['error']}")
        return 1
    return 0
