"""The chart's copies of the dashboard and alert rules, and what the chart makes of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.helm.chart import (
    ALL_SCENARIOS,
    CHART,
    Helm,
    Manifest,
    Rendered,
    Scenario,
    values,
)
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
MODEL = "ocr-platform-model"


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
        # Every release scrapes as the same jobs: the operator's `namespace` label tells them
        # apart, and the rules and the dashboard select by it. Nothing may drop or overwrite it.
        for relabeling in endpoint["relabelings"]:
            assert relabeling.get("targetLabel") != "namespace", relabeling
            assert relabeling["action"] not in ("labeldrop", "labelkeep", "labelmap"), relabeling
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


MONITORING_KINDS = {"PodMonitor", "ServiceMonitor", "PrometheusRule"}


def _objects(rendered: Rendered) -> set[tuple[str, str]]:
    return {(doc["kind"], doc["metadata"]["name"]) for doc in rendered.docs}


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_without_prometheus_operator_the_monitors_are_left_out(
    helm: Helm, rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    """A cluster without monitoring.coreos.com/v1 would refuse the whole release: the chart
    renders everything else (the dashboard ConfigMap too) and no monitor or rule."""
    without = helm.render(scenario, api_versions=())
    left_out = _objects(rendered_all[scenario.name]) - _objects(without)
    assert not _objects(without) - _objects(rendered_all[scenario.name])
    assert not {doc["apiVersion"] for doc in without.docs} & {"monitoring.coreos.com/v1"}
    # The monitors and rule, and the metrics Service that only a ServiceMonitor reads.
    for kind, name in left_out:
        assert kind in MONITORING_KINDS or (kind, name) == ("Service", f"{MODEL}-metrics")


def test_with_prometheus_operator_the_enabled_monitors_are_rendered(
    rendered_all: dict[str, Rendered],
) -> None:
    kinds = {doc["kind"] for doc in rendered_all["production"].docs}
    assert {"PodMonitor", "PrometheusRule", "ConfigMap"} <= kinds
    assert "ServiceMonitor" in {doc["kind"] for doc in rendered_all["servicemonitor"].docs}


def test_default_install_without_prometheus_operator_succeeds(helm: Helm) -> None:
    """podMonitor.enabled is true by default: still nothing the API server would refuse."""
    result = helm.template(api_versions=())
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert docs
    assert not {doc["kind"] for doc in docs} & MONITORING_KINDS
