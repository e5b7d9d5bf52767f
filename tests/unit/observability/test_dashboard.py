"""The Grafana dashboard: structure, datasources, variables, and PromQL that parses and has data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.promql import dashboard_queries, iter_panels, render, vector_selectors
from tests.unit.observability.helpers import (
    DASHBOARD,
    DASHBOARD_PROVIDERS,
    DASHBOARD_VARIABLES,
    DATASOURCES,
    Promtool,
    dump_yaml,
    load_yaml,
)

pytestmark = pytest.mark.unit

PROMETHEUS = {"type": "prometheus", "uid": "${datasource}"}
TEMPO = {"type": "tempo", "uid": "${traces}"}
ROWS = ["Traffic", "Latency", "Documents", "Engine", "Resources", "Health"]


def _dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def _panels() -> list[dict[str, Any]]:
    return [dict(panel) for panel in iter_panels(_dashboard()) if panel["type"] != "row"]


def _variables() -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in _dashboard()["templating"]["list"]}


def test_identity_is_stable() -> None:
    dashboard = _dashboard()
    assert (dashboard["uid"], dashboard["title"]) == ("ocr-platform", "OCR platform")
    assert dashboard["schemaVersion"] >= 39
    assert dashboard.get("id") is None, "an id is per Grafana instance, never committed"


def test_rows_in_order() -> None:
    rows = [panel["title"] for panel in iter_panels(_dashboard()) if panel["type"] == "row"]
    assert rows == ROWS


def test_datasource_variables() -> None:
    variables = _variables()
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource",
        "prometheus",
    )
    assert (variables["traces"]["type"], variables["traces"]["query"]) == ("datasource", "tempo")


@pytest.mark.parametrize(
    ("name", "query"),
    [
        # A gauge without labels: present from a gateway's first scrape, before any request.
        ("namespace", "label_values(ocr_gateway_requests_in_flight, namespace)"),
        ("gateway_job", 'label_values(ocr_gateway_requests_total{namespace="$namespace"}, job)'),
        ("model_job", 'label_values(ocr_requests_total{namespace="$namespace"}, job)'),
    ],
)
def test_query_variables(name: str, query: str) -> None:
    variable = _variables()[name]
    assert (variable["type"], variable["query"]) == ("query", query)
    assert variable["datasource"] == PROMETHEUS
    assert (variable["multi"], variable["includeAll"]) == (False, False)


def test_namespace_is_chosen_before_the_jobs() -> None:
    """Every release scrapes as jobs ocr-gateway and ocr-model: the namespace tells them apart."""
    names = list(_variables())
    assert names.index("namespace") < names.index("gateway_job") < names.index("model_job")


def test_every_selector_is_filtered_by_namespace() -> None:
    """Two releases in one cluster share the job names; no panel may mix their series."""
    for query in dashboard_queries(DASHBOARD):
        selectors = vector_selectors(query.expr)
        assert selectors, query.title
        for selector in selectors:
            matchers = [m.strip() for m in selector.matchers.split(",")]
            assert 'namespace="$namespace"' in matchers, f"{query.title}: {selector}"


def _color_at(thresholds: dict[str, Any], value: float) -> str:
    """The color Grafana's absolute thresholds give `value` (the last step it reaches)."""
    steps = thresholds["steps"]
    assert thresholds["mode"] == "absolute"
    assert steps[0]["value"] is None
    color = str(steps[0]["color"])
    for step in steps[1:]:
        if value >= step["value"]:
            color = str(step["color"])
    return color


def test_targets_up_shows_the_share_and_is_green_only_when_all_are_up() -> None:
    (panel,) = [p for p in _panels() if p["title"] == "Scrape targets up"]
    (target,) = panel["targets"]
    selector = 'up{namespace="$namespace", job=~"$gateway_job|$model_job"}'
    assert target["expr"] == f"sum by (job) ({selector})\n/\ncount by (job) ({selector})"
    defaults = panel["fieldConfig"]["defaults"]
    assert (defaults["unit"], defaults["min"], defaults["max"]) == ("percentunit", 0, 1)
    thresholds = defaults["thresholds"]
    assert _color_at(thresholds, 0) == "red"
    for partial in (1 / 3, 0.5, 2 / 3, 0.9):
        assert _color_at(thresholds, partial) not in ("green", "red"), partial
    assert _color_at(thresholds, 1) == "green"


