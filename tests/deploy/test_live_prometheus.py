"""gumbeld scraped by a real Prometheus: every dashboard query answers with data, the alert rules
and the dashboard's variables evaluate, the exposition passes ``promtool check metrics``, and the
image's health check command works against the running daemon.

The daemon runs the synthetic source with two keys but ``model.max_keys 1`` and ``model.max_keys_policy
dead_letter``, so the second key's events are rejected (reason key_limit): the bad-event panels have
data too. Only the consumer-lag panels, which need the Kafka source, and the eviction panel, whose
series appear with the first eviction (none happens here), may come back empty.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from .helpers import ALERTS, DASHBOARD, PENDING_METRICS, ROOT, metric_names

# Series that appear only once something happens that this stack does not provoke.
EVENT_ONLY_METRICS = frozenset({"gumbeld_keys_evicted_total"})
from .test_dockerfile import healthcheck_command

SUBSTITUTIONS = {"$key": "default", "$instance": ".*", "$__rate_interval": "1m", "$__interval": "15s",
                 "$__range": "1h"}
WAIT_FOR_DATA = 40.0  # seconds, from the start of Prometheus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def substitute(expr: str) -> str:
    for variable, value in sorted(SUBSTITUTIONS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def dashboard_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(f"{p['title']} [{t['refId']}]", substitute(t["expr"])) for p in panels for t in p["targets"]]


def kafka_only(expr: str) -> bool:
    names = metric_names(expr)
    return bool(names) and names <= PENDING_METRICS


def may_be_empty(expr: str) -> bool:
    """Kafka-only queries, and those of series that appear only on an event the stack never causes."""
    names = metric_names(expr)
    return kafka_only(expr) or (bool(names) and names <= PENDING_METRICS | EVENT_ONLY_METRICS)


@dataclass
class Stack:
    tmp: Path
    daemon: subprocess.Popen | None = None
    prometheus: subprocess.Popen | None = None
    daemon_port: int = 0
    prometheus_url: str = ""
    log: list[str] = field(default_factory=list)

    def start_daemon(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUMBELD_")}
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--metrics.port", "0",
             "--checkpoint.directory", str(self.tmp / "state"), "--dead_letter.path", str(self.tmp / "dl.jsonl"),
             "--publish_interval", "0.5", "--checkpoint.interval", "1",
             "--sinks.stdout", "false", "--sinks.jsonl_path", str(self.tmp / "snapshots.jsonl"),
             "--source.synthetic.keys", '{"default": {}, "overflow": {}}', "--model.max_keys", "1",
             "--model.max_keys_policy", "dead_letter",
             "--source.synthetic.rate", "5000", "--training.device", "cpu"],
            cwd=self.tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=lambda: self.log.extend(self.daemon.stderr), daemon=True).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for line in list(self.log):
                match = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", line)
                if match:
                    self.daemon_port = int(match.group(1))
                    return
            assert self.daemon.poll() is None, f"gumbeld exited {self.daemon.returncode}:\n{''.join(self.log)}"
            time.sleep(0.05)
        raise AssertionError(f"gumbeld did not start:\n{''.join(self.log)}")

    def start_prometheus(self, binary: str) -> None:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{"job_name": "gumbeld",
                                "static_configs": [{"targets": [f"127.0.0.1:{self.daemon_port}"]}]}],
        }
        (self.tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        self.prometheus_url = f"http://127.0.0.1:{port}"
        with open(self.tmp / "prometheus.log", "wb") as log:
            self.prometheus = subprocess.Popen(
                [binary, f"--config.file={self.tmp / 'prometheus.yml'}", f"--storage.tsdb.path={self.tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.prometheus.poll() is None, self.prometheus_log()
            try:
                if get(f"{self.prometheus_url}/-/ready", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"prometheus did not become ready:\n{self.prometheus_log()}")

    def prometheus_log(self) -> str:
        return (self.tmp / "prometheus.log").read_text(errors="replace")

    def api(self, path: str, **params: str) -> dict:
        status, body = get(f"{self.prometheus_url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", (path, params, answer)
        return answer["data"]

    def query(self, expr: str) -> list:
        return self.api("query", query=expr)["result"]

    def stop_daemon(self) -> int:
        self.daemon.send_signal(signal.SIGTERM)
        return self.daemon.wait(timeout=30)

    def stop(self) -> None:
        for process in (self.daemon, self.prometheus):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture(scope="module")
def stack(prometheus_bin, tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("live"))
    try:
        running.start_daemon()
        running.start_prometheus(prometheus_bin)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def answers(stack) -> dict[str, list]:
    """Each dashboard query's result, once every one that can have data has it (or time is up)."""
    queries = dashboard_queries()
    deadline = time.monotonic() + WAIT_FOR_DATA
    while True:
        results = {title: stack.query(expr) for title, expr in queries}
        missing = [t for t, e in queries if not may_be_empty(e) and not results[t]]
        if not missing or time.monotonic() > deadline:
            return results
        time.sleep(1)


