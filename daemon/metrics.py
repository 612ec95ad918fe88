"""The Prometheus metrics of the service, owned by one :class:`Metrics` object (the state topics'
``gumbeld_state_*`` series are :class:`~daemon.state.changelog.metrics.StateMetrics`').

Every series is named ``gumbeld_*`` and lives in the registry passed in, never in the global
default one, so each test can build its own. Metrics fed by the service through method calls
are plain prometheus-client objects; those computed when Prometheus scrapes (the checkpoint age,
the per-key probabilities and divergences) come from small collectors reading the latest values.

Per-key cardinality is capped by ``max_key_labels``: the first keys seen get their own ``key``
label, and counters of every further key add up under ``key="__other__"``. Per-key gauges of keys
past the cap have no series of their own, except that ``gumbeld_divergence{key="__other__"}``
reports, per measure, the largest divergence among them (NaN when any of them is NaN; the
learner computes it over all of them at once, :meth:`Metrics.set_other_divergence`), so a badly
learned key past the cap still shows. Work per publish is bounded by the cap, not the keys.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = Metrics(registry, max_key_labels=1, clock=lambda: 100.0)
>>> metrics.count_events({"a": 3, "b": 2, "c": 1})
>>> registry.get_sample_value("gumbeld_events_total", {"key": "__other__"})
3.0
>>> metrics.checkpoint_written()
>>> registry.get_sample_value("gumbeld_checkpoint_age_seconds")
0.0
"""
from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from .metric_collectors import OTHER_KEY, CheckpointAgeCollector, KeyGaugesCollector, KeyValues
from .version import package_version

DIVERGENCE_MEASURES = ("tv", "kl", "js")
# How late the loop's lag probe (daemon.loops) fires: 1 ms to 2.5 s, 10 ms apart from 10 to 50 ms, so a
# p99 read from the buckets (linear within one, as bench scale does) resolves lags around the 50 ms target.
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
# One training step takes from tens of microseconds (few keys, CPU) to about a second
# (many keys, large samples_per_step); roughly three buckets per decade over that range.
STEP_DURATION_BUCKETS = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2,
                         0.1, 0.25, 0.5, 1.0)