def _datasource_references(node: object) -> Iterator[object]:
    """Every value of a `datasource`/`datasourceUid` key anywhere in the JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"datasource", "datasourceUid"}:
                yield value
            yield from _datasource_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _datasource_references(item)


def test_no_hard_coded_datasource() -> None:
    references = list(_datasource_references(_dashboard()))
    assert references
    strays = [ref for ref in references if ref not in (PROMETHEUS, TEMPO)]
    assert not strays, f"datasources not chosen through a variable: {strays}"


def test_every_panel_has_a_title_and_targets_on_its_datasource() -> None:
    for panel in _panels():
        assert panel.get("title"), f"untitled panel {panel['id']}"
        assert panel.get("description"), f"{panel['title']}: no description"
        targets = panel.get("targets", [])
        assert targets, f"{panel['title']}: no target"
        assert len({target["refId"] for target in targets}) == len(targets)
        for target in targets:
            assert target["datasource"] == panel["datasource"], panel["title"]


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    panels = list(iter_panels(_dashboard()))
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_latency_quantiles_show_exemplars() -> None:
    latency = [
        target
        for panel in _panels()
        for target in panel["targets"]
        if re.search(r"histogram_quantile\(.*_seconds_bucket", target.get("expr", ""), re.S)
    ]
    assert len(latency) >= 8
    assert all(target["exemplar"] is True for target in latency)


def test_ranges_use_the_rate_interval() -> None:
    for query in dashboard_queries(DASHBOARD):
        for window in re.findall(r"\[([^\]]*)\]", query.expr):
            assert window == "$__rate_interval", f"{query.title}: [{window}]"


def _row_panels(title: str) -> list[dict[str, Any]]:
    """The panels laid out under the row `title` (rows are not collapsed: they follow it)."""
    panels = list(iter_panels(_dashboard()))
    start = next(i for i, p in enumerate(panels) if p["type"] == "row" and p["title"] == title)
    under = []
    for panel in panels[start + 1 :]:
        if panel["type"] == "row":
            break
        under.append(dict(panel))
    return under


def test_documents_row_shows_pages_per_second_per_document_and_page_latency() -> None:
    documents = _row_panels("Documents")
    exprs = {panel["title"]: [t["expr"] for t in panel["targets"]] for panel in documents}
    selector = '{namespace="$namespace", job=~"$gateway_job"}'
    assert exprs["Pages read per second by outcome"] == [
        f"sum by (outcome) (rate(ocr_gateway_pages_total{selector}[$__rate_interval]))"
    ]
    assert any("ocr_gateway_document_pages_" in e for e in exprs["Pages per document (mean / p95)"])
    latency = exprs["Page read latency (p50 / p95)"]
    quantiles = [re.findall(r"^histogram_quantile\(([\d.]+),", expr) for expr in latency]
    assert quantiles == [["0.5"], ["0.95"]]
    assert all("ocr_gateway_page_seconds_bucket" in expr for expr in latency)
    units = [panel["fieldConfig"]["defaults"]["unit"] for panel in documents]
    assert units == ["short", "short", "s"]


def test_engine_row_shows_the_admission_wait_estimate_refusals_and_bytes() -> None:
    engine = {panel["title"]: panel for panel in _row_panels("Engine")}
    selector = '{namespace="$namespace", job=~"$model_job"}'
    estimate = engine["Admission: expected wait and cost estimate"]
    assert [t["expr"] for t in estimate["targets"]] == [
        f"max(ocr_admission_queue_seconds{selector} / ocr_engine_workers{selector})",
        f"avg(ocr_admission_estimate_seconds_per_megapixel{selector})",
        f"avg(ocr_admission_estimate_seconds_per_request{selector})",
    ]
    refusals = engine["Admission refusals by reason"]
    assert [t["expr"] for t in refusals["targets"]] == [
        f"sum by (reason) (rate(ocr_admission_refusals_total{selector}[$__rate_interval]))"
    ]
    assert "ocr_admission_queue_bytes" in engine["Admission: uploads held"]["targets"][0]["expr"]
    units = [
        engine[title]["fieldConfig"]["defaults"]["unit"] for title in engine if "Admission" in title
    ]
    assert units == ["s", "reqps", "bytes"]


def test_cpu_panel_counts_cores_per_job() -> None:
    exprs = [query.expr for query in dashboard_queries(DASHBOARD)]
    assert (
        "sum by (job) (rate(process_cpu_seconds_total"
        '{namespace="$namespace", job=~"$gateway_job|$model_job"}[$__rate_interval]))' in exprs
    )


def test_every_query_uses_only_defined_variables() -> None:
    """render() raises on an unknown variable; the dashboard's own are all defined."""
    assert set(DASHBOARD_VARIABLES) <= set(_variables())
    for query in dashboard_queries(DASHBOARD):
        assert "$" not in render(query.expr, DASHBOARD_VARIABLES), query.title