def test_every_dashboard_query_returns_data(answers):
    queries = dict(dashboard_queries())
    empty = [title for title, result in answers.items() if not result and not may_be_empty(queries[title])]
    assert empty == [], f"no data for: {empty}"


def test_queries_that_may_be_empty_are_at_least_valid(stack):
    optional = [(title, expr) for title, expr in dashboard_queries() if may_be_empty(expr) and not kafka_only(expr)]
    assert optional, "the eviction panel is expected"
    for _, expr in optional:
        stack.query(expr)  # asserts status success


def test_kafka_only_queries_are_at_least_valid(stack):
    kafka = [(title, expr) for title, expr in dashboard_queries() if kafka_only(expr)]
    assert len(kafka) >= 2, "the consumer-lag panels are expected"
    for _, expr in kafka:
        stack.query(expr)  # asserts status success


def test_dashboard_variables_find_the_key_and_the_instance(stack, answers):
    keys = stack.api("label/key/values", **{"match[]": "gumbeld_probability"})
    assert keys == ["default"]  # "overflow" is past model.max_keys
    instances = stack.api("label/instance/values", **{"match[]": "gumbeld_build_info"})
    assert instances == [f"127.0.0.1:{stack.daemon_port}"]


def test_bad_events_are_the_rejected_key(stack, answers):
    (series,) = stack.query("sum by (reason) (gumbeld_bad_events_total)")
    assert series["metric"] == {"reason": "key_limit"}


def test_alert_rules_evaluate_without_errors(stack, answers):
    deadline = time.monotonic() + 10
    while True:
        rules = [r for g in stack.api("rules")["groups"] for r in g["rules"]]
        if all(r["health"] == "ok" for r in rules) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(rules) == sum(len(group["rules"]) for group in yaml.safe_load(ALERTS.read_text())["groups"])
    assert {r["name"]: r["health"] for r in rules if r["health"] != "ok"} == {}
    firing = [a["labels"]["alertname"] for a in stack.api("alerts")["alerts"] if a["state"] == "firing"]
    assert firing == []


def test_promtool_finds_the_live_exposition_clean(stack, promtool):
    status, exposition = get(f"http://127.0.0.1:{stack.daemon_port}/metrics")
    assert status == 200
    result = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert (result.stdout + result.stderr).strip() == b""


def test_the_image_health_check_command(stack):
    command = healthcheck_command()
    command[0] = sys.executable  # "python" of the image's virtual environment
    env = {**os.environ, "GUMBELD_METRICS__PORT": str(stack.daemon_port)}
    assert subprocess.run(command, env=env, cwd=ROOT, timeout=30).returncode == 0
    env["GUMBELD_METRICS__PORT"] = str(free_port())  # nothing listens there
    assert subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=30).returncode != 0


def test_daemon_exits_0_on_sigterm(stack, answers):
    assert stack.stop_daemon() == 0, "".join(stack.log)
