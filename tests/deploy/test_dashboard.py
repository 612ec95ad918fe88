"""deploy/grafana/dashboards/gumbeld.json, read as Grafana would load it."""
from __future__ import annotations

import json

from .helpers import DASHBOARD, PENDING_METRICS, bare_counters, exposed_metric_names, metric_names

REQUIRED_METRICS = {  # what the dashboard must show
    "gumbeld_probability", "gumbeld_divergence", "gumbeld_temperature", "gumbeld_generator_loss",
    "gumbeld_discriminator_loss", "gumbeld_events_total", "gumbeld_bad_events_total",
    "gumbeld_consumer_lag_messages", "gumbeld_consumer_lag_seconds",
    "gumbeld_training_step_duration_seconds_bucket", "gumbeld_checkpoint_age_seconds",
    "gumbeld_snapshots_published_total", "gumbeld_active_keys", "gumbeld_settled_keys",
    "gumbeld_training_key_steps_total", "gumbeld_keys_evicted_total", "gumbeld_event_loop_lag_seconds_bucket",
}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    return dashboard()["panels"]


def exprs() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels() for t in p["targets"]]


def test_uid_and_title_are_stable():
    d = dashboard()
    assert d["uid"] == "gumbeld-overview"
    assert d["title"] == "gumbeld"
    assert d.get("id") is None


def test_variables():
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    key = variables["key"]
    assert key["type"] == "query"
    assert key["query"] == "label_values(gumbeld_probability, key)"
    assert key["datasource"]["uid"] == "${datasource}"


def test_every_panel_has_title_description_unit_and_the_datasource_variable():
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids))
    for p in panels():
        assert p["title"].strip(), p
        assert len(p["description"]) > 20, p["title"]
        assert p["fieldConfig"]["defaults"]["unit"], p["title"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
            assert t["expr"].strip(), p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]


def test_panels_do_not_overlap():
    taken = set()
    for p in panels():
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, p["title"]
        taken |= cells


def test_counters_only_through_rate_or_increase():
    for title, expr in exprs():
        assert bare_counters(expr) == [], (title, expr)


def test_every_metric_exists_in_the_daemon_exposition():
    exposed = exposed_metric_names()
    used = set().union(*(metric_names(expr) for _, expr in exprs()))
    assert used - exposed <= PENDING_METRICS, used - exposed - PENDING_METRICS
    assert REQUIRED_METRICS <= used, REQUIRED_METRICS - used
    for variable in dashboard()["templating"]["list"]:
        assert metric_names(variable.get("definition", "")) <= exposed


def test_chosen_key_panels_filter_on_key():
    for p in panels():
        if "$key" in p["title"]:
            assert all('key="$key"' in t["expr"] for t in p["targets"]), p["title"]
