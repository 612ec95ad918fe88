from __future__ import annotations

import importlib.metadata
import math
import platform
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from daemon.metrics import OTHER_KEY, Metrics


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry, clock) -> Metrics:
    return Metrics(registry, max_key_labels=3, clock=clock, version="9.9.9", device="cpu")


def samples(registry: CollectorRegistry, name: str) -> dict[tuple, float]:
    """``{sorted label items: value}`` of the samples called ``name`` in the text exposition."""
    text = generate_latest(registry).decode()
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples if s.name == name}


def key_labels(registry: CollectorRegistry, name: str) -> set[str]:
    return {dict(labels)["key"] for labels in samples(registry, name)}


def feed_everything(metrics: Metrics) -> None:
    metrics.count_events({"a": 5, "b": 2})
    metrics.count_bad("not_json", 3)
    metrics.count_bad("unknown_category")
    metrics.observe_training(steps=4, seconds=0.002, nonfinite=1, g_loss=0.7, d_loss=1.3, temperature=0.5)
    metrics.set_key("a", ["x", "y"], [0.25, 0.75], [0.2, 0.8], {"tv": 0.05, "kl": 0.01, "js": 0.002})
    metrics.set_keys(2)
    metrics.snapshots_published("stdout", 2)
    metrics.checkpoint_written()
    metrics.checkpoint_failed()
    metrics.dead_lettered(4)
    metrics.set_ready(True)


def test_exposition_holds_the_reported_values(registry, metrics, clock):
    feed_everything(metrics)
    value = registry.get_sample_value
    assert value("gumbeld_events_total", {"key": "a"}) == 5
    assert value("gumbeld_events_total", {"key": "b"}) == 2
    assert value("gumbeld_bad_events_total", {"reason": "not_json"}) == 3
    assert value("gumbeld_bad_events_total", {"reason": "unknown_category"}) == 1
    assert value("gumbeld_training_steps_total") == 4
    assert value("gumbeld_training_step_duration_seconds_count") == 4
    assert value("gumbeld_training_step_duration_seconds_sum") == pytest.approx(0.002)
    assert value("gumbeld_training_step_duration_seconds_bucket", {"le": "0.0005"}) == 4
    assert value("gumbeld_training_step_duration_seconds_bucket", {"le": "0.00025"}) == 0
    assert value("gumbeld_nonfinite_updates_total") == 1
    assert value("gumbeld_generator_loss") == pytest.approx(0.7)
    assert value("gumbeld_discriminator_loss") == pytest.approx(1.3)
    assert value("gumbeld_temperature") == 0.5
    assert value("gumbeld_probability", {"key": "a", "category": "y", "kind": "learned"}) == 0.75
    assert value("gumbeld_probability", {"key": "a", "category": "x", "kind": "empirical"}) == 0.2
    assert value("gumbeld_divergence", {"key": "a", "measure": "kl"}) == 0.01
    assert value("gumbeld_keys_tracked") == 2
    assert value("gumbeld_snapshots_published_total", {"sink": "stdout"}) == 2
    assert value("gumbeld_last_publish_timestamp_seconds") == clock.now
    assert value("gumbeld_checkpoints_written_total") == 1
    assert value("gumbeld_checkpoints_failed_total") == 1
    assert value("gumbeld_dead_letters_written_total") == 4
    assert value("gumbeld_ready") == 1
    metrics.set_ready(False)
    assert value("gumbeld_ready") == 0


def test_build_info_names_the_versions_and_device(registry, metrics):
    (labels, value), = samples(registry, "gumbeld_build_info").items()
    info = dict(labels)
    assert value == 1
    assert info["version"] == "9.9.9" and info["device"] == "cpu"
    assert info["python"] == platform.python_version()
    assert info["torch"][0].isdigit()


