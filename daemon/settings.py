"""The one configuration tree of gumbeld.

Every setting has one dotted name, used alike in the TOML file, the environment and on the
command line: ``metrics.port`` is ``[metrics] port = …`` in the file, ``GUMBELD_METRICS__PORT`` in
the environment and ``--metrics.port`` on the command line. Precedence, highest first: command
line, environment, file, defaults. This module only declares and validates; reading the sources
lives in :mod:`daemon.config`.

The learning core's settings (``model.temperature.*``, ``model.*`` but keys and categories) are declared
and bounded once, by the dataclasses of :mod:`gumbel_models.config`, and made into sections by
:mod:`daemon.setting_sections`. Consumers trust the settings and do not re-check them.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from gumbel_models import GANConfig, TemperatureSchedule
from gumbel_models.fields import check_field
from gumbel_models.temperature import check_floor

from .api.settings import ApiSettings
from .event_time import parse_duration
from .field_path import FieldPath
from .setting_sections import Section, core_rule, settings_of

SEED_DISTRIBUTION = [0.0, 0.0, 0.1, 0.3, 0.6]
Duration = Annotated[float, BeforeValidator(parse_duration)]  # seconds, or text: "500ms", "90s", "30m", "1h", "7d"
OPEN_SMALLEST_CLASS = 8  # open categories: the narrowest size class (gumbel_models.size_classes)


def _half_life(value):
    """A number of events (a number, or text of one) as a float; a duration (text with a unit) as it is, checked."""
    if isinstance(value, bool):
        raise ValueError("half_life is a number of events or a duration such as '90s', '30m', '1h'")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            try:
                seconds = parse_duration(value)
            except ValueError:
                raise ValueError(f"half_life is a number of events or a duration such as '90s', '30m', '1h'; "
                                 f"got {value!r}") from None
            if seconds <= 0:
                raise ValueError(f"a half-life in event time must be longer than 0, got {value!r}")
            return value.strip()
    return check_field(GANConfig, "half_life", value)


class TemperatureSettings(settings_of(TemperatureSchedule)):
    @model_validator(mode="after")
    def _falls_to_its_minimum(self) -> "TemperatureSettings":
        check_floor(self.initial, self.minimum)
        return self


class ModelSettings(settings_of(GANConfig, temperature=TemperatureSettings)):
    """The learning core's settings (declared by :class:`GANConfig`) and which keys and categories it learns."""
    categories: list[str] | Literal["open"] | None = Field(None, description="category labels; \"open\": learned from the stream as they appear; or give n_categories")
    n_categories: Annotated[int | None, core_rule(GANConfig, "n_categories")] = Field(None, description="K for index categories 0..K-1")
    max_categories: int = Field(100_000, ge=2, description="open categories: labels kept at most; past it, category_overflow decides")
    category_overflow: Literal["dead_letter", "other"] = Field("dead_letter", description="open categories past max_categories: dead-letter the event (reason category_limit), or count it as __other__")
    max_keys: int = Field(10_000, ge=1, description="keys kept at most; what happens to a new key past it is max_keys_policy")
    max_keys_policy: Literal["evict_least_recent", "dead_letter"] = Field("evict_least_recent", description="a new key past max_keys evicts the key seen least recently, or is dead-lettered (reason key_limit)")
    key_ttl: float | None = Field(None, gt=0, description="evict keys without events for this many seconds; unset keeps them")
    prior: Literal["none", "pooled"] = Field("pooled", description="pooled: every key's histogram is joined by a Dirichlet prior fitted to all keys' histograms, which shrinks keys with few events toward the population (with open categories, over each key's own categories); none: each key's own histogram alone")
    interval_level: float = Field(0.9, ge=0.8, le=0.99, description="the probability of each category's posterior interval in snapshots (equal-tailed)")
    allowed_lateness: Duration | None = Field(None, description="an event older than its key's newest event by more than this is dead-lettered (reason late): seconds, or text such as \"90s\", \"30m\", \"1h\"; unset: no event is late")
    half_life: Annotated[float | str | None, BeforeValidator(_half_life)] = Field(None, description="forgetting: an event's weight halves for each half-life between it and its key's newest event; a number is events of the key, text with a unit (\"90s\", \"30m\", \"1h\") is event time, which forgets alike at any rate; unset keeps every event")

    @field_validator("categories", mode="before")
    @classmethod
    def _open_as_a_flag(cls, value):
        # the command line reads a list setting's value as a list: --model.categories open is ["open"]
        return "open" if value == ["open"] else value

    @model_validator(mode="after")
    def _one_way_to_name_categories(self) -> "ModelSettings":
        if self.open:
            if self.n_categories is not None:
                raise ValueError("n_categories does not go with categories = \"open\"")
        elif self.categories is not None:
            if len(self.categories) < 2 or len(set(self.categories)) != len(self.categories):
                raise ValueError("categories must list at least two distinct labels")
            if self.n_categories is not None and self.n_categories != len(self.categories):
                raise ValueError("n_categories disagrees with the number of categories")
        return self

    @property
    def open(self) -> bool:
        """Whether categories are learned from the stream (``categories = "open"``)."""
        return self.categories == "open"

    @property
    def labels(self) -> list[str]:
        """The fixed categories; open categories have none up front (see :mod:`daemon.categories`)."""
        if self.open:
            raise ValueError('categories = "open" has no labels up front')
        if self.categories is not None:
            return list(self.categories)
        return [str(i) for i in range(self.n_categories or len(SEED_DISTRIBUTION))]

    @property
    def allowed_lateness_ms(self) -> int | None:
        return None if self.allowed_lateness is None else round(self.allowed_lateness * 1000)

    @property
    def half_life_ms(self) -> float | None:
        """``half_life`` in milliseconds of event time when it is a duration, else None."""
        return parse_duration(self.half_life) * 1000 if isinstance(self.half_life, str) else None

    def gan_config(self) -> GANConfig:
        """The learning core's configuration: these settings, K from the categories (open: the narrowest class)."""
        in_time = self.half_life_ms is not None
        return self.build(n_categories=OPEN_SMALLEST_CLASS if self.open else len(self.labels),
                          half_life=None if in_time else self.half_life, half_life_ms=self.half_life_ms)


