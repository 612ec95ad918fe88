"""The README is the user's reference: it must name every setting and every metric."""
from pathlib import Path

from prometheus_client import CollectorRegistry

from daemon.api.metrics import ApiMetrics, FollowerCollector
from daemon.metrics import Metrics
from tests.settings_tree import leaf_fields

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented():
    missing = [name for name in leaf_fields() if f"`{name}`" not in README]
    assert not missing, f"settings missing from README: {missing}"


def test_every_metric_is_documented():
    registry = CollectorRegistry()
    Metrics(registry, max_key_labels=1, clock=lambda: 0.0)
    ApiMetrics(registry)
    names = {metric.name for metric in registry.collect()}
    names |= {metric.name for metric in FollowerCollector(follower=None).describe()}  # gumbeld serve's
    missing = sorted(n for n in names if n.removesuffix("_total") not in README and n not in README)
    assert not missing, f"metrics missing from README: {missing}"


def test_readme_names_the_commands_ci_runs():
    assert "scripts/run" in README and "scripts/test" in README
    assert "scripts/test" in (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