class Metrics:
    """Creates every metric of gumbeld in ``registry``; the service reports through its methods.

    ``version`` is that of ``gumbeld_build_info``; by default the installed gumbeld's. Thread-safe:
    methods may be called from the event loop and from worker threads.
    """

    def __init__(self, registry: CollectorRegistry, *, max_key_labels: int,
                 clock: Callable[[], float] = time.time, version: str | None = None,
                 device: str = "cpu") -> None:
        self.registry = registry
        self.max_key_labels = max_key_labels
        self.clock = clock
        self._lock = threading.Lock()
        self._labelled: set[str] = set()

        counter, gauge, histogram = (partial(kind, registry=registry) for kind in (Counter, Gauge, Histogram))
        Info("gumbeld_build", "Build of the running gumbeld (value is always 1).", registry=registry).info(
            {"version": version or package_version(), "python": platform.python_version(),
             "torch": package_version("torch"), "device": str(device)})
        # events
        self.events = counter("gumbeld_events", "Events counted, per key.", ["key"])
        self.bad_events = counter("gumbeld_bad_events", "Events rejected, by reason.", ["reason"])
        self.dead_letters = counter("gumbeld_dead_letters_written", "Events written to the dead-letter file.")
        # keys
        self.keys_tracked = gauge("gumbeld_keys_tracked", "Keys the model is learning.")
        self.active_keys = gauge("gumbeld_active_keys", "Keys with something to learn, trained in the current round.")
        self.settled_keys = gauge("gumbeld_settled_keys", "Keys with events whose learned distribution is within "
                                  "their settle tolerance of the empirical one: not trained.")
        self.evictions = counter("gumbeld_keys_evicted", "Keys evicted, by reason (ttl: idle past model.key_ttl; "
                                 "max_keys: least recently seen when a new key arrived at model.max_keys).",
                                 ["reason"])
        # training
        self.training_steps = counter("gumbeld_training_steps", "Training steps run.")
        self.training_key_steps = counter("gumbeld_training_key_steps", "Keys stepped, summed over training "
                                          "steps: the training work done.")
        self.step_duration = histogram("gumbeld_training_step_duration_seconds", "Wall time of one training step.",
                                       buckets=STEP_DURATION_BUCKETS)
        self.nonfinite_updates = counter("gumbeld_nonfinite_updates",
                                         "Per-key updates skipped because a gradient was not finite.")
        self.generator_loss = gauge("gumbeld_generator_loss", "Generator loss, mean over keys.")
        self.discriminator_loss = gauge("gumbeld_discriminator_loss", "Discriminator loss, mean over keys.")
        self.temperature = gauge("gumbeld_temperature", "Current Gumbel-softmax temperature.")
        # publishing
        self.snapshots = counter("gumbeld_snapshots_published", "Snapshots published, by sink.", ["sink"])
        self.last_publish = gauge("gumbeld_last_publish_timestamp_seconds",
                                  "Unix time of the last published snapshot; 0 before the first.")
        self.publish_failures = counter("gumbeld_publish_failures", "Publishes that failed, by sink.", ["sink"])
        # checkpoints
        self.checkpoints_written = counter("gumbeld_checkpoints_written", "Checkpoints saved.")
        self.checkpoints_failed = counter("gumbeld_checkpoints_failed", "Checkpoints that failed to save.")
        # Kafka
        self.kafka_errors = counter("gumbeld_kafka_errors", "Failed Kafka operations (connect, fetch, produce, "
                                    "state_write, commit), by operation and reason.", ["operation", "reason"])
        self.lag_messages = gauge("gumbeld_consumer_lag_messages", "Messages behind the end of the partition.",
                                  ["topic", "partition"])
        self.lag_seconds = gauge("gumbeld_consumer_lag_seconds",
                                 "Age of the last consumed message while the partition has more; 0 when caught up.",
                                 ["topic", "partition"])
        # the pooled prior (model.prior = "pooled")
        self.prior_concentration = gauge("gumbeld_prior_concentration", "The events the pooled prior weighs as in "
                                         "every key's target: the lower confidence bound of its concentration α; "
                                         "0 without a prior.")
        self.prior_share = gauge("gumbeld_prior_share", "The prior's share of the real term, α/(n+α), averaged "
                                 "over keys with events; 0 without a prior.")
        self.prior_rejected_fits = counter("gumbeld_prior_rejected_fits", "Pooled-prior fits set aside because "
                                           "they were not finite; the keys keep the prior they have.")
        # the service itself
        self.ready = gauge("gumbeld_ready", "1 when gumbeld is ready to serve, else 0.")
        self.loop_lag = histogram("gumbeld_event_loop_lag_seconds", "How late a timer on the event loop fires: "
                                  "ingest, HTTP and Kafka heartbeats wait this long.", buckets=LOOP_LAG_BUCKETS)
        # computed when Prometheus scrapes (daemon.metric_collectors)
        self._checkpoint_age = CheckpointAgeCollector(clock)
        self._key_gauges = KeyGaugesCollector()
        registry.register(self._checkpoint_age)
        registry.register(self._key_gauges)

    # -- per-key labels -----------------------------------------------------------------------
    def prior_fitted(self, concentration: float, share: float) -> None:
        """The pooled prior was refitted: the concentration it weighs as, and its mean share of the keys' targets."""
        self.prior_concentration.set(concentration)
        self.prior_share.set(share)

    def prior_rejected(self) -> None:
        """A pooled-prior fit was not finite and was set aside."""
        self.prior_rejected_fits.inc()

    def _label_for(self, key: str) -> str:
        """The ``key`` label of ``key``: its own while there is room (kept for good), else ``__other__``."""
        with self._lock:
            if key in self._labelled:
                return key
            if key == OTHER_KEY or len(self._labelled) >= self.max_key_labels:
                return OTHER_KEY
            self._labelled.add(key)
        return key

    def label_room(self) -> int:
        """How many more keys can get series of their own."""
        with self._lock:
            return max(0, self.max_key_labels - len(self._labelled))

    def claim_label(self, key: str) -> bool:
        """Give ``key`` series of its own if there is room; whether it has them."""
        return self._label_for(key) != OTHER_KEY

    def labelled_keys(self) -> frozenset[str]:
        """The keys that have series of their own."""
        with self._lock:
            return frozenset(self._labelled)

    def forget_key(self, key: str) -> None:
        """Drop every series of ``key`` (counters included) and free its label for another key."""
        with self._lock:
            was_labelled = key in self._labelled
            self._labelled.discard(key)
        if not was_labelled:
            return
        with self._key_gauges.lock:
            self._key_gauges.labelled.pop(key, None)
        self.events.remove(key)

    # -- what the service reports --------------------------------------------------------------
    def count_events(self, counts_by_key: Mapping[str, int]) -> None:
        for key, n in counts_by_key.items():
            self.events.labels(self._label_for(key)).inc(n)

    def count_bad(self, reason: str, n: int = 1) -> None:
        self.bad_events.labels(reason).inc(n)

    def observe_training(self, steps: int, seconds: float, nonfinite: int, g_loss: float, d_loss: float,
                         temperature: float, key_steps: int = 0) -> None:
        """Report ``steps`` steps that took ``seconds`` in all, ``nonfinite`` updates skipped in them.

        The mean step time is observed once per step, so the histogram's ``_count`` equals the
        steps and its ``_sum`` the total training time, whatever the steps per round.
        """
        if steps > 0:
            self.training_steps.inc(steps)
            per_step = seconds / steps
            for _ in range(steps):
                self.step_duration.observe(per_step)
        self.training_key_steps.inc(key_steps)
        self.nonfinite_updates.inc(nonfinite)
        self.generator_loss.set(g_loss)
        self.discriminator_loss.set(d_loss)
        self.temperature.set(temperature)

    def set_key(self, key: str, categories: Sequence[str], learned: Sequence[float],
                empirical: Sequence[float], divergence: Mapping[str, float]) -> None:
        """Latest probabilities (one per category) and divergences (by measure) of ``key``;
        ignored for a key without series of its own (see :meth:`set_other_divergence`)."""
        if not len(categories) == len(learned) == len(empirical):
            raise ValueError(f"key {key!r}: {len(categories)} categories, {len(learned)} learned and "
                             f"{len(empirical)} empirical probabilities")
        with self._lock:  # never claims a label: a key evicted meanwhile must not get its series back
            if key not in self._labelled:
                return
        with self._key_gauges.lock:
            self._key_gauges.labelled[key] = KeyValues(
                tuple(map(str, categories)), tuple(map(float, learned)), tuple(map(float, empirical)),
                tuple((str(m), float(v)) for m, v in divergence.items()))

    def set_other_divergence(self, worst: Mapping[str, float]) -> None:
        """Per measure, the largest divergence among keys without series of their own (NaN if any is)."""
        with self._key_gauges.lock:
            self._key_gauges.other_divergence = {str(m): float(v) for m, v in worst.items()}

    def set_activity(self, active: int, settled: int) -> None:
        self.active_keys.set(active)
        self.settled_keys.set(settled)

    def keys_evicted(self, reason: str, n: int = 1) -> None:
        self.evictions.labels(reason).inc(n)

    def observe_loop_lag(self, seconds: float) -> None:
        self.loop_lag.observe(seconds)

    def set_keys(self, n: int) -> None:
        self.keys_tracked.set(n)

    def snapshots_published(self, sink: str, n: int = 1) -> None:
        self.snapshots.labels(sink).inc(n)
        self.last_publish.set(self.clock())

    def checkpoint_written(self) -> None:
        self.checkpoints_written.inc()
        self._checkpoint_age.saved_at = self.clock()

    def checkpoint_current(self) -> None:
        """Nothing changed since the last checkpoint, so it holds the current state: its age is 0."""
        self._checkpoint_age.saved_at = self.clock()

    def checkpoint_restored(self, saved_at: float) -> None:
        """A checkpoint saved at ``saved_at`` was loaded: the age counts from then, not from zero."""
        self._checkpoint_age.saved_at = saved_at

    def checkpoint_failed(self) -> None:
        self.checkpoints_failed.inc()

    def dead_lettered(self, n: int = 1) -> None:
        self.dead_letters.inc(n)

    def publish_failed(self, sink: str) -> None:
        self.publish_failures.labels(sink).inc()

    def kafka_error(self, operation: str, reason: str) -> None:
        self.kafka_errors.labels(operation, reason).inc()

    def set_lag(self, topic: str, partition: int, messages: int, seconds: float) -> None:
        self.lag_messages.labels(topic, str(partition)).set(messages)
        self.lag_seconds.labels(topic, str(partition)).set(seconds)

    def forget_lag(self, topic: str, partition: int) -> None:
        """A revoked partition's series go, so dashboards do not show a stale lag."""
        for gauge in (self.lag_messages, self.lag_seconds):
            try:
                gauge.remove(topic, str(partition))
            except KeyError:
                pass

    def set_ready(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)
