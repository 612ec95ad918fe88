"""``gumbeld produce``: write synthetic events to a Kafka topic at a given rate.

A load generator for demos and benchmarks. Events are drawn as ``source.synthetic`` draws them
(the same per-key distributions and drift; ``--generated-keys`` takes
``source.synthetic.generated_keys``, for many keys), encoded in one of the
``source.kafka.value_format`` formats, and written with the distribution key as the message key
(:mod:`.produce_plan`):

- ``json``: ``{"category": "<label>"}``;  ``scalar``: ``"<label>"``;  ``text``: ``<label>``;
- ``array``: one message per ``--batch`` events of one key, ``["<label>", ...]``.

Messages go out in record batches built per partition (``create_batch``/``send_batch``), because
``AIOKafkaProducer.send`` is a coroutine per message and much slower. ``--compression-type``
compresses each record batch (the builder ``create_batch`` returns applies the producer's codec);
snappy, lz4 and zstd need ``cramjam``. Partitions are chosen by aiokafka's default partitioner, so a key lands where
``send`` would put it. Pacing is by deadline (no drift); ``--rate 0`` sends as fast as the
broker takes it. A summary line goes to stderr at the end, also after SIGINT or SIGTERM.

Exit codes: 0 done, 1 broker or topic unreachable, 2 bad options.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Sequence

import numpy as np
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from ..kafka.backoff import Backoff, retry
from ..kafka.connection import client_options
from ..settings import KafkaSourceSettings
from ..sources.kafka.decode import FORMATS
from .produce_plan import EventMessages, ProducePlan, UsageError

EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE = 0, 1, 2
COMPRESSION_TYPES = ("none", "gzip", "snappy", "lz4", "zstd")
MAX_CHUNK_EVENTS = 20_000   # events drawn, sent and acknowledged per round
RECORD_BATCH_BYTES = 512 * 1024  # below the brokers' default message.max.bytes of 1 MiB


@dataclass
class ProduceSummary:
    events: int = 0
    messages: int = 0
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def line(self, topic: str) -> str:
        return (f"gumbeld produce: {self.events} events in {self.messages} messages to {topic!r} "
                f"in {self.seconds:.2f} s ({self.events_per_second:,.0f} events/s)")


async def send_messages(producer: AIOKafkaProducer, topic: str, messages: Sequence[tuple[bytes, bytes]],
                        partition_of: dict[bytes, int], partitions: list[int]) -> None:
    """Send ``messages`` in record batches per partition and wait until all are acknowledged."""
    builders, deliveries = {}, []
    for key, value in messages:
        partition = partition_of.get(key)
        if partition is None:
            partition = partition_of[key] = DefaultPartitioner()(key, partitions, partitions)
        builder = builders.get(partition)
        if builder is None:
            builder = builders[partition] = producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
            deliveries.append(await producer.send_batch(builder, topic, partition=partition))
            builder = builders[partition] = producer.create_batch()
            builder.append(key=key, value=value, timestamp=None)
    for partition, builder in builders.items():
        deliveries.append(await producer.send_batch(builder, topic, partition=partition))
    await asyncio.gather(*deliveries)


async def produce_events(producer: AIOKafkaProducer, plan: ProducePlan, *, rng: np.random.Generator,
                         clock: Callable[[], float], pause: Callable[[float], Awaitable[None]],
                         stopped: Callable[[], bool] = lambda: False) -> ProduceSummary:
    """Produce ``plan.events`` events (or until ``stopped()``), paced to ``plan.rate``."""
    partitions = sorted(await producer.partitions_for(plan.topic))
    # paced runs send a round every ~50 ms at most, so the rate holds within a second
    chunk = MAX_CHUNK_EVENTS if plan.rate <= 0 else max(1, min(MAX_CHUNK_EVENTS, int(plan.rate / 20)))
    if plan.value_format == "array":  # whole arrays, one at least
        chunk = max(plan.batch, chunk - chunk % plan.batch)
    messages, partition_of = EventMessages(plan, rng, chunk), {}
    summary, start = ProduceSummary(), clock()
    while not stopped() and (plan.events is None or summary.events < plan.events):
        wanted = chunk if plan.events is None else min(chunk, plan.events - summary.events)
        drawn, events = messages.draw(wanted)
        await send_messages(producer, plan.topic, drawn, partition_of, partitions)
        summary.events, summary.messages = summary.events + events, summary.messages + len(drawn)
        if plan.rate > 0:
            await pause(max(0.0, start + summary.events / plan.rate - clock()))
    summary.seconds = clock() - start
    return summary


def compression_option(codec: str) -> dict:
    """A :data:`COMPRESSION_TYPES` codec as ``start_producer``'s option (none is ``None``)."""
    return {"compression_type": None if codec == "none" else codec}


