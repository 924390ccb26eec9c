"""The Grafana dashboard in deploy/ asks only for series that /metrics exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps.core import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/deskpilot-dashboard.json"


@pytest.mark.django_db
def test_every_series_the_dashboard_queries_is_exposed(client, settings):
    # given: /metrics with at least one sample of every recorded metric
    settings.METRICS_TOKEN = "t" * 40
    batch = metrics.Batch()
    for spec in metrics.CATALOGUE:
        labels = {name: "x" for name in spec.labels}
        if spec.kind == "counter":
            batch.inc(spec, **labels)
        else:
            batch.observe(spec, 0.1, **labels)
    assert batch.flush()
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + "t" * 40).content.decode()
    # (a gauge with nothing to report yet, e.g. eval scores before any run, has only its TYPE)
    exposed = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE)) | {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }
    # when: the dashboard's queries are read
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    asked = {name for expr in expressions for name in re.findall(r"deskpilot_[a-z0-9_]+", expr)}
    # then
    assert len(dashboard["panels"]) >= 15
    assert asked - exposed == set()
