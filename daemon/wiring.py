"""Building the configured source, snapshot sinks and dead-letter sink."""
from __future__ import annotations

from .changelog.store import Changelog
from .changelog.metrics import StateMetrics
from .kafka.decode import RecordDecoder
from .kafka.producer import KafkaDeadLetters, KafkaSnapshotSink, Producer
from .kafka.source import KafkaSource
from .settings import GumbeldSettings
from .sinks import DeadLetterFile, JsonLinesSink, StreamSink
from .sources.synthetic import SyntheticSource


def build_changelog(settings: GumbeldSettings, registry) -> Changelog | None:
    """The state topics of the Kafka source, unless turned off (``source.kafka.state.enabled``)."""
    k = settings.source.kafka
    if settings.source.kind != "kafka" or not k.state.enabled:
        return None
    return Changelog(k, settings.model.labels, producer=Producer(k, enable_idempotence=settings.sinks.kafka.enable_idempotence,
                                                                 timeout=k.request_timeout),
                     metrics=StateMetrics(registry), value_bytes=8 if settings.model.dtype == "float64" else 4)


def build_source(settings: GumbeldSettings, *, health, metrics, clock, on_revoke, on_lost, changelog=None,
                 restorer=None):
    if settings.source.kind == "synthetic":
        return SyntheticSource(settings.source.synthetic, n_categories=len(settings.model.labels), clock=clock)
    k = settings.source.kafka
    decoder = RecordDecoder(settings.model.labels, value_format=k.value_format, key_from=k.key_from,
                            key_field=k.key_field, category_field=k.category_field, default_key=k.default_key,
                            max_message_bytes=k.max_message_bytes)
    return KafkaSource(k, decoder, health=health, metrics=metrics, on_revoke=on_revoke, on_lost=on_lost, clock=clock,
                       prepare=changelog.prepare if changelog else None, restorer=restorer if changelog else None)


def _producer(settings: GumbeldSettings) -> Producer:
    """A producer of its own for each caller: one that closes after a failed send leaves the other alone."""
    sink = settings.sinks.kafka
    return Producer(settings.source.kafka, enable_idempotence=sink.enable_idempotence, timeout=sink.send_timeout)


def build_sinks(settings: GumbeldSettings) -> list:
    """The configured snapshot sinks; each takes a :class:`~daemon.snapshots.Publication` (``publish``, ``aclose``)."""
    sinks: list = []
    if settings.sinks.stdout:
        sinks.append(StreamSink())
    if settings.sinks.jsonl_path is not None:
        sinks.append(JsonLinesSink(settings.sinks.jsonl_path))
    if settings.sinks.kafka.topic is not None:
        sinks.append(KafkaSnapshotSink(_producer(settings), settings.sinks.kafka.topic))
    return sinks


def build_dead_letters(settings: GumbeldSettings):
    """The dead-letter sink: the topic ``dead_letter.topic`` if set, else the file ``dead_letter.path``.

    Both have one interface: ``write`` (only queues, on the event loop), ``flush`` (awaits the queued
    letters), ``backpressure`` (awaits them past a bound) and ``aclose``.
    """
    if settings.dead_letter.topic is not None:
        return KafkaDeadLetters(_producer(settings), settings.dead_letter.topic)
    return DeadLetterFile(settings.dead_letter.path)
