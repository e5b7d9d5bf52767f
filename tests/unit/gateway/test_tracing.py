"""Gateway tracing in-process: `create_app(settings, tracer_provider)` with an in-memory exporter.

An upload makes one trace: the HTTP server span and, as its child, the gRPC client span of
ModelInfer, whose context reaches the model in the W3C `traceparent` header. Probes and scrapes
make none. The provider is passed to the app, never installed globally.

Beside what the FastAPI and gRPC instrumentations record (`http.*`, `rpc.*`), the route puts the
request's `ocr.*` attributes (media type, upload size, language, words found) on its server span.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpc.aio
import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.app import create_app
from gateway.protocol import pb
from tests.unit.gateway.fakes import Failure, FakeModelServicer, png_bytes, serve_fake_model
from tests.unit.gateway.helpers import SettingsFactory

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(30)]

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
_Context = grpc.aio.ServicerContext[Any, Any]


class MetadataServicer(FakeModelServicer):
    """Also keeps the metadata of every ModelInfer call."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metadata: list[dict[str, str]] = []

    async def ModelInfer(self, request: pb.ModelInferRequest, context: _Context) -> Any:
        self.metadata.append({str(k): str(v) for k, v in context.invocation_metadata() or ()})
        return await super().ModelInfer(request, context)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    memory.shutdown()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A tracer provider of this test alone, exporting each span as it ends."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield tracer_provider
    tracer_provider.shutdown()


@asynccontextmanager
async def traced_gateway(
    servicer: FakeModelServicer, make_settings: SettingsFactory, provider: TracerProvider
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serve_fake_model(servicer) as address:
        app = create_app(make_settings(model_address=address), provider)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
        ):
            yield app, client


async def upload(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/gateway/ocr", files={"image_file": ("scan.bin", png_bytes())})


def one(spans: list[ReadableSpan], kind: SpanKind) -> ReadableSpan:
    (span,) = [s for s in spans if s.kind is kind]
    return span


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def exemplar_trace_ids(app: FastAPI, metric: str) -> set[str]:
    return {
        sample.exemplar.labels["trace_id"]
        for family in app.state.metrics.registry.collect()
        for sample in family.samples
        if sample.name == metric and sample.exemplar is not None
    }


async def test_an_upload_is_one_trace_from_http_to_the_model_call(
    make_settings: SettingsFactory, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    servicer = MetadataServicer()
    async with traced_gateway(servicer, make_settings, provider) as (app, client):
        response = await upload(client)
        assert response.status_code == 200
    spans = list(exporter.get_finished_spans())

    server = one(spans, SpanKind.SERVER)
    assert server.name == "POST /gateway/ocr"
    assert server.parent is None
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/gateway/ocr"
    assert server.attributes["http.status_code"] == 200
    body = response.json()
    assert server.attributes["ocr.media_type"] == "image/png"
    assert server.attributes["ocr.upload_bytes"] == len(png_bytes())
    assert server.attributes["ocr.lang"] == "eng"
    assert "ocr.psm" not in server.attributes
    assert server.attributes["ocr.answer_format"] == "json"
    assert "ocr.rotate" not in server.attributes
    assert server.attributes["ocr.words"] == len(body["words"])
    assert server.attributes["ocr.confidence"] == pytest.approx(body["confidence"], abs=0.01)

    call = one(spans, SpanKind.CLIENT)
    assert call.name == MODEL_INFER
    assert trace_id(call) == trace_id(server)
    assert call.parent is not None
    assert call.parent.span_id == span_id(server)
    assert call.attributes is not None
    assert call.attributes["rpc.method"] == "ModelInfer"
    assert call.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    assert call.status.status_code is not StatusCode.ERROR
    # Every span of the upload belongs to the one trace.
    assert {trace_id(span) for span in spans} == {trace_id(server)}

    # The model got the client span's context (W3C traceparent: version-trace-span-flags).
    (metadata,) = servicer.metadata
    version, sent_trace, sent_parent, _flags = metadata["traceparent"].split("-")
    assert version == "00"
    assert int(sent_trace, 16) == trace_id(server)
    assert int(sent_parent, 16) == span_id(call)

    # Latency exemplars point at this trace.
    expected = {format(trace_id(server), "032x")}
    assert exemplar_trace_ids(app, "ocr_gateway_request_duration_seconds_bucket") == expected
    assert exemplar_trace_ids(app, "ocr_gateway_upstream_duration_seconds_bucket") == expected


async def test_a_failed_model_call_is_an_error_span_in_the_trace(
    make_settings: SettingsFactory, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    servicer = FakeModelServicer(failures=[Failure(grpc.StatusCode.INTERNAL, "model broke")])
    async with traced_gateway(servicer, make_settings, provider) as (_, client):
        assert (await upload(client)).status_code == 502
    spans = list(exporter.get_finished_spans())

    server = one(spans, SpanKind.SERVER)
    assert server.attributes is not None
    assert server.attributes["http.status_code"] == 502
    call = one(spans, SpanKind.CLIENT)
    assert call.parent is not None
    assert call.parent.span_id == span_id(server)
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes is not None
    assert call.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]


async def test_probes_and_scrapes_are_not_traced(
    make_settings: SettingsFactory, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with traced_gateway(FakeModelServicer(), make_settings, provider) as (_, client):
        for path in ("/healthz", "/health", "/readyz", "/metrics"):
            assert (await client.get(path)).status_code == 200, path
        # Neither the HTTP requests nor /readyz's ServerReady and ModelReady calls made spans.
        assert exporter.get_finished_spans() == ()
        # The same app does trace an upload.
        assert (await upload(client)).status_code == 200
    kinds = {span.kind for span in exporter.get_finished_spans()}
    assert {SpanKind.SERVER, SpanKind.CLIENT} <= kinds