def connection_settings(args: argparse.Namespace) -> KafkaSourceSettings:
    """The ``--bootstrap-servers``/``--security-protocol``/``--sasl-*``/``--ssl-*`` flags as ``source.kafka`` settings."""
    return KafkaSourceSettings(
        bootstrap_servers=args.bootstrap_servers, security_protocol=args.security_protocol,
        sasl_mechanism=args.sasl_mechanism, sasl_username=args.sasl_username, sasl_password=args.sasl_password,
        ssl_cafile=args.ssl_cafile, ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)


async def start_producer(options: dict, *, connect_timeout: float, clock: Callable[[], float] = time.monotonic,
                         sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> AIOKafkaProducer:
    """A started producer; retries with backoff until ``connect_timeout`` seconds, then raises the last ``KafkaError``."""
    async def attempt() -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**options, linger_ms=5, max_batch_size=RECORD_BATCH_BYTES,
                                    request_timeout_ms=max(1000, int(connect_timeout * 1000)))
        try:
            await producer.start()
        except KafkaError:
            await producer.stop()
            raise
        return producer
    return await retry(attempt, Backoff(initial=0.25, maximum=1.0), deadline=clock() + connect_timeout,
                       clock=clock, sleep=sleep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gumbeld produce", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--bootstrap-servers", required=True, metavar="HOST:PORT[,...]")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="events per second; 0 = as fast as possible (default)")
    parser.add_argument("--events", type=int, default=None, metavar="N", help="stop after N events (default: until SIGINT/SIGTERM)")
    parser.add_argument("--format", dest="value_format", choices=FORMATS, default="json", help="value format, as source.kafka.value_format")
    parser.add_argument("--batch", type=int, default=1000, help="events per message with --format array (default 1000)")
    parser.add_argument("--keys", metavar="JSON", help='per key: {"web": {"probabilities": [0.7, 0.3]}}, as source.synthetic.keys')
    parser.add_argument("--generated-keys", metavar="JSON",
                        help='many keys, as source.synthetic.generated_keys: {"count": 100000, "popularity_zipf": 1.1, '
                             '"dirichlet_alpha": 0.5, "seed": 0}; not with --keys or --format array')
    parser.add_argument("--categories", metavar="JSON", help='category labels, e.g. ["red", "green"] (default "0".."K-1")')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compression-type", choices=COMPRESSION_TYPES, default="none",
                        help="codec of the record batches (default none)")
    parser.add_argument("--no-idempotence", dest="idempotence", action="store_false",
                        help="plain producer, for brokers without InitProducerId (e.g. Tansu)")
    parser.add_argument("--connect-timeout", type=float, default=30.0, metavar="SECONDS", help="how long to wait for the broker (default 30)")
    parser.add_argument("--security-protocol", choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], default="PLAINTEXT")
    parser.add_argument("--sasl-mechanism", choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    parser.add_argument("--sasl-username")
    parser.add_argument("--sasl-password")
    parser.add_argument("--ssl-cafile")
    parser.add_argument("--ssl-certfile")
    parser.add_argument("--ssl-keyfile")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        try:
            plan = ProducePlan.from_options(args.topic, args.value_format, args.keys, args.categories,
                                            args.rate, args.events, args.batch, args.seed, args.generated_keys)
            options = {**client_options(connection_settings(args)), "enable_idempotence": args.idempotence,
                       **compression_option(args.compression_type)}
        except (UsageError, ValidationError) as error:
            parser.error(str(error))
        except OSError as error:
            parser.error(f"cannot read the TLS files (--ssl-*): {error}")
    except SystemExit as exit_:  # --help and usage errors
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    return asyncio.run(_produce(args, plan, options))


async def _produce(args: argparse.Namespace, plan: ProducePlan, options: dict) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            producer = await start_producer(options, connect_timeout=args.connect_timeout)
        except KafkaError as error:
            print(f"gumbeld produce: cannot reach Kafka at {args.bootstrap_servers} within "
                  f"{args.connect_timeout:g} s: {error}", file=sys.stderr)
            return EXIT_UNREACHABLE
        try:
            summary = await produce_events(producer, plan, rng=np.random.default_rng(plan.synthetic.seed),
                                           clock=time.monotonic, pause=lambda s: _wait(stop, s), stopped=stop.is_set)
        except KafkaError as error:
            print(f"gumbeld produce: sending to topic {plan.topic!r} failed: {error!r}", file=sys.stderr)
            return EXIT_UNREACHABLE
        finally:
            await producer.stop()
        print(summary.line(plan.topic), file=sys.stderr)
        return EXIT_OK
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, waking early on SIGINT/SIGTERM."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
