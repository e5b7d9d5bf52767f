"""The chart's copies of the dashboard and alert rules, and what the chart makes of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.helm.chart import CHART, Manifest, Rendered, values
from tests.integration.helm.chart import CI_SCENARIOS as SCENARIOS
from tests.support.processes import ROOT

pytestmark = pytest.mark.integration

#: chart copy -> canonical file; the chart cannot read files outside its own folder.
COPIES = {
    CHART / "files" / "alerts.yaml": ROOT / "observability" / "prometheus" / "alerts.yaml",
    CHART / "files" / "dashboards" / "ocr-platform.json": (
        ROOT / "observability" / "grafana" / "dashboards" / "ocr-platform.json"
    ),
}
PRODUCTION = SCENARIOS[2]


@pytest.mark.parametrize(
    ("chart_copy", "canonical"), list(COPIES.items()), ids=[path.name for path in COPIES]
)
def test_chart_copies_match_the_canonical_files(chart_copy: Path, canonical: Path) -> None:
    assert chart_copy.read_bytes() == canonical.read_bytes(), (
        f"{chart_copy.relative_to(ROOT)} drifted from {canonical.relative_to(ROOT)}; "
        f"run: cp {canonical.relative_to(ROOT)} {chart_copy.relative_to(ROOT)}"
    )


def rule(rendered: Rendered) -> Manifest:
    rules = rendered.kind("PrometheusRule")
    assert len(rules) == 1
    return rules[0]


def test_runbook_urls_start_with_the_base_url(rendered_all: dict[str, Rendered]) -> None:
    base = values(PRODUCTION)["observability"]["prometheusRule"]["runbookBaseUrl"]
    alerts = [
        r
        for g in rule(rendered_all["production"])["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    ]
    assert alerts
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        assert url.startswith(base.rstrip("/") + "/observability/runbooks.md#"), url


def test_rules_are_the_canonical_rules(rendered_all: dict[str, Rendered]) -> None:
    """Apart from the runbook_url prefix, the rendered groups equal files/alerts.yaml."""
    base = values(PRODUCTION)["observability"]["prometheusRule"]["runbookBaseUrl"].rstrip("/")
    groups = rule(rendered_all["production"])["spec"]["groups"]
    for group in groups:
        for item in group["rules"]:
            if "runbook_url" in item.get("annotations", {}):
                url = item["annotations"]["runbook_url"]
                item["annotations"]["runbook_url"] = url.removeprefix(base + "/")
    canonical = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())["groups"]
    assert groups == canonical


def test_dashboard_configmap_carries_the_dashboard(rendered_all: dict[str, Rendered]) -> None:
    maps = [
        m
        for m in rendered_all["production"].kind("ConfigMap")
        if m["metadata"]["name"].endswith("-dashboard")
    ]
    assert len(maps) == 1
    assert maps[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(maps[0]["data"]["ocr-platform.json"])
    assert dashboard == json.loads((CHART / "files/dashboards/ocr-platform.json").read_text())


@pytest.mark.parametrize(
    ("scenario", "kind", "endpoints"),
    [
        ("production", "PodMonitor", "podMetricsEndpoints"),
        ("inferenceservice", "PodMonitor", "podMetricsEndpoints"),
        ("servicemonitor", "ServiceMonitor", "endpoints"),
        ("inferenceservice-servicemonitor", "ServiceMonitor", "endpoints"),
    ],
)
def test_monitors_name_the_jobs_the_dashboard_and_alerts_use(
    rendered_all: dict[str, Rendered], scenario: str, kind: str, endpoints: str
) -> None:
    monitors = rendered_all[scenario].kind(kind)
    jobs = {}
    for monitor in monitors:
        component = monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        (endpoint,) = monitor["spec"][endpoints]
        assert endpoint["interval"] == "15s"
        assert endpoint["path"] == "/metrics"
        (job,) = [r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
        jobs[component] = job
    assert jobs == {"gateway": "ocr-gateway", "model": "ocr-model"}
    alerts = (CHART / "files" / "alerts.yaml").read_text()
    assert "ocr-gateway" in alerts
    assert "ocr-model" in alerts


def test_inferenceservice_podmonitor_scrapes_the_rest_port(
    rendered_all: dict[str, Rendered],
) -> None:
    """A KServe predictor declares only h2c (8081); /metrics is on 8080 beside it."""
    model = next(
        m
        for m in rendered_all["inferenceservice"].kind("PodMonitor")
        if m["metadata"]["name"].endswith("-model")
    )
    (endpoint,) = model["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "h2c"
    (address,) = [r for r in endpoint["relabelings"] if r["targetLabel"] == "__address__"]
    assert address["replacement"] == "${1}:8080"
