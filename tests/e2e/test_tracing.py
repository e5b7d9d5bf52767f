"""Traces cross the gRPC hop: one trace from the gateway's HTTP span to the model's stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Platform
from tests.support.images import line_png
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.processes import wait_until

pytestmark = pytest.mark.e2e

SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 1, 2, 3
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


def trace_of(receiver: OtlpReceiver, span_name: str) -> list[ReceivedSpan]:
    """All spans of the (only) trace that holds a span named `span_name`."""
    named = [s for s in receiver.spans() if s.name == span_name]
    assert len({s.trace_id for s in named}) == 1
    return [s for s in receiver.spans() if s.trace_id == named[0].trace_id]


def test_one_upload_is_one_trace_across_both_processes(
    traced: Platform, receiver: OtlpReceiver
) -> None:
    response = traced.ocr(files={"image_file": ("t.png", line_png("Traced request 5"))})
    assert response.status_code == 200
    # Each process exports in its own batches, and the model's server span ends after its
    # stage spans: wait for every span read below, not only the first of each service.
    wanted = {
        ("ocr-gateway", SPAN_KIND_SERVER, "POST /gateway/ocr"),
        ("ocr-gateway", SPAN_KIND_CLIENT, MODEL_INFER),
        ("ocr-model", SPAN_KIND_SERVER, MODEL_INFER),
        ("ocr-model", SPAN_KIND_INTERNAL, "ocr.recognize"),
    }
    wait_until(
        lambda: wanted <= {(s.service, s.kind, s.name) for s in receiver.spans()},
        15,
        "spans from both services",
    )
    spans = trace_of(receiver, "ocr.recognize")
    by_kind = {(s.service, s.kind, s.name): s for s in spans}
    http = by_kind[("ocr-gateway", SPAN_KIND_SERVER, "POST /gateway/ocr")]
    client = by_kind[("ocr-gateway", SPAN_KIND_CLIENT, MODEL_INFER)]
    server = by_kind[("ocr-model", SPAN_KIND_SERVER, MODEL_INFER)]
    assert client.trace_id == http.trace_id == server.trace_id
    assert server.parent_span_id == client.span_id  # traceparent crossed the gRPC hop
    stages = {s.name: s for s in spans if s.service == "ocr-model" and s.name.startswith("ocr.")}
    assert set(stages) == {"ocr.decode", "ocr.preprocess", "ocr.recognize"}
    assert all(stage.parent_span_id == server.span_id for stage in stages.values())
    recognize = stages["ocr.recognize"].attributes
    assert recognize["ocr.lang"] == "eng"
    assert recognize["ocr.words"] == 3
    assert 0 < recognize["ocr.confidence"] <= 100
    assert stages["ocr.decode"].attributes["ocr.pixels"] == 800 * 80
    assert server.attributes["ocr.psm"] == 3

    # Log lines written while the request's spans were active carry its trace id.
    lines = [
        json.loads(line)
        for line in Path(traced.service.log).read_text().splitlines()
        if line.startswith("{")
    ]
    traced_lines = [line for line in lines if line.get("trace_id") == http.trace_id]
    assert {line["service"] for line in traced_lines} >= {"gateway"}
    assert all(len(str(line["span_id"])) == 16 for line in traced_lines)


def test_probes_are_not_traced(traced: Platform, receiver: OtlpReceiver) -> None:
    import httpx

    for path in ("/healthz", "/readyz", "/metrics"):
        httpx.get(f"{traced.url}{path}", timeout=5)
    traced.ocr(files={"image_file": ("t.png", line_png("Marker span"))})
    wait_until(
        lambda: len([s for s in receiver.spans() if s.name == "ocr.recognize"]) >= 2, 15, "spans"
    )
    names = {s.name for s in receiver.spans()}
    assert not any(probe in name for name in names for probe in ("healthz", "readyz", "metrics"))
    assert not any(
        "ServerReady" in name or "ModelReady" in name or "Health" in name for name in names
    )