def _recorded_queries() -> list[dict[str, str]]:
    return [
        {"record": f"dashboard:query_{index}", "expr": render(query.expr, DASHBOARD_VARIABLES)}
        for index, query in enumerate(dashboard_queries(DASHBOARD))
    ]


def test_every_query_parses(promtool: Promtool, tmp_path: Path) -> None:
    rules = tmp_path / "dashboard_rules.yaml"
    dump_yaml({"groups": [{"name": "dashboard", "rules": _recorded_queries()}]}, rules)
    promtool.run("check", "rules", str(rules))


# --- Every query has data once both services served a few good requests and one bad one. ---
# The smallest such world: the bad upload is refused by the gateway (415) before any gRPC call,
# so no 5xx, no model error and no upstream error series exists yet. Series are written the way
# prometheus_client exposes them: labelled counters appear on first use, others at 0 at start.

INTERVAL = "15s"
STEPS = 8  # 2 minutes of samples, more than the 1m `$__rate_interval` used by render()
GATEWAY = {"namespace": "local", "job": "ocr-gateway", "instance": "127.0.0.1:8001"}
MODEL = {"namespace": "local", "job": "ocr-model", "instance": "127.0.0.1:8080"}
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    text = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{text}}}", "values": values}


def _counter(name: str, labels: dict[str, str], per_step: float = 1) -> dict[str, str]:
    return _series(name, labels, f"0+{per_step}x{STEPS}")


def _gauge(name: str, labels: dict[str, str], value: float) -> dict[str, str]:
    return _series(name, labels, f"{value}x{STEPS}")


def _histogram(
    name: str, labels: dict[str, str], buckets: tuple[float, ...], observed: float
) -> list[dict[str, str]]:
    """One observation of `observed` per step."""
    series = [
        _counter(f"{name}_bucket", {**labels, "le": str(le)}, 1 if observed <= le else 0)
        for le in buckets
    ]
    series.append(_counter(f"{name}_bucket", {**labels, "le": "+Inf"}))
    series.append(_counter(f"{name}_sum", labels, observed))
    series.append(_counter(f"{name}_count", labels))
    return series