def test_build_info_version_is_the_installed_package_version(clock, monkeypatch):
    installed = {"gumbeld": "7.7.7", "torch": importlib.metadata.version("torch")}
    monkeypatch.setattr(importlib.metadata, "version", installed.__getitem__)
    registry = CollectorRegistry()
    Metrics(registry, max_key_labels=1, clock=clock)
    (labels, _), = samples(registry, "gumbeld_build_info").items()
    assert dict(labels)["version"] == "7.7.7"


def test_ready_is_zero_and_checkpoint_age_absent_at_start(registry, metrics):
    assert registry.get_sample_value("gumbeld_ready") == 0
    assert registry.get_sample_value("gumbeld_checkpoint_age_seconds") is None
    assert "# TYPE gumbeld_checkpoint_age_seconds gauge" in generate_latest(registry).decode()


def test_checkpoint_age_follows_the_clock(registry, metrics, clock):
    metrics.checkpoint_written()
    assert registry.get_sample_value("gumbeld_checkpoint_age_seconds") == 0
    clock.now += 42.5
    assert registry.get_sample_value("gumbeld_checkpoint_age_seconds") == 42.5
    metrics.checkpoint_failed()  # a failed save leaves the age growing
    clock.now += 10
    assert registry.get_sample_value("gumbeld_checkpoint_age_seconds") == 52.5
    metrics.checkpoint_written()
    assert registry.get_sample_value("gumbeld_checkpoint_age_seconds") == 0


def test_restored_checkpoint_ages_from_its_save_time(registry, metrics, clock):
    metrics.checkpoint_restored(saved_at=clock.now - 300)
    assert registry.get_sample_value("gumbeld_checkpoint_age_seconds") == 300
    assert registry.get_sample_value("gumbeld_checkpoints_written_total") == 0


def test_key_labels_are_capped_and_the_rest_is_other(registry, clock):
    n = 4
    metrics = Metrics(registry, max_key_labels=n, clock=clock)
    keys = [f"k{i}" for i in range(n + 5)]
    metrics.count_events({key: i + 1 for i, key in enumerate(keys)})
    labels = key_labels(registry, "gumbeld_events_total")
    assert labels == set(keys[:n]) | {OTHER_KEY}
    assert registry.get_sample_value("gumbeld_events_total", {"key": OTHER_KEY}) == sum(range(n + 1, n + 6))
    # Labelled keys keep their label, late keys stay in __other__.
    metrics.count_events({"k8": 10, "k0": 1})
    assert key_labels(registry, "gumbeld_events_total") == labels
    assert registry.get_sample_value("gumbeld_events_total", {"key": "k0"}) == 2
    assert metrics.labelled_keys() == frozenset(keys[:n])


def test_per_key_gauges_past_the_cap(registry, metrics):
    for i, key in enumerate(["a", "b", "c", "d", "e"]):
        metrics.claim_label(key)  # labels go to keys as their events are counted; set_key never claims one
        metrics.set_key(key, ["x", "y"], [0.5, 0.5], [0.5, 0.5], {"tv": 0.1 * i, "kl": 1.0 - 0.1 * i})
    assert key_labels(registry, "gumbeld_probability") == {"a", "b", "c"}
    # keys past the cap are ignored by set_key: __other__ is what the learner computed over all of them
    assert key_labels(registry, "gumbeld_divergence") == {"a", "b", "c"}
    assert registry.get_sample_value("gumbeld_divergence", {"key": "d", "measure": "tv"}) is None
    metrics.set_other_divergence({"tv": 0.4, "kl": 0.7})
    assert key_labels(registry, "gumbeld_divergence") == {"a", "b", "c", OTHER_KEY}
    other = {measure: registry.get_sample_value("gumbeld_divergence", {"key": OTHER_KEY, "measure": measure})
             for measure in ("tv", "kl", "js")}
    assert other == {"tv": pytest.approx(0.4), "kl": pytest.approx(0.7), "js": None}
    assert registry.get_sample_value("gumbeld_divergence", {"key": "a", "measure": "kl"}) == 1.0
    metrics.set_other_divergence({"tv": math.nan, "kl": 0.0})  # replaces the previous values
    assert math.isnan(registry.get_sample_value("gumbeld_divergence", {"key": OTHER_KEY, "measure": "tv"}))
    assert registry.get_sample_value("gumbeld_divergence", {"key": OTHER_KEY, "measure": "kl"}) == 0.0
    metrics.set_other_divergence({})  # no key past the cap: no __other__ series
    assert key_labels(registry, "gumbeld_divergence") == {"a", "b", "c"}


