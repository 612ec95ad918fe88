"""Write prometheusrule.yaml: the alert rules of ../prometheus/alerts.yml in a PrometheusRule.

Run after changing alerts.yml: ``python deploy/kubernetes/sync_rules.py``. The rules are copied
as text, indented under ``spec:``, so both files read the same; the tests check they agree.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parent / "prometheus" / "alerts.yml"
TARGET = HERE / "prometheusrule.yaml"

HEADER = """\
# Generated from deploy/prometheus/alerts.yml by deploy/kubernetes/sync_rules.py: edit alerts.yml,
# then run `python deploy/kubernetes/sync_rules.py`. Needs the Prometheus Operator's CRDs; its
# Prometheus selects rules by label (with kube-prometheus-stack add `release: <its release name>`).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: gumbeld
  labels:
    app.kubernetes.io/name: gumbeld
    app.kubernetes.io/part-of: gumbeld
spec:
"""


def render(alerts_text: str) -> str:
    """The PrometheusRule text for the rule file ``alerts_text`` (its leading comments dropped)."""
    lines = alerts_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = "".join(f"  {line}\n" if line.strip() else "\n" for line in lines[start:])
    return HEADER + body


def main() -> int:
    TARGET.write_text(render(ALERTS.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {TARGET}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
