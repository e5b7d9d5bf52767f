"""One document, one trace: the gateway's request span, one page call under it per page (the
calls run as concurrent tasks), and under each the model's server span and its stage spans.

The spans are read from a real OTLP receiver (conftest's `receiver`, which `traced` exports
to), with their start and end times, so the test also checks every span lies within its
parent.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Platform
from tests.support.model_documents import line_pages, scanned_pdf
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 1, 2, 3
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
REQUEST = "POST /gateway/ocr"
STAGES = ("ocr.decode", "ocr.preprocess", "ocr.recognize")
PAGES = ("one", "two", "three")


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


def ancestors(spans: list[ReceivedSpan], span: ReceivedSpan) -> list[ReceivedSpan]:
    """`span`'s parent, its parent's parent, ... as far as the received spans go."""
    by_id = {s.span_id: s for s in spans}
    chain: list[ReceivedSpan] = []
    while span.parent_span_id in by_id and len(chain) < len(spans):
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def assert_within(child: ReceivedSpan, parent: ReceivedSpan) -> None:
    assert parent.start_ns <= child.start_ns <= child.end_ns <= parent.end_ns, (child, parent)


def test_a_document_is_one_trace_with_a_page_call_per_page(
    traced: Platform, receiver: OtlpReceiver
) -> None:
    document = scanned_pdf(line_pages(*PAGES), dpi=150)
    response = traced.ocr(files={"image_file": ("doc.pdf", document, "application/pdf")})
    assert response.status_code == 200, response.text
    assert response.json()["page_count"] == len(PAGES)

    # Each process exports in batches, and a parent ends after its children: wait for every
    # span read below (the request span ends last on the gateway side, each server span after
    # its stages on the model side).
    def count(service: str, kind: int, name: str) -> int:
        return sum((s.service, s.kind, s.name) == (service, kind, name) for s in receiver.spans())

    wanted = {
        ("ocr-gateway", SPAN_KIND_SERVER, REQUEST): 1,
        ("ocr-gateway", SPAN_KIND_CLIENT, MODEL_INFER): len(PAGES),
        ("ocr-model", SPAN_KIND_SERVER, MODEL_INFER): len(PAGES),
        **{("ocr-model", SPAN_KIND_INTERNAL, stage): len(PAGES) for stage in STAGES},
    }
    wait_until(
        lambda: all(count(*key) >= n for key, n in wanted.items()),
        30,
        "every span of the document",
    )
    spans = receiver.spans()

    # Nothing else was traced in this module: every span received belongs to the one trace.
    assert len({s.trace_id for s in spans}) == 1, sorted({(s.service, s.name) for s in spans})

    [request] = [
        s
        for s in spans
        if (s.service, s.kind, s.name) == ("ocr-gateway", SPAN_KIND_SERVER, REQUEST)
    ]
    assert request.parent_span_id == ""  # the root: the upload carried no traceparent
    gateway = [s for s in spans if s.service == "ocr-gateway" and s is not request]
    assert all(request in ancestors(spans, s) for s in gateway)

    calls = [s for s in gateway if (s.kind, s.name) == (SPAN_KIND_CLIENT, MODEL_INFER)]
    assert len(calls) == len(PAGES)  # one per page, each under the request span
    for call in calls:
        assert_within(call, request)
        [server] = children(spans, call)  # the traceparent crossed the gRPC hop
        assert (server.service, server.kind, server.name) == (
            "ocr-model",
            SPAN_KIND_SERVER,
            MODEL_INFER,
        )
        assert_within(server, call)
        stages = children(spans, server)
        assert sorted(s.name for s in stages) == sorted(STAGES)
        for stage in stages:
            assert (stage.service, stage.kind) == ("ocr-model", SPAN_KIND_INTERNAL)
            assert_within(stage, server)

    # Every model span is under one of the page calls: none were orphaned or left at the root.
    model = [s for s in spans if s.service == "ocr-model"]
    assert all({c.span_id for c in calls} & {a.span_id for a in ancestors(spans, s)} for s in model)