def test_zero_key_labels_puts_every_key_in_other(registry, clock):
    metrics = Metrics(registry, max_key_labels=0, clock=clock)
    metrics.count_events({"a": 1, "b": 1})
    metrics.set_key("a", ["x", "y"], [0.5, 0.5], [0.5, 0.5], {"tv": 0.0})
    assert key_labels(registry, "gumbeld_events_total") == {OTHER_KEY}
    assert samples(registry, "gumbeld_probability") == {}


def test_a_key_named_other_never_gets_a_label_of_its_own(registry, metrics):
    metrics.count_events({OTHER_KEY: 2, "a": 1})
    assert metrics.claim_label(OTHER_KEY) is False
    metrics.set_key(OTHER_KEY, ["x", "y"], [0.5, 0.5], [0.5, 0.5], {"tv": 0.3})
    assert metrics.labelled_keys() == {"a"}
    assert key_labels(registry, "gumbeld_probability") == set()
    # nor does it feed the __other__ divergence: only the learner's worst-of does
    assert registry.get_sample_value("gumbeld_divergence", {"key": OTHER_KEY, "measure": "tv"}) is None
    metrics.set_other_divergence({"tv": 0.3})
    assert registry.get_sample_value("gumbeld_divergence", {"key": OTHER_KEY, "measure": "tv"}) == 0.3
    assert registry.get_sample_value("gumbeld_events_total", {"key": OTHER_KEY}) == 2


def test_label_room_and_claim_label(registry, metrics):
    assert metrics.label_room() == 3
    assert metrics.claim_label("a") and metrics.claim_label("a")  # claiming again keeps it, costs nothing
    assert metrics.label_room() == 2
    assert metrics.claim_label("b") and metrics.claim_label("c")
    assert metrics.label_room() == 0
    assert metrics.claim_label("d") is False
    assert metrics.labelled_keys() == {"a", "b", "c"}
    metrics.count_events({"d": 4, "a": 1})
    assert registry.get_sample_value("gumbeld_events_total", {"key": OTHER_KEY}) == 4
    assert registry.get_sample_value("gumbeld_events_total", {"key": "a"}) == 1
    metrics.forget_key("b")
    assert metrics.label_room() == 1
    assert metrics.claim_label("d") and metrics.labelled_keys() == {"a", "c", "d"}


def test_activity_evictions_key_steps_and_loop_lag(registry, metrics):
    value = registry.get_sample_value
    metrics.set_activity(active=7, settled=93)
    assert (value("gumbeld_active_keys"), value("gumbeld_settled_keys")) == (7, 93)
    metrics.observe_training(steps=8, seconds=0.004, nonfinite=0, g_loss=0.7, d_loss=1.3, temperature=1.0,
                             key_steps=8 * 7)
    metrics.observe_training(steps=4, seconds=0.002, nonfinite=0, g_loss=0.7, d_loss=1.3, temperature=1.0,
                             key_steps=4 * 2)
    assert value("gumbeld_training_key_steps_total") == 64
    assert value("gumbeld_training_steps_total") == 12
    metrics.keys_evicted("ttl", 3)
    metrics.keys_evicted("max_keys")
    metrics.keys_evicted("ttl")
    assert value("gumbeld_keys_evicted_total", {"reason": "ttl"}) == 4
    assert value("gumbeld_keys_evicted_total", {"reason": "max_keys"}) == 1
    for lag in (0.0005, 0.003, 0.2, 5.0):
        metrics.observe_loop_lag(lag)
    assert value("gumbeld_event_loop_lag_seconds_count") == 4
    assert value("gumbeld_event_loop_lag_seconds_sum") == pytest.approx(5.2035)
    assert value("gumbeld_event_loop_lag_seconds_bucket", {"le": "0.001"}) == 1
    assert value("gumbeld_event_loop_lag_seconds_bucket", {"le": "0.005"}) == 2
    assert value("gumbeld_event_loop_lag_seconds_bucket", {"le": "0.25"}) == 3
    assert value("gumbeld_event_loop_lag_seconds_bucket", {"le": "2.5"}) == 3
    assert value("gumbeld_event_loop_lag_seconds_bucket", {"le": "+Inf"}) == 4


