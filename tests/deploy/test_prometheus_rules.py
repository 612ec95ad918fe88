"""deploy/prometheus: the alert rules, their unit tests, and the compose stack's Prometheus config."""
from __future__ import annotations

import importlib.util
import subprocess

import pytest
import yaml

from .helpers import (ALERTS, ALERTS_TEST, KUBERNETES, PENDING_METRICS, PROMETHEUS_CONFIG, bare_counters,
                      exposed_metric_names, metric_names)

REQUIRED_ALERTS = {
    "GumbeldDivergenceNotConverging", "GumbeldConsumerLagGrowing", "GumbeldBadEventRatioHigh",
    "GumbeldCheckpointStale", "GumbeldNoSnapshotsPublished", "GumbeldTrainingStalled", "GumbeldTargetDown",
    "GumbeldEventLoopLagHigh", "GumbeldKafkaFailing",
}


def rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_promtool_checks_the_rules(promtool):
    result = run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass(promtool):
    result = run(promtool, "test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_compose_prometheus_config(promtool):
    result = run(promtool, "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_prometheus_scrapes_gumbeld_as_job_gumbeld():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["gumbeld"]["static_configs"][0]["targets"] == ["gumbeld:9464"]
    assert config["rule_files"] == ["alerts.yml"]


def test_every_alert_is_there_with_severity_summary_and_description():
    by_name = {rule["alert"]: rule for rule in rules()}
    assert set(by_name) >= REQUIRED_ALERTS
    for name, rule in by_name.items():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name
        assert rule.get("for"), f"{name} fires on a single evaluation"


def test_alerts_use_only_exposed_metrics_and_counters_only_through_rate():
    exposed = exposed_metric_names() | PENDING_METRICS
    for rule in rules():
        assert metric_names(rule["expr"]) <= exposed, (rule["alert"], metric_names(rule["expr"]) - exposed)
        assert bare_counters(rule["expr"]) == [], (rule["alert"], bare_counters(rule["expr"]))


def test_every_alert_is_unit_tested_firing_and_quiet():
    fired, quiet = set(), set()
    for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in rules()}
    assert names - fired == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet"


def test_the_prometheusrule_wraps_the_same_rules():
    spec = importlib.util.spec_from_file_location("sync_rules", KUBERNETES / "sync_rules.py")
    sync_rules = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync_rules)
    written = (KUBERNETES / "prometheusrule.yaml").read_text()
    assert written == sync_rules.render(ALERTS.read_text()), \
        "prometheusrule.yaml is out of date: run `python deploy/kubernetes/sync_rules.py`"
    resource = yaml.safe_load(written)
    assert resource["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


@pytest.mark.parametrize("expr, bare", [
    ('rate(gumbeld_events_total[5m])', []),
    ('sum by (key) (increase(gumbeld_events_total{key="a"}[1h]))', []),
    ('histogram_quantile(0.9, sum by (le) (rate(gumbeld_training_step_duration_seconds_bucket[5m])))', []),
    ('gumbeld_events_total', ["gumbeld_events_total"]),
    ('sum(gumbeld_events_total) / rate(gumbeld_bad_events_total[1m])', ["gumbeld_events_total"]),
    ('rate(sum(gumbeld_training_step_duration_seconds_count)[5m:])', ["gumbeld_training_step_duration_seconds_count"]),
    ('gumbeld_probability{key="gumbeld_events_total"}', []),
])
def test_the_bare_counter_check_itself(expr, bare):
    assert bare_counters(expr) == bare
