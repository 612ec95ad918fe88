"""Building the configured ingest, state topics, source, snapshot sinks and dead-letter sink (the learner
and key table: :mod:`daemon.learning.factory`)."""
from __future__ import annotations

from .event_time import Watermarks
from .learning.ingest import BadEventLog, Ingest
from .kafka.failures import KafkaFailures
from .kafka.producer import Producer
from .learning.keys import KeyTable
from .settings import OPEN_SMALLEST_CLASS, GumbeldSettings
from .sinks.kafka import KafkaDeadLetters, KafkaSnapshotSink
from .sinks.local import DeadLetterFile, JsonLinesSink, StreamSink
from .sources.kafka.decode import RecordDecoder
from .sources.kafka.source import KafkaSource
from .sources.synthetic import SyntheticSource
from .state.changelog.metrics import StateMetrics
from .state.changelog.open_rows import OpenRowCodec
from .state.changelog.rows import RowCodec
from .state.changelog.store import Changelog


def build_changelog(settings: GumbeldSettings, registry, failures: KafkaFailures, categories=None) -> Changelog | None:
    """The state topics of the Kafka source, unless turned off (``source.kafka.state.enabled``);
    ``categories``: the open :class:`~daemon.categories.CategoryTable`."""
    k = settings.source.kafka
    if settings.source.kind != "kafka" or not k.state.enabled:
        return None
    value_bytes = 8 if settings.model.dtype == "float64" else 4
    codec = (OpenRowCodec(categories, value_bytes=value_bytes, smallest=OPEN_SMALLEST_CLASS) if settings.model.open
             else RowCodec(settings.model.labels, value_bytes=value_bytes))
    producer = _producer(settings, failures, operation="state_write", timeout=k.request_timeout)
    return Changelog(k, codec, producer=producer, metrics=StateMetrics(registry))


def build_source(settings: GumbeldSettings, *, health, metrics, failures: KafkaFailures, clock, categories=None):
    """``categories``: the open :class:`~daemon.categories.CategoryTable` (``model.categories = "open"``)."""
    labels = [] if settings.model.open else settings.model.labels
    if settings.source.kind == "synthetic":
        return SyntheticSource(settings.source.synthetic, n_categories=len(labels) or None, clock=clock,
                               table=categories)
    k = settings.source.kafka
    decoder = RecordDecoder(labels, value_format=k.value_format, value_framing=k.value_framing, key_from=k.key_from,
                            key_field=k.key_field, category_field=k.category_field, default_key=k.default_key,
                            max_message_bytes=k.max_message_bytes, table=categories, time_field=k.time_field)
    return KafkaSource(k, decoder, health=health, metrics=metrics, failures=failures, clock=clock)


def build_ingest(settings: GumbeldSettings, keys: KeyTable, categories=None, *, metrics, dead_letters, clock) -> Ingest:
    """Ingest into ``keys``, over the fixed categories or the open ``categories`` table."""
    m = settings.model
    return Ingest(keys, categories if m.open else m.labels, metrics=metrics, dead_letters=dead_letters,
                  bad_log=BadEventLog(settings.dead_letter.log_interval, clock),
                  clock=clock, open_width=m.max_categories if m.open else None,
                  watermarks=Watermarks(m.allowed_lateness_ms),
                  half_life_ms=m.half_life_ms)


def _producer(settings: GumbeldSettings, failures: KafkaFailures, *, operation: str = "produce",
              timeout: float | None = None) -> Producer:
    """A producer of its own for each caller: one that closes after a failed send leaves the other alone."""
    sink = settings.sinks.kafka
    return Producer(settings.source.kafka, enable_idempotence=sink.enable_idempotence,
                    timeout=sink.send_timeout if timeout is None else timeout, compression_type=sink.compression_type,
                    operation=operation, failures=failures)


def build_sinks(settings: GumbeldSettings, failures: KafkaFailures) -> list:
    """The configured snapshot sinks; each takes a :class:`~daemon.snapshots.Publication` (``publish``, ``aclose``)."""
    sinks: list = []
    if settings.sinks.stdout:
        sinks.append(StreamSink())
    if settings.sinks.jsonl_path is not None:
        sinks.append(JsonLinesSink(settings.sinks.jsonl_path))
    if settings.sinks.kafka.topic is not None:
        sinks.append(KafkaSnapshotSink(_producer(settings, failures), settings.sinks.kafka.topic))
    return sinks


def build_dead_letters(settings: GumbeldSettings, failures: KafkaFailures):
    """The dead-letter sink: the topic ``dead_letter.topic`` if set, else the file ``dead_letter.path``.

    Both have one interface: ``write`` (only queues, on the event loop), ``flush`` (awaits the queued
    letters), ``backpressure`` (awaits them past a bound) and ``aclose``.
    """
    if settings.dead_letter.topic is not None:
        return KafkaDeadLetters(_producer(settings, failures), settings.dead_letter.topic)
    return DeadLetterFile(settings.dead_letter.path)