def _good_and_bad_requests() -> list[dict[str, str]]:
    ocr = {"route": "/gateway/ocr", "method": "POST"}
    series = [
        _gauge("up", GATEWAY, 1),
        _gauge("up", MODEL, 1),
        _counter("ocr_gateway_requests_total", {**GATEWAY, **ocr, "status": "200"}),
        _series("ocr_gateway_requests_total", {**GATEWAY, **ocr, "status": "415"}, f"0 1x{STEPS}"),
        *_histogram("ocr_gateway_request_duration_seconds", {**GATEWAY, **ocr}, SECONDS, 0.3),
        *_histogram("ocr_gateway_upload_bytes", GATEWAY, (1024.0, 65536.0, 4194304.0), 50000),
        _gauge("ocr_gateway_requests_in_flight", GATEWAY, 0),
        *_histogram("ocr_gateway_document_pages", GATEWAY, (1.0, 2.0, 4.0, 8.0), 3),
        _counter("ocr_gateway_pages_total", {**GATEWAY, "outcome": "ok"}, 3),
        *_histogram("ocr_gateway_page_seconds", GATEWAY, SECONDS, 0.2),
        *_histogram(
            "ocr_gateway_upstream_duration_seconds",
            {**GATEWAY, "method": "ModelInfer"},
            SECONDS,
            0.2,
        ),
        _counter("ocr_requests_total", {**MODEL, "status": "success", "lang": "eng"}),
        *[
            series
            for stage in ("decode", "preprocess", "recognize")
            for series in _histogram(
                "ocr_stage_duration_seconds", {**MODEL, "stage": stage}, SECONDS, 0.05
            )
        ],
        *_histogram("ocr_queue_wait_seconds", MODEL, SECONDS, 0.001),
        _gauge("ocr_in_flight_requests", MODEL, 0),
        _gauge("ocr_engine_workers", MODEL, 2),
        _gauge("ocr_admission_queue_seconds", MODEL, 0),
        _gauge("ocr_admission_queue_bytes", MODEL, 0),
        _gauge("ocr_admission_estimate_seconds_per_megapixel", MODEL, 0.3),
        _gauge("ocr_admission_estimate_seconds_per_request", MODEL, 0.005),
        # Every reason is exported at 0 from the start: the panel has data before a refusal.
        *(
            _gauge("ocr_admission_refusals_total", {**MODEL, "reason": reason}, 0)
            for reason in ("deadline", "memory", "queue")
        ),
        *_histogram("ocr_image_pixels", MODEL, (1e4, 1e5, 1e6, 1e7), 480000),
        *_histogram("ocr_result_characters", MODEL, (10.0, 100.0, 1000.0), 42),
        *_histogram("ocr_result_words", MODEL, (1.0, 10.0, 100.0), 7),
        *_histogram(
            "ocr_result_confidence_percent",
            MODEL,
            tuple(float(percent) for percent in range(10, 101, 10)),
            91,
        ),
        _gauge("ocr_empty_results_total", MODEL, 0),
        *_histogram("request_predict_seconds", {**MODEL, "model_name": "ocr-model"}, SECONDS, 0.2),
    ]
    for target in (GATEWAY, MODEL):
        series.append(_counter("process_cpu_seconds_total", target, 0.5))
        series.append(_gauge("process_resident_memory_bytes", target, 1.5e8))
        series.append(_gauge("process_open_fds", target, 20))
    return series


def test_every_query_has_data_after_good_and_bad_requests(
    promtool: Promtool, tmp_path: Path
) -> None:
    """`absent(query)` is empty exactly when the query returns at least one series."""
    checks = [
        {
            "expr": f"absent({render(query.expr, DASHBOARD_VARIABLES)})",
            "eval_time": "2m",
            "exp_samples": [],
        }
        for query in dashboard_queries(DASHBOARD)
    ]
    empty_rules = tmp_path / "no_rules.yaml"
    dump_yaml({"groups": []}, empty_rules)
    tests = tmp_path / "dashboard_test.yaml"
    dump_yaml(
        {
            "rule_files": [empty_rules.name],
            "tests": [
                {
                    "interval": INTERVAL,
                    "input_series": _good_and_bad_requests(),
                    "promql_expr_test": checks,
                }
            ],
        },
        tests,
    )
    promtool.run("test", "rules", tests.name, cwd=tmp_path)


def test_datasources_link_exemplars_to_tempo() -> None:
    datasources = {source["uid"]: source for source in load_yaml(DATASOURCES)["datasources"]}
    assert datasources["prometheus"]["type"] == "prometheus"
    assert datasources["tempo"]["type"] == "tempo"
    links = datasources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert links == [{"name": "trace_id", "datasourceUid": "tempo"}]


def test_dashboard_provider_loads_files() -> None:
    (provider,) = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]
