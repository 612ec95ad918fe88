"""The compressed rows of ``gumbeld bench ingest``: per input codec, gumbeld's rate against the raw consume rate.

For each codec of ``--codecs`` the single-event JSON topic is written again with its record batches
compressed (``gumbeld produce --compression-type``), and read as the uncompressed one is: ``raw``
by a bare consumer (aiokafka decompresses, nothing is decoded) and ``json`` decoded and counted,
alternately for ``--rounds`` rounds, the best of each counting. ``ratio_to_raw`` compares gumbeld's
events/s with the raw rate of the same compressed topic, measured in the same run:
decompression is aiokafka's, for both alike, so the ratio is what gumbeld adds.
"""
from __future__ import annotations

import argparse
import uuid
from pathlib import Path

from ..produce import COMPRESSION_TYPES
from .ingest_pass import (
    IngestPipeline,
    consume_pass,
    create_topics,
    delete_topics,
    fill_topic,
)

COMPRESSED_TO_RAW_TARGET = 0.7


async def alternate_passes(options: dict, topic: str, expected: int, args, dead_letter_dir: Path) -> tuple[dict, dict]:
    """The best ``raw`` and the best ``json`` pass of ``args.rounds`` alternating rounds: a slow spell
    of the machine hits both alike."""
    raws, jsons = [], []
    for _ in range(args.rounds):
        raws.append(await consume_pass(options, topic, expected, None, timeout=args.timeout))
        pipeline = IngestPipeline("json", dead_letter_dir)
        try:
            jsons.append(await consume_pass(options, topic, expected, pipeline, timeout=args.timeout))
        finally:
            pipeline.close()
    return max(raws, key=lambda r: r["messages_per_second"]), max(jsons, key=lambda r: r["events_per_second"])


def codec_row(codec: str, produced: dict, raw: dict, decoded: dict) -> dict:
    ratio = decoded["events_per_second"] / raw["messages_per_second"]
    return {"codec": codec, "produced": produced, "raw": raw, "json": decoded, "ratio_to_raw": round(ratio, 3)}


async def compressed_rows(options: dict, args, dead_letter_dir: Path) -> list[dict]:
    """A row per codec of ``args.codecs``; each topic is deleted once read."""
    rows = []
    for codec in args.codecs:
        topic = f"gumbeld-bench-ingest-{codec}-{uuid.uuid4().hex[:8]}"
        await create_topics(options, [topic], args.partitions)
        try:
            produced = await fill_topic(options, topic, "json", args.messages, args, codec)
            raw, decoded = await alternate_passes(options, topic, produced["messages"], args, dead_letter_dir)
        finally:
            await delete_topics(options, [topic])
        rows.append(codec_row(codec, produced, raw, decoded))
    return rows


def codec_targets(rows: list[dict]) -> list[dict]:
    return [{"name": f"json_events_per_second_vs_raw_{row['codec']}", "target": f">= {COMPRESSED_TO_RAW_TARGET} x raw "
             f"messages/s of the same {row['codec']} topic", "value": row["ratio_to_raw"],
             "met": row["ratio_to_raw"] >= COMPRESSED_TO_RAW_TARGET} for row in rows]


def parse_codecs(text: str) -> list[str]:
    codecs = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in codecs if c not in COMPRESSION_TYPES or c == "none"]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown codecs {unknown}: choose among {', '.join(COMPRESSION_TYPES[1:])}")
    return codecs


def format_codec_lines(rows: list[dict]) -> list[str]:
    return [f"{row['codec']:<6} JSON       {row['json']['events_per_second']:>12,} events/s    "
            f"({row['ratio_to_raw']:.2f} x {row['raw']['messages_per_second']:,} raw messages/s of the same topic; "
            f"loop lag p99/max {row['json']['loop_lag_p99_s']}/{row['json']['loop_lag_max_s']} s)" for row in rows]
