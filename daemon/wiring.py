"""Building the configured learner, key table, ingest, state topics, source, snapshot sinks and dead-letter sink."""
from __future__ import annotations

from gumbel_models import GumbelGAN

from .changelog.metrics import StateMetrics
from .changelog.open_rows import OpenRowCodec
from .changelog.rows import RowCodec
from .changelog.store import Changelog
from .kafka.decode import RecordDecoder
from .kafka.failures import KafkaFailures
from .kafka.producer import KafkaDeadLetters, KafkaSnapshotSink, Producer
from .kafka.source import KafkaSource
from .ingest import BadEventLog, Ingest
from .keys import KeyTable
from .learner import Learner
from .open_learner import OpenLearner
from .settings import OPEN_SMALLEST_CLASS, GumbeldSettings
from .sinks import DeadLetterFile, JsonLinesSink, StreamSink
from .sources.synthetic import SyntheticSource


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
                            max_message_bytes=k.max_message_bytes, table=categories)
    return KafkaSource(k, decoder, health=health, metrics=metrics, failures=failures, clock=clock)


def build_learner(settings: GumbeldSettings, categories=None, *, clock) -> Learner | OpenLearner:
    """A learner afresh: over the fixed categories, or over the open ``categories`` table (emptied:
    also after a checkpoint that did not fit)."""
    m, t = settings.model, settings.training
    options = dict(round_seconds=t.round_seconds, active_set=t.active_set, max_step_cells=t.max_step_cells, clock=clock)
    if categories is not None:
        categories.load_state_dict({"labels": []})
        return OpenLearner(m.gan_config(), categories, seed=t.seed, device=t.device, **options)
    return Learner(GumbelGAN(m.gan_config(), 0, seed=t.seed, device=t.device), m.labels, **options)


def build_keys(settings: GumbeldSettings, state: dict | None = None) -> KeyTable:
    """The key table, afresh or from a checkpoint's ``state``."""
    m = settings.model
    return KeyTable(m.max_keys, m.max_keys_policy) if state is None else \
        KeyTable.from_state(state, m.max_keys, m.max_keys_policy)


def build_ingest(settings: GumbeldSettings, keys: KeyTable, categories=None, *, metrics, dead_letters, clock) -> Ingest:
    """Ingest into ``keys``, over the fixed categories or the open ``categories`` table."""
    m = settings.model
    return Ingest(keys, categories if m.open else m.labels, metrics=metrics, dead_letters=dead_letters,
                  bad_log=BadEventLog(settings.dead_letter.log_interval, clock),
                  clock=clock, open_width=m.max_categories if m.open else None)


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