def test_forget_key_removes_its_series_and_frees_its_label(registry, metrics):
    metrics.count_events({"a": 1, "b": 1, "c": 1, "d": 1})
    for key in "abcd":
        metrics.set_key(key, ["x", "y"], [0.5, 0.5], [0.5, 0.5], {"tv": 0.9 if key == "d" else 0.1})
    metrics.forget_key("a")
    assert "a" not in key_labels(registry, "gumbeld_events_total")
    assert "a" not in key_labels(registry, "gumbeld_probability")
    assert "a" not in key_labels(registry, "gumbeld_divergence")
    # The freed label goes to the next key seen: "d" now has series of its own (set_key alone never claims one).
    metrics.set_key("d", ["x", "y"], [0.5, 0.5], [0.5, 0.5], {"tv": 0.9})
    assert "d" not in key_labels(registry, "gumbeld_divergence")
    assert metrics.claim_label("d")
    metrics.set_key("d", ["x", "y"], [0.5, 0.5], [0.5, 0.5], {"tv": 0.9})
    assert key_labels(registry, "gumbeld_divergence") == {"b", "c", "d"}
    metrics.forget_key("never-seen")  # harmless


def test_set_key_rejects_mismatched_lengths(metrics):
    with pytest.raises(ValueError, match="2 categories"):
        metrics.set_key("a", ["x", "y"], [1.0], [0.5, 0.5], {})


def test_observe_training_without_steps_only_sets_gauges(registry, metrics):
    metrics.observe_training(steps=0, seconds=0.0, nonfinite=0, g_loss=math.nan, d_loss=0.1, temperature=1.0)
    assert registry.get_sample_value("gumbeld_training_steps_total") == 0
    assert registry.get_sample_value("gumbeld_training_step_duration_seconds_count") == 0
    assert math.isnan(registry.get_sample_value("gumbeld_generator_loss"))


def test_two_instances_do_not_share_state(clock):
    first, second = CollectorRegistry(), CollectorRegistry()
    Metrics(first, max_key_labels=1, clock=clock).count_events({"a": 1})
    Metrics(second, max_key_labels=1, clock=clock)
    assert second.get_sample_value("gumbeld_events_total", {"key": "a"}) is None


def test_promtool_finds_the_exposition_clean(registry, metrics, promtool):
    feed_everything(metrics)
    metrics.count_events({f"k{i}": 1 for i in range(10)})  # past the cap, so __other__ shows too
    for i in range(10):
        metrics.set_key(f"k{i}", ["x", "y"], [0.5, 0.5], [0.4, 0.6], {"tv": 0.1, "kl": 0.02, "js": 0.005})
    metrics.set_other_divergence({"tv": 0.1, "kl": 0.02, "js": 0.005})
    metrics.set_activity(3, 4)
    metrics.keys_evicted("ttl")
    metrics.observe_loop_lag(0.01)
    exposition = generate_latest(registry)
    result = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert (result.stdout + result.stderr).strip() == b""


def test_promtool_does_complain_about_bad_names(promtool):
    # Proves the check above can fail: a counter without _total is a lint error.
    bad = b"# HELP bad_counter A counter.\n# TYPE bad_counter counter\nbad_counter 1\n"
    result = subprocess.run([promtool, "check", "metrics"], input=bad, capture_output=True, timeout=60)
    assert result.returncode != 0
