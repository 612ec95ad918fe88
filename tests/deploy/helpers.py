"""What the deployment tests share: the repository's paths, the daemon's metric names and
settings, and a small reading of PromQL expressions."""
from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from daemon.config import CONFIG_FILE_ENV, ENV_PREFIX, ConfigError, load_settings
from daemon.metrics import Metrics
from daemon.settings import GumbeldSettings
from tests.settings_tree import env_var, leaf_fields

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "gumbeld.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
KUBERNETES = DEPLOY / "kubernetes"

# Series of the Kafka source, which the deployment already uses but the daemon may not export yet.
PENDING_METRICS = frozenset({"gumbeld_consumer_lag_messages", "gumbeld_consumer_lag_seconds"})
# Settings of the Kafka source and sink, likewise; and the value "kafka" of source.kind.
PENDING_SETTINGS = frozenset({
    "source.kafka.bootstrap_servers", "source.kafka.topics", "source.kafka.group_id",
    "source.kafka.sasl_username", "source.kafka.sasl_password", "sinks.kafka.topic", "dead_letter.topic",
})
PENDING_SOURCE_KIND = "kafka"

COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
RATE_FUNCTIONS = frozenset({"rate", "irate", "increase"})


# -- metric names ------------------------------------------------------------------------------
def exposed_metric_names() -> set[str]:
    """Every sample name gumbeld exposes, each metric fed once on a fresh registry."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_key_labels=10, clock=lambda: 1000.0)
    metrics.count_events({"default": 10})
    metrics.count_bad("not_json")
    metrics.observe_training(2, 0.01, 1, 0.7, 0.6, 1.0, key_steps=6)
    metrics.set_activity(active=2, settled=1)
    metrics.keys_evicted("max_keys")
    metrics.observe_loop_lag(0.002)
    metrics.set_key("default", ["a", "b"], [0.4, 0.6], [0.5, 0.5], {"tv": 0.1, "kl": 0.02, "js": 0.005})
    metrics.set_keys(1)
    metrics.snapshots_published("stdout")
    metrics.checkpoint_written()
    metrics.checkpoint_failed()
    metrics.dead_lettered()
    metrics.kafka_error("fetch", "UnsupportedCodecError")
    metrics.set_ready(True)
    for method, args in (("set_lag", ("events", 0, 5, 0.5)), ("publish_failed", ("stdout",))):
        if hasattr(metrics, method):  # series of the Kafka source and sink, where the daemon has them
            getattr(metrics, method)(*args)
    text = generate_latest(registry).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def _blank_strings(expr: str) -> str:
    """``expr`` with the contents of its string literals blanked, positions kept."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: '"' + " " * (len(m.group()) - 2) + '"', expr)


def metric_names(expr: str) -> set[str]:
    """The gumbeld series an expression selects."""
    return set(re.findall(r"\bgumbeld_[A-Za-z0-9_:]*", _blank_strings(expr)))


def bare_counters(expr: str) -> list[str]:
    """Counter-like series (``_total``, ``_bucket``, ``_count``, ``_sum``) not directly inside
    ``rate()``, ``irate()`` or ``increase()``."""
    text = _blank_strings(expr)
    bare = []
    for match in re.finditer(r"\bgumbeld_[A-Za-z0-9_:]*", text):
        name = match.group()
        if not name.endswith(COUNTER_SUFFIXES):
            continue
        depth, i = 0, match.start() - 1
        while i >= 0:  # back to the "(" that encloses the name
            if text[i] == ")":
                depth += 1
            elif text[i] == "(":
                if depth == 0:
                    break
                depth -= 1
            i -= 1
        function = re.search(r"([A-Za-z_]+)\s*$", text[:i]) if i >= 0 else None
        if function is None or function.group(1) not in RATE_FUNCTIONS:
            bare.append(name)
    return bare


# -- settings ----------------------------------------------------------------------------------
def known_settings() -> dict[str, Any]:
    return leaf_fields()


def unknown_env_vars(names: Iterable[str]) -> list[str]:
    """The ``GUMBELD_*`` names that are neither a setting, ``GUMBELD_CONFIG``, nor a pending one."""
    valid = {env_var(n) for n in leaf_fields()} | {CONFIG_FILE_ENV} | {env_var(n) for n in PENDING_SETTINGS}
    return sorted(n for n in names if n.startswith(ENV_PREFIX) and n not in valid)


def flatten_settings(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A settings file's tables as dotted names: ``{"metrics": {"port": 1}}`` → ``{"metrics.port": 1}``."""
    leaves = known_settings()
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = prefix + key
        if name not in leaves and isinstance(value, dict):
            flat.update(flatten_settings(value, name + "."))
        else:
            flat[name] = value
    return flat


def _source_kind_pending(value: Any) -> bool:
    accepted = typing.get_args(GumbeldSettings.model_fields["source"].annotation.model_fields["kind"].annotation)
    return value == PENDING_SOURCE_KIND and PENDING_SOURCE_KIND not in accepted


def check_settings(values: Mapping[str, Any]) -> None:
    """Dotted settings must be known (or pending) and valid; raises AssertionError or ConfigError.

    Settings still pending are left out of the validation until the daemon knows them.
    """
    leaves = known_settings()
    unknown = sorted(n for n in values if n not in leaves and n not in PENDING_SETTINGS)
    assert not unknown, f"not gumbeld settings: {unknown}"
    known = {n: v for n, v in values.items()
             if n in leaves and not (n == "source.kind" and _source_kind_pending(v))}
    try:
        load_settings(known, env={})
    except ConfigError as error:
        raise AssertionError(f"invalid settings: {error}") from None


def check_env_settings(environment: Mapping[str, str]) -> None:
    """Like :func:`check_settings`, for ``GUMBELD_*`` environment variables (values as strings)."""
    names = {env_var(n): n for n in known_settings()} | {env_var(n): n for n in PENDING_SETTINGS}
    unknown = unknown_env_vars(environment)
    assert not unknown, f"not gumbeld settings: {unknown}"
    known = {var: value for var, value in environment.items() if var in names
             and names[var] not in PENDING_SETTINGS
             and not (names[var] == "source.kind" and _source_kind_pending(value))}
    try:
        load_settings({}, env=known)
    except ConfigError as error:
        raise AssertionError(f"invalid settings in the environment: {error}") from None
