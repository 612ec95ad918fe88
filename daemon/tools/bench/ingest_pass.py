"""One pass of ``gumbeld bench ingest``: a topic read from beginning to end, decoded and counted as the daemon does.

A pass reads with a :class:`daemon.kafka.read.PartitionReader` (no group; ``max_poll_records``
per poll) and, with a pipeline, decodes each poll with a :class:`daemon.sources.kafka.decode.RecordDecoder`
and counts it with a real :class:`daemon.learning.ingest.Ingest`. Each poll is one turn of the event loop:
the pass yields after it, as the service's pump must for its loop to stay responsive, and a timer
of :data:`LAG_PROBE_SECONDS` on the same loop measures how late it fires (``loop_lag_p99_s``,
``loop_lag_max_s``): the longest a poll held the loop.
"""
from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import time
from pathlib import Path
from typing import Callable

import numpy as np
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from ...events import EventBatch
from ...learning.ingest import BadEventLog, Ingest
from ...kafka.read import PartitionReader
from ...learning.keys import KeyTable
from ...loops import watch_loop_lag
from ...metrics import Metrics
from ...settings import (
    SEED_DISTRIBUTION,
    KafkaSourceSettings,
    SyntheticKey,
    SyntheticSettings,
)
from ...sinks.local import DeadLetterFile
from ...sources.kafka.decode import RecordDecoder
from ..produce import compression_option, produce_events, start_producer
from ..produce_plan import ProducePlan

LABELS = [str(i) for i in range(len(SEED_DISTRIBUTION))]
LAG_PROBE_SECONDS = 0.005


class IngestPipeline:
    """Decode and count exactly as the daemon does, into a throwaway registry and dead-letter file."""

    def __init__(self, value_format: str, dead_letter_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.decoder = RecordDecoder(LABELS, value_format=value_format)
        self.dead_letters = DeadLetterFile(dead_letter_dir / f"dead-letters-{value_format}.jsonl")
        self.ingest = Ingest(KeyTable(10_000), LABELS, metrics=Metrics(CollectorRegistry(), max_key_labels=100, clock=clock),
                             dead_letters=self.dead_letters, bad_log=BadEventLog(10.0, clock),
                             clock=clock)

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
    lags: list[float] = []
    reader = PartitionReader({**options, "max_poll_records": KafkaSourceSettings().max_poll_records}, topic,
                             timeout=timeout)
    async with reader:
        watch = asyncio.create_task(watch_loop_lag(lags.append, LAG_PROBE_SECONDS))
        try:
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
                await asyncio.sleep(0)  # one poll per turn of the loop
                polling = clock()
            seconds = clock() - start
            await asyncio.sleep(2 * LAG_PROBE_SECONDS)  # the probe due during the last poll reports it
        finally:
            watch.cancel()
    if messages != expected:
        raise RuntimeError(f"read {messages} messages of {topic!r}, {expected} were produced")
    row = {"messages": messages, "seconds": round(seconds, 3), "messages_per_second": round(messages / seconds),
           "loop_lag_p99_s": round(float(np.percentile(lags, 99)), 4) if lags else None,
           "loop_lag_max_s": round(max(lags), 4) if lags else None}
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


async def create_topics(options: dict, topics: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    finally:
        await admin.close()


async def delete_topics(options: dict, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(**options)
    try:
        await admin.start()
        await admin.delete_topics(topics)
    except Exception:  # best effort: a memory-only broker forgets them anyway
        pass
    finally:
        await admin.close()


async def fill_topic(options: dict, topic: str, value_format: str, events: int, args, codec: str = "none") -> dict:
    """Write ``events`` events of ``args.keys`` keys to ``topic`` with the load generator of
    ``gumbeld produce``, record batches compressed with ``codec``."""
    synthetic = SyntheticSettings(keys={f"key-{i}": SyntheticKey() for i in range(args.keys)}, seed=args.seed)
    producer = await start_producer({**options, "enable_idempotence": False, **compression_option(codec)},
                                    connect_timeout=30.0)
    try:
        plan = ProducePlan(topic, value_format, synthetic, LABELS, events=events, batch=args.batch)
        summary = await produce_events(producer, plan, rng=np.random.default_rng(args.seed),
                                       clock=time.perf_counter, pause=asyncio.sleep)
    finally:
        await producer.stop()
    return {"messages": summary.messages, "events": summary.events, "seconds": round(summary.seconds, 3)}


async def collect(options: dict, topic: str, limit: int) -> list:
    records: list = []
    async with PartitionReader(options, topic, timeout=600.0) as reader:
        async for batch in reader:
            records += batch
            if len(records) >= limit:
                break
    return records[:limit]