class DriftSettings(Section):
    probabilities: list[float] = Field(description="the distribution switched to")
    after_events: int | None = Field(None, ge=1, description="switch once, after this many events of the key")
    period_events: int | None = Field(None, ge=1, description="alternate every this many events")


class SyntheticKey(Section):
    probabilities: list[float] = Field(default_factory=lambda: list(SEED_DISTRIBUTION))
    drift: DriftSettings | None = None

    @field_validator("probabilities")
    @classmethod
    def _a_distribution(cls, p: list[float]) -> list[float]:
        if len(p) < 2 or any(not math.isfinite(x) or x < 0 for x in p) or abs(sum(p) - 1.0) > 1e-6:
            raise ValueError("probabilities must be >= 0 and sum to 1")
        return p


class GeneratedKeys(Section):
    count: int = Field(ge=1, description="number of keys, named key-0, key-1, …")
    popularity_zipf: float = Field(1.1, ge=0, description="key i is drawn with probability ∝ (i+1)^-s; 0 = uniform")
    dirichlet_alpha: float = Field(0.5, gt=0, description="each key's distribution is drawn from Dirichlet(alpha) over the categories")
    seed: int = Field(0, description="seed of the key distributions")


class SyntheticSettings(Section):
    keys: dict[str, SyntheticKey] = Field(default_factory=lambda: {"default": SyntheticKey()},
                                          description="per key: probabilities (one per category) and optional drift")
    generated_keys: GeneratedKeys | None = Field(None, description="many keys described, not listed: {count, popularity_zipf, dirichlet_alpha, seed}; replaces keys")
    events: int | None = Field(None, ge=0, description="stop the stream after this many events (gumbeld keeps running); unset = unbounded")
    rate: float = Field(100_000.0, ge=0, description="events per second over all keys; 0 = unlimited")
    batch_size: int = Field(1000, ge=1, description="events per generated batch")
    seed: int = Field(0, description="seed of the synthetic events")


class StateTopicSettings(Section):
    enabled: bool = Field(True, description="keep each key's state on a compacted state topic, restored when its partition moves")
    topic: str = Field("gumbeld.{group_id}.{topic}.state", description="name of the state topic of each source topic; {group_id} and {topic} are replaced")
    replication_factor: int | None = Field(None, ge=1, description="replicas of a created state topic; unset: 3, or the number of brokers if fewer")

    @field_validator("topic")
    @classmethod
    def _one_topic_per_source(cls, value: str) -> str:
        try:
            name = value.format(group_id="g", topic="t")
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"only {{group_id}} and {{topic}} may be replaced, got {value!r} ({error})") from None
        if "{topic}" not in value or not name:
            raise ValueError("the state topic name must contain {topic}: each source topic has its own")
        return value


