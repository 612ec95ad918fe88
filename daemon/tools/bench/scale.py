"""``gumbeld bench scale``: the real service with many keys — throughput, accuracy, settling, cost.

Usage: ``gumbeld bench scale [--keys 10000,100000] [--baseline-keys 10000] [--stream-seconds 60]
[--rate 100000] [--settle-seconds 30] [--max-settle-wait 300] [--zipf 1.1] [--dirichlet-alpha 0.5]
[--categories 16] [--seed 0] [--embedded] [--keep DIR] [--json PATH]``; with ``--catch-up``,
gumbeld started on a Kafka backlog instead (:mod:`.scale_catchup`).

Each run starts ``python -m daemon run`` on the synthetic source with N generated keys (by default
Zipf(1.1) popularity, a Dirichlet(0.5) distribution each over 16 categories) streaming ``rate ×
stream-seconds`` events, then lets it train on until it settles, and stops it with SIGTERM.
Mode ``active`` trains only the keys with something to learn (``training.active_set``); the
baseline ``all_keys`` steps every key every step. Every second it scrapes ``/metrics`` and reads
``/proc/PID``; a thread probes ``/livez`` every 100 ms. The snapshot file is read after the run,
as of each moment noted during it (reading it live would take a core from the daemon).
``loop_lag_p99_s`` and ``loop_lag_max_s`` (the worst, as its bucket's bound) come from the daemon's
own ``gumbeld_event_loop_lag_seconds`` over the stream and the 30 s after; ``livez_p99_s`` and
``livez_max_s`` are the HTTP round trips seen from outside, for comparison.
A metric the daemon does not export, or a phase that never comes (a stream that does not
stop, keys that never settle), leaves its fields null and says why in ``notes``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from gumbel_models import resolve_device

from ...settings import ModelSettings
from .machine import describe_machine
from .scale_catchup import CATCH_UP_TABLE, add_catch_up_arguments, run_catch_ups
from .scale_embedded import run_embedded
from .scale_probe import (
    CPU_WINDOW, MIB, WATCHED, LivenessProber, cpu_seconds, finite, format_table, lag_percentile, lag_worst,
    percentile, rounded, rss_bytes, scrape, start_daemon)
from .scale_runs import measure_row, workdir_for
from .scale_snapshots import SnapshotReader

CATEGORIES = 16
BATCH = 1000             # source.synthetic.batch_size: the most a bounded stream may overshoot its target
TV_MIN_EVENTS = 100
REQUIRED = ("mode", "keys", "events_per_second", "steps_per_second", "key_steps_per_second", "active_keys_mean",
            "tv_p50_streaming", "tv_p99_streaming", "tv_p50_settled", "tv_p99_settled", "publish_interval_p50_s",
            "publish_interval_p99_s", "loop_lag_p99_s", "loop_lag_max_s", "livez_max_s", "cpu_settled_percent", "settled", "seconds_to_settle",
            "rss_mib", "state_bytes_per_key", "rss_bytes_per_key", "shutdown_seconds", "exit_code", "final_checkpoint")
TABLE = ("mode", "keys", "events_per_second", "steps_per_second", "key_steps_per_second", "active_keys_mean",
         "tv_p99_streaming", "tv_p99_settled", "publish_interval_p99_s", "loop_lag_p99_s", "loop_lag_max_s",
         "livez_max_s", "cpu_settled_percent",
         "seconds_to_settle", "rss_mib", "state_bytes_per_key", "shutdown_seconds", "exit_code", "final_checkpoint")


def _rate(first: tuple, last: tuple, name: str) -> float | None:
    """Per second of ``name`` between two samples (time, metrics); None if either lacks it."""
    a, b = first[1].get(name), last[1].get(name)
    return None if a is None or b is None or last[0] <= first[0] else (b - a) / (last[0] - first[0])


def scale_flags(mode: str, keys: int, args, workdir: Path) -> list[str]:
    generated = {"count": keys, "popularity_zipf": args.zipf, "dirichlet_alpha": args.dirichlet_alpha, "seed": args.seed}
    return ["--model.n_categories", str(args.categories), "--model.max_keys", str(keys),
            "--source.synthetic.generated_keys", json.dumps(generated),
            "--source.synthetic.rate", f"{args.rate:g}", "--source.synthetic.events", str(events_target(args)),
            "--sinks.stdout", "false", "--sinks.jsonl_path", str(workdir / "snapshots.jsonl"),
            "--checkpoint.directory", str(workdir / "state"), "--dead_letter.path", str(workdir / "dead.jsonl"),
            "--training.active_set", "true" if mode == "active" else "false", "--model.prior", args.prior]


def events_target(args) -> int:
    return int(round(args.rate * args.stream_seconds))


def run_scale(mode: str, keys: int, args, workdir: Path) -> dict:
    target, notes = events_target(args), []
    harness_cpu = time.process_time()
    child, port = start_daemon(workdir, scale_flags(mode, keys, args, workdir), args.startup_timeout)
    prober = LivenessProber(port)
    prober.start()
    reader = SnapshotReader(workdir / "snapshots.jsonl")
    samples: list[tuple[float, dict]] = []         # (monotonic time, watched metrics)
    seen: set[str] = set()
    rss_max, rss_start, start, end, stopped = 0, 0, None, None, None  # start/end: (monotonic, wall, sample index)
    tv_streaming, tv_settled, settled_sample, next_tv = [], None, None, None
    zeros, first_zero, settled_at, cpu_from, cpu_settled = 0, None, None, None, None
    stream_deadline = time.monotonic() + 3 * args.stream_seconds + 60
    try:
        while True:
            tick = time.monotonic()
            child.check_running()
            metrics = scrape(port) or {}
            now, wall, cpu = time.monotonic(), time.time(), cpu_seconds(child.pid)
            rss_max = max(rss_max, rss_bytes(child.pid) or 0)
            rss_start = rss_start or rss_max
            seen.update(metrics)
            samples.append((now, metrics))
            events = metrics.get("gumbeld_events_total", 0.0)
            if end is None:
                if start is None and events > 0:
                    start, next_tv = (now, wall, len(samples) - 1), now + args.tv_every
                if start is not None and events >= target:
                    end = (now, wall, len(samples) - 1)
                    tv_streaming.append(wall)
                elif start is not None and now >= next_tv:
                    tv_streaming.append(wall)
                    next_tv += args.tv_every
                elif now > stream_deadline:
                    notes.append(f"the stream did not reach {target} events in time: "
                                 f"{events:.0f} events counted; settled measures skipped")
                    stopped = False
                    end = (now, wall, len(samples) - 1)
                    break
            else:
                since = now - end[0]
                if events > target + BATCH:
                    notes.append(f"the stream did not stop at {target} events (source.synthetic.events not "
                                 f"honoured?): {events:.0f} counted; settled measures skipped")
                    stopped = False
                    break
                if tv_settled is None and since >= args.settle_seconds:
                    tv_settled, settled_sample = wall, len(samples) - 1
                active = metrics.get("gumbeld_active_keys")
                if settled_at is None:
                    zeros = zeros + 1 if active == 0 else 0
                    first_zero = now if zeros == 1 else first_zero
                    if zeros >= 2:
                        settled_at, cpu_from = first_zero, (now, cpu)
                elif cpu_settled is None and now - cpu_from[0] >= CPU_WINDOW and None not in (cpu, cpu_from[1]):
                    cpu_settled = 100.0 * (cpu - cpu_from[1]) / (now - cpu_from[0])
                waiting = "gumbeld_active_keys" in seen and settled_at is None and since < args.max_settle_wait
                if tv_settled is not None and not waiting and (settled_at is None or cpu_settled is not None):
                    stopped = True
                    break
            time.sleep(max(0.0, tick + args.sample_seconds - time.monotonic()))
        prober.stop()
        code, shutdown_seconds, sigterm_wall = child.terminate(args.shutdown_timeout)
    finally:
        prober.stop()
        child.kill()
    # The snapshot file is read after the run, as of each moment noted during it: reading ~1 GB
    # while the daemon runs would take a core from the daemon it measures.
    moments = sorted(tv_streaming + ([tv_settled] if tv_settled is not None else []))
    views = {}
    for moment in moments:
        reader.poll(until=moment)
        views[moment] = reader.tv_percentiles(TV_MIN_EVENTS)
    reader.poll()
    tv_streaming = [views[m] for m in tv_streaming]
    lag_window = (samples[start[2]][1], samples[settled_sample][1]) if start is not None and tv_settled else None
    tv_settled = views.get(tv_settled)

    streaming = samples[start[2]:end[2] + 1] if start is not None else []
    interior = [s for s in streaming if 0 < s[1].get("gumbeld_events_total", 0) < target]
    window = (interior[0], interior[-1]) if len(interior) >= 2 else (streaming[0], streaming[-1]) if streaming else None
    active = [s[1]["gumbeld_active_keys"] for s in streaming if "gumbeld_active_keys" in s[1]]
    gaps = reader.publish_gaps(start[1], end[1]) if start is not None else []
    checkpoint = workdir / "state" / "checkpoint.pt"
    state_bytes = checkpoint.stat().st_size if checkpoint.exists() else None
    missing = [name for name in WATCHED if name not in seen]
    if missing:
        notes.append(f"metrics not exported (their fields are null): {', '.join(missing)}")
    if "gumbeld_active_keys" in seen and stopped and settled_at is None:
        notes.append(f"gumbeld_active_keys did not stay 0 within {args.max_settle_wait:g} s of the stream's end")
    tv_p50 = [p50 for p50, _, _ in tv_streaming if p50 is not None]
    tv_p99 = [p99 for _, p99, _ in tv_streaming if p99 is not None]
    settled_ok = stopped and "gumbeld_active_keys" in seen
    return {
        "mode": mode, "keys": keys, "rate": args.rate, "events_target": target,
        "events_total": samples[-1][1].get("gumbeld_events_total") if samples else None,
        "stream_stopped": stopped, "stream_seconds_measured": rounded(end[0] - start[0], 3) if start else None,
        "events_per_second": rounded(window and _rate(*window, "gumbeld_events_total"), 1),
        "steps_per_second": rounded(window and _rate(*window, "gumbeld_training_steps_total"), 2),
        "key_steps_per_second": rounded(window and _rate(*window, "gumbeld_training_key_steps_total"), 1),
        "active_keys_mean": rounded(sum(active) / len(active), 1) if active else None,
        "keys_tracked": samples[-1][1].get("gumbeld_keys_tracked") if samples else None,
        "settled_keys": samples[-1][1].get("gumbeld_settled_keys") if samples else None,
        "keys_published": len(reader.latest),
        "tv_p50_streaming": rounded(max(tv_p50), 5) if tv_p50 else None,
        "tv_p99_streaming": rounded(max(tv_p99), 5) if tv_p99 else None,
        "tv_streaming_evaluations": [{"p50": rounded(a, 5), "p99": rounded(b, 5), "keys": n} for a, b, n in tv_streaming],
        "tv_p50_settled": rounded(tv_settled[0], 5) if tv_settled and stopped else None,
        "tv_p99_settled": rounded(tv_settled[1], 5) if tv_settled and stopped else None,
        "tv_settled_keys": tv_settled[2] if tv_settled and stopped else None,
        "publish_interval_p50_s": rounded(percentile(gaps, 50), 3), "publish_interval_p99_s": rounded(percentile(gaps, 99), 3),
        "loop_lag_p99_s": rounded(lag_window and lag_percentile(*lag_window, 99)),
        "loop_lag_max_s": finite(lag_window and lag_worst(*lag_window), notes),
        "livez_p99_s": rounded(percentile(prober.latencies, 99)), "livez_probes": len(prober.latencies),
        "livez_max_s": rounded(max(prober.latencies, default=None)),
        "livez_failures": prober.failures,
        "cpu_settled_percent": rounded(cpu_settled, 1),
        "settled": (settled_at is not None) if settled_ok else (False if stopped is False else None),
        "seconds_to_settle": rounded(settled_at - end[0], 1) if settled_at is not None else None,
        "rss_mib": rounded(rss_max / MIB, 1) if rss_max else None,
        "rss_mib_at_start": rounded(rss_start / MIB, 1) if rss_start else None,
        "state_bytes_per_key": rounded(state_bytes / keys, 1) if state_bytes is not None else None,
        "rss_bytes_per_key": rounded(rss_max / keys, 1) if rss_max else None,
        "shutdown_seconds": rounded(shutdown_seconds, 3), "exit_code": code,
        "final_checkpoint": checkpoint.exists() and checkpoint.stat().st_mtime >= sigterm_wall,
        "snapshot_lines": reader.lines, "harness_cpu_seconds": rounded(time.process_time() - harness_cpu, 2),
        "notes": notes,
    }


def _keys(text: str) -> list[int]:
    return [int(k) for k in text.split(",") if k.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gumbeld bench scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=_keys, default=[10_000, 100_000],
                        help="key counts of mode active (default 10000,100000)")
    parser.add_argument("--baseline-keys", type=_keys, default=[10_000],
                        help="key counts of the baseline mode all_keys; empty to skip (default 10000)")
    for flag, default, text in (
            ("--stream-seconds", 60.0, "seconds of events: rate × this many"),
            ("--rate", 100_000.0, "events per second"),
            ("--settle-seconds", 30.0, "settled TV is read this long after the stream's end"),
            ("--max-settle-wait", 300.0, "seconds after the stream's end to wait for gumbeld_active_keys to stay 0"),
            ("--tv-every", 10.0, "seconds between TV readings while streaming"),
            ("--sample-seconds", 1.0, "seconds between scrapes of /metrics"),
            ("--startup-timeout", 120.0, "seconds to wait for /livez"),
            ("--shutdown-timeout", 120.0, "seconds after SIGTERM before SIGKILL"),
            ("--embedded-seconds", 60.0, "length of the --embedded run"),
            ("--zipf", 1.1, "key popularity: key i is drawn with probability ∝ (i+1)^-this"),
            ("--dirichlet-alpha", 0.5, "each key's distribution is drawn from Dirichlet(this)"),
            ("--categories", CATEGORIES, "K, the categories of every key"),
            ("--seed", 0, "seed of the generated keys and their distributions")):
        parser.add_argument(flag, type=type(default), default=default, help=f"{text} (default {default:g})")
    parser.add_argument("--prior", choices=("none", "pooled"), default=ModelSettings.model_fields["prior"].default,
                        help="model.prior of the runs (default: the service's)")
    parser.add_argument("--embedded", action="store_true", help="also measure plain 'gumbeld run' (embedded default)")
    parser.add_argument("--keep", type=Path, help="keep each run's directory under DIR (default: temporary)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    add_catch_up_arguments(parser)
    args = parser.parse_args(argv)
    if min(args.rate, args.stream_seconds, args.sample_seconds, args.tv_every) <= 0 \
            or args.embedded_seconds <= CPU_WINDOW or min(args.keys + args.baseline_keys, default=1) < 1:
        parser.error("--rate, --stream-seconds, --sample-seconds and --tv-every must be > 0, "
                     "--embedded-seconds > 10, key counts >= 1")
    plan = [("active", k) for k in args.keys] + [("all_keys", k) for k in args.baseline_keys]
    report, failed = {"machine": describe_machine(resolve_device("auto")), "runs": []}, False
    if args.catch_up:
        plan, failed = [], run_catch_ups(args, parser, report["runs"])
    for mode, keys in plan:
        print(f"-- {mode}, {keys:,} keys: {events_target(args):,} events at {args.rate:g}/s", flush=True)
        row, run_failed = measure_row(args.keep, f"{mode}-{keys}", lambda workdir: run_scale(mode, keys, args, workdir),
                                      REQUIRED, mode=mode, keys=keys)
        report["runs"].append(row)
        failed = failed or run_failed
    if args.embedded:
        try:
            with workdir_for(args.keep, "embedded") as workdir:
                report["embedded"] = run_embedded(args, workdir)
        except RuntimeError as error:
            failed, report["embedded"] = True, {"embedded_default_cpu_percent": None, "error": str(error)}
        report["embedded_default_cpu_percent"] = report["embedded"]["embedded_default_cpu_percent"]
    report["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if report["runs"]:
        print("\n" + format_table(report["runs"], CATCH_UP_TABLE if args.catch_up else TABLE))
    if args.embedded:
        print(f"embedded default: {report['embedded_default_cpu_percent']} % of one core over seconds "
              f"{args.embedded_seconds - CPU_WINDOW:g}-{args.embedded_seconds:g}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failed else 0
