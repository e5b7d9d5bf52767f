"""A real Prometheus scrapes the real services: every dashboard and alert query returns data.

Prometheus 2.x from Debian (`make system-deps`) runs on a free loopback port with the canonical
observability/prometheus/prometheus.yml (targets pointed at this test's ports, 1 s scrapes),
the canonical alert rules and exemplar storage on.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image

from tests.e2e.conftest import Platform
from tests.support.images import TESTDATA, encode, line_png
from tests.support.model_documents import line_pages, scanned_pdf
from tests.support.otlp import OtlpReceiver
from tests.support.processes import ROOT, Service, free_port, http_ok, start, wait_until
from tests.support.promql import Query, dashboard_queries, presence_form, render, rule_queries

pytestmark = pytest.mark.e2e

OBSERVABILITY = ROOT / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "ocr-platform.json"
RULES = OBSERVABILITY / "prometheus" / "alerts.yaml"
#: The `namespace` label the canonical scrape config gives both local targets.
NAMESPACE = "local"
VARIABLES = {
    "namespace": NAMESPACE,
    "gateway_job": "ocr-gateway",
    "model_job": "ocr-model",
    "__rate_interval": "30s",
    "__interval": "5s",
    "__range": "5m",
}


def prometheus_config(platform: Platform, path: Path) -> Path:
    """The canonical scrape config with this test's targets and a 1 s interval.

    Only the targets change: the static labels (`namespace`) stay as the canonical file sets them.
    """
    config: dict[str, Any] = yaml.safe_load(
        (OBSERVABILITY / "prometheus" / "prometheus.yml").read_text()
    )
    config["global"]["scrape_interval"] = "1s"
    config["global"]["scrape_timeout"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(RULES)]
    ports = {"ocr-gateway": platform.gateway_port, "ocr-model": platform.model_http_port}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(ports) <= set(jobs)
    for name, port in ports.items():
        (static,) = jobs[name]["static_configs"]
        assert static["labels"]["namespace"] == NAMESPACE, static
        static["targets"] = [f"127.0.0.1:{port}"]
    path.write_text(yaml.safe_dump(config))
    return path


class Prometheus:
    """The HTTP API of a Prometheus we started."""

    def __init__(self, service: Service, port: int) -> None:
        self.service = service
        self.url = f"http://127.0.0.1:{port}"

    def query(self, expr: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body: dict[str, Any] = response.json()
        return body

    def vector(self, expr: str) -> list[dict[str, Any]]:
        body = self.query(expr)
        assert body["status"] == "success", (expr, body.get("error"))
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


@pytest.fixture(scope="module")
def prometheus(traced: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    work = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    service = start(
        [
            "prometheus",
            f"--config.file={prometheus_config(traced, work / 'prometheus.yml')}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
            "--log.level=warn",
        ],
        {},
        work / "prometheus.log",
    )
    server = Prometheus(service, port)
    try:
        wait_until(
            lambda: not service.alive() or http_ok(f"{server.url}/-/ready"), 30, "prometheus"
        )
        assert service.alive(), service.output()
        # Discovery is throttled: the first scrape lands a few seconds after start.
        wait_until(
            lambda: len([s for s in server.vector("up == 1")]) == 2, 30, "both targets scraped"
        )
        yield server
    finally:
        service.stop(signal.SIGTERM)


UPLOADS = [
    ("line.png", line_png("Prometheus sees this 1"), 200),
    ("scan.tif", (TESTDATA / "phototest.tif").read_bytes(), 200),
    # A document of three pages, one model call each: the Documents row's traffic.
    ("pages.pdf", scanned_pdf(line_pages("Page one of three", "Page two", "Page three")), 200),
    ("blank.png", encode(Image.new("L", (400, 200), 255)), 200),
    ("truncated.png", line_png("cut short")[:300], 422),  # reaches the model, refused there
    ("notes.png", b"plain text, not an image", 415),  # refused by the gateway itself
]


@pytest.fixture(scope="module")
def traffic(traced: Platform, prometheus: Prometheus) -> None:
    """Good, empty and bad uploads in two rounds, each scraped before the next.

    A series is born with its first request; Prometheus sees its rise only from the second
    round on, as it would in production after the first minute of traffic.
    """
    for round_ in range(2):
        for name, data, status in UPLOADS:
            assert traced.ocr(files={"image_file": (name, data)}).status_code == status
        seen = round_ + 1
        check = (
            f'ocr_gateway_requests_total{{status="415"}} >= {seen} and on () '
            f'ocr_requests_total{{status="error"}} >= {seen}'
        )

        def scraped(check: str = check) -> bool:
            return bool(prometheus.vector(check))

        wait_until(scraped, 30, "scraped traffic")


def has_finite_value(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


def ids(queries: list[Query]) -> list[str]:
    return [f"{q.title}:{q.ref_id}" for q in queries]


DASHBOARD_QUERIES = dashboard_queries(DASHBOARD)
RULE_QUERIES = rule_queries(RULES)


@pytest.mark.usefixtures("traffic")
@pytest.mark.parametrize("query", DASHBOARD_QUERIES, ids=ids(DASHBOARD_QUERIES))
def test_every_dashboard_query_returns_data(prometheus: Prometheus, query: Query) -> None:
    expr = render(query.expr, VARIABLES)
    result = prometheus.vector(expr)
    assert result, f"panel {query.title!r} would show No data: {expr}"
    assert has_finite_value(result), f"panel {query.title!r} has only NaN: {expr}"


@pytest.mark.usefixtures("traffic")
@pytest.mark.parametrize("query", RULE_QUERIES, ids=ids(RULE_QUERIES))
def test_every_rule_query_parses_and_watches_existing_series(
    prometheus: Prometheus, query: Query
) -> None:
    prometheus.vector(query.expr)  # parses and runs
    result = prometheus.vector(presence_form(query.expr))
    assert result, f"{query.title}: no series for {query.expr}"
    # Every result keeps the namespace, so that alerts of two releases stay apart.
    namespaces = {sample["metric"].get("namespace") for sample in result}
    assert namespaces == {NAMESPACE}, f"{query.title}: namespaces {namespaces}"


@pytest.mark.usefixtures("traffic")
def test_documents_are_counted_by_their_pages(prometheus: Prometheus) -> None:
    """Each round sent one document of three pages beside the images (one page each)."""
    selector = f'namespace="{NAMESPACE}"'
    (over_two,) = prometheus.vector(
        f"sum(ocr_gateway_document_pages_count{{{selector}}})"
        f' - sum(ocr_gateway_document_pages_bucket{{{selector}, le="2.0"}})'
    )
    assert float(over_two["value"][1]) == 2
    outcomes = {
        sample["metric"]["outcome"]: float(sample["value"][1])
        for sample in prometheus.vector(f"ocr_gateway_pages_total{{{selector}}}")
    }
    # Every page that reached the model: the truncated image is the one refused each round.
    assert outcomes == {"ok": 2 * 6, "error": 2}


@pytest.mark.usefixtures("traffic")
def test_rules_are_loaded_and_healthy(prometheus: Prometheus) -> None:
    groups = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == len(RULE_QUERIES)
    assert all(rule["health"] in ("ok", "unknown") for rule in rules), rules


@pytest.mark.usefixtures("traffic")
@pytest.mark.parametrize(
    "metric",
    [
        "ocr_gateway_request_duration_seconds_bucket",
        "ocr_gateway_upstream_duration_seconds_bucket",
        "ocr_gateway_page_seconds_bucket",
        "ocr_stage_duration_seconds_bucket",
    ],
)
def test_latency_exemplars_link_to_real_traces(
    prometheus: Prometheus, receiver: OtlpReceiver, metric: str
) -> None:
    now = time.time()
    response = httpx.get(
        f"{prometheus.url}/api/v1/query_exemplars",
        params={"query": metric, "start": now - 600, "end": now},
        timeout=10,
    ).json()
    assert response["status"] == "success"
    trace_ids = {
        exemplar["labels"]["trace_id"]
        for series in response["data"]
        for exemplar in series["exemplars"]
    }
    assert trace_ids, f"no exemplars on {metric}"
    wait_until(lambda: bool(trace_ids & {s.trace_id for s in receiver.spans()}), 10, "traces")