class KafkaSourceSettings(Section):
    bootstrap_servers: str = Field("localhost:9092", description="Kafka brokers, host:port[,host:port]; also used by the Kafka sink and dead-letter topic")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field("PLAINTEXT", description="how to reach the brokers")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(None, description="SASL mechanism")
    sasl_username: str | None = Field(None, description="SASL user name")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never logged)")
    ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers")
    ssl_certfile: Path | None = Field(None, description="client certificate (TLS client authentication)")
    ssl_keyfile: Path | None = Field(None, description="client private key")
    topics: list[str] = Field(default_factory=lambda: ["events"], min_length=1, description="topics to consume")
    group_id: str = Field("gumbeld", min_length=1, description="consumer group; instances in one group split the partitions")
    group_instance_id: str | None = Field(None, description="static group membership: a stable id per instance avoids rebalances on restart")
    value_format: Literal["json", "scalar", "text", "array"] = Field("json", description="json object, bare JSON scalar, UTF-8 text, or a JSON array of categories")
    value_framing: Literal["none", "confluent"] = Field("none", description="confluent: each value starts with a magic byte 0 and a 4-byte big-endian schema id, as schema-registry serializers write it; the frame is stripped before value_format applies, a value without it is dead-lettered (bad_framing)")
    isolation_level: Literal["read_committed", "read_uncommitted"] = Field("read_committed", description="read_committed: events of aborted transactions are never counted (where the broker filters them)")
    key_from: Literal["message_key", "field"] = Field("message_key", description="where the distribution key comes from")
    key_field: str = Field("key", description="JSON field of the key when key_from = field: a name, a dotted path (user.id) or a JSON Pointer (/user/id; /user.id is a name with a dot)")
    category_field: str = Field("category", description="JSON field of the category (value_format = json): a name, a dotted path (properties.category) or a JSON Pointer (/properties/category, /items/0/category; /a.b is a name with a dot)")
    default_key: str | None = Field(None, description="key for messages without one; unset dead-letters them")
    time_field: str | None = Field(None, description="JSON field of the event time (value_format = json), RFC 3339 text or epoch milliseconds, as a name, dotted path or JSON Pointer; unset: the record's timestamp. A record without a readable time is dead-lettered (bad_time)")
    max_message_bytes: int = Field(1 << 20, ge=1, description="larger messages are dead-lettered as oversized")
    max_poll_records: int = Field(1_000, ge=1, description="records taken per poll; each poll is decoded and counted in one turn of the event loop (1,000 single-event records: ~5 ms of it)")
    auto_offset_reset: Literal["earliest", "latest"] = Field("earliest", description="where to start without a committed or checkpointed offset")
    session_timeout_ms: int = Field(45_000, ge=1, description="consumer group session timeout")
    heartbeat_interval_ms: int = Field(3_000, ge=1, description="consumer heartbeat interval")
    max_poll_interval_ms: int = Field(300_000, ge=1, description="longest time between polls before the group evicts the instance")
    rebalance_timeout_ms: int = Field(120_000, ge=1, description="time members get to rejoin during a rebalance")
    request_timeout: float = Field(10.0, gt=0, description="seconds a probe, commit or publish may wait for the brokers")
    retry_backoff_max: float = Field(30.0, gt=0, description="longest wait between reconnection attempts, seconds")
    state: StateTopicSettings = StateTopicSettings()

    @field_validator("key_field", "category_field", "time_field")
    @classmethod
    def _a_field_path(cls, value: str | None) -> str | None:
        if value is not None:
            FieldPath(value)  # the syntax of both path forms; its ValueError says what is wrong
        return value

    @model_validator(mode="after")
    def _a_time_field_in_objects(self) -> "KafkaSourceSettings":
        if self.time_field is not None and self.value_format != "json":
            raise ValueError(f"time_field needs value_format = json (a field of an object), not {self.value_format!r}")
        return self

    @property
    def state_topics(self) -> dict[str, str]:
        """Source topic → its state topic."""
        return {t: self.state.topic.format(group_id=self.group_id, topic=t) for t in self.topics}

    @model_validator(mode="after")
    def _state_topics_are_topic_names(self) -> "KafkaSourceSettings":
        if self.state.enabled and self.key_from == "field":
            raise ValueError("key_from = field needs source.kafka.state.enabled = false: a key in a message field "
                             "can arrive on several partitions and so belong to several instances at once. Key "
                             "the messages by distribution key, or run one instance with the state topic off")
        if self.state.enabled:
            for name in self.state_topics.values():
                if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", name):
                    raise ValueError(f"state topic {name!r} is not a Kafka topic name (letters, digits, '.', '_', '-'; "
                                     "set source.kafka.state.topic)")
        return self


class SourceSettings(Section):
    kind: Literal["synthetic", "kafka"] = Field("synthetic", description="where events come from")
    synthetic: SyntheticSettings = SyntheticSettings()
    kafka: KafkaSourceSettings = KafkaSourceSettings()


class KafkaSinkSettings(Section):
    topic: str | None = Field(None, description="publish snapshots to this topic (key = distribution key; compaction keeps the latest); uses source.kafka's connection")
    enable_idempotence: bool = Field(True, description="idempotent producers for snapshots, dead letters and state rows (needs broker support)")
    compression_type: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field("zstd", description="compression of snapshots, dead letters and state rows (zstd: a third of the bytes for a quarter more CPU; see README)")
    send_timeout: float = Field(10.0, gt=0, description="seconds a publish may wait for the broker before it is retried at the next interval")


class SinkSettings(Section):
    stdout: bool = Field(True, description="print snapshots to standard output as JSON lines")
    jsonl_path: Path | None = Field(None, description="append snapshots to this JSON-lines file")
    kafka: KafkaSinkSettings = KafkaSinkSettings()


class DeadLetterSettings(Section):
    path: Path = Field(Path("gumbeld-dead-letters.jsonl"), description="JSON-lines file of bad events (when no topic is set)")
    topic: str | None = Field(None, description="Kafka topic for bad events, original key and value, reason in headers")
    log_interval: float = Field(10.0, gt=0, description="seconds between log lines about bad events")


class MetricsSettings(Section):
    host: str = Field("127.0.0.1", description="address of the HTTP server (0.0.0.0 for all interfaces)")
    port: int = Field(9464, ge=0, le=65535, description="HTTP port of /metrics, /livez, /readyz; 0 = any free")
    max_connections: int = Field(256, ge=1, description="open HTTP connections at most; a connection past it is answered 503 and closed")
    max_key_labels: int = Field(100, ge=0, description="keys with their own metric series; others aggregate as key=\"__other__\"")


class TrainingSettings(Section):
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    seed: int = Field(0, description="seed of the training noise")
    threads: int | None = Field(None, ge=1, description="CPU threads of a training step; unset = one fewer than the cores (the event loop keeps one), at least 1")
    round_seconds: float = Field(0.1, gt=0, le=10, description="time budget of a training round; publish, checkpoint and shutdown wait at most one round")
    active_set: bool = Field(True, description="train only keys with something to learn; false steps every key every step")
    max_step_cells: int = Field(1 << 21, ge=1, description="keys × samples × categories in one step at most; bounds memory and step time")


class CheckpointSettings(Section):
    directory: Path = Field(Path("gumbeld-state"), description="where checkpoint.pt is kept")
    interval: float = Field(30.0, gt=0, description="seconds between checkpoints")
    fresh_start: bool = Field(False, description="ignore an unreadable or incompatible checkpoint and start anew")


class LogSettings(Section):
    format: Literal["text", "json"] = Field("text", description="human-readable lines or one JSON object per line")
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")


class GumbeldSettings(Section):
    model: ModelSettings = ModelSettings()
    source: SourceSettings = SourceSettings()
    sinks: SinkSettings = SinkSettings()
    dead_letter: DeadLetterSettings = DeadLetterSettings()
    metrics: MetricsSettings = MetricsSettings()
    training: TrainingSettings = TrainingSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    log: LogSettings = LogSettings()
    api: ApiSettings = ApiSettings()
    publish_interval: float = Field(1.0, gt=0, description="seconds between publishes; each publishes the keys whose snapshot changed")
    publish_full_interval: float = Field(60.0, gt=0, description="every key is published at least this often, changed or not")
    publish_tolerance: float = Field(1e-3, ge=0, description="a key without new events is republished when its learned probabilities moved by more than this TV")
    shutdown_timeout: float = Field(8.0, gt=0, description="seconds allowed for the final step, checkpoint and publish")

    @model_validator(mode="after")
    def _synthetic_matches_model(self) -> "GumbeldSettings":
        if self.publish_full_interval < self.publish_interval:
            raise ValueError("publish_full_interval must be at least publish_interval")
        if self.model.open:
            if self.source.kind == "synthetic" and self.source.synthetic.generated_keys is not None:
                raise ValueError('source.synthetic.generated_keys draws over the model\'s K categories: it needs '
                                 'model.categories or model.n_categories, not "open"')
            return self  # a synthetic key's categories are the indices of its probabilities, named as they appear
        k = len(self.model.labels)
        if self.source.kind != "synthetic" or self.source.synthetic.generated_keys is not None:
            return self
        for name, key in self.source.synthetic.keys.items():
            sizes = {len(key.probabilities)} | ({len(key.drift.probabilities)} if key.drift else set())
            if sizes != {k}:
                raise ValueError(f"source.synthetic.keys.{name}: probabilities need {k} entries, one per category "
                                 f"of the model (model.categories or model.n_categories)")
        return self
