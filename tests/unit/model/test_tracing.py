"""The model's `ocr.*` span attributes, from a real engine (tesserocr) reading a rendered line.

The engine's stage spans (`ocr.decode`, `ocr.preprocess`, `ocr.recognize`) come from a tracer
taken at import (`trace.get_tracer(__name__)`), a proxy of whatever global provider is installed
later, the way `configure_tracing` installs it in the server. So this module installs an SDK
provider with an in-memory exporter as the global one, once per process and only if none is
installed yet; when another SDK provider is already global, it adds its exporter to that one.
The predictor's attributes land on the caller's current span: here a span the test opens, as
the gRPC server span would be in the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from kserve.protocol.infer_type import InferRequest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.codec import build_infer_request
from model.assembly import create_model
from model.engine import OcrEngine, OcrOptions, TesserocrBackend
from model.predictor import OcrModel
from model.settings import ModelSettings
from tests.support.images import line_png

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

TESSDATA = ModelSettings().tessdata_dir
TEXT = "Traced line 2048"
STAGES = ("ocr.decode", "ocr.preprocess", "ocr.recognize")


@pytest.fixture(scope="session")
def global_exporter() -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter behind the process's global tracer provider."""
    exporter = InMemorySpanExporter()
    current = trace.get_tracer_provider()
    if isinstance(current, trace.ProxyTracerProvider):  # nothing installed yet
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    elif isinstance(current, TracerProvider):
        current.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        pytest.fail(f"the global tracer provider is a {type(current).__name__}, not the SDK's")
    yield exporter
    # The provider stays global for the rest of the session; its spans go nowhere from now on.
    exporter.shutdown()


@pytest.fixture
def spans(global_exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    """The exporter, emptied for this test."""
    global_exporter.clear()
    return global_exporter


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine(TesserocrBackend(TESSDATA), max_pixels=40_000_000)


@pytest.fixture(scope="module")
def model() -> Iterator[OcrModel]:
    ocr_model = create_model(ModelSettings(workers=1, result_cache_entries=4))
    ocr_model.load()
    yield ocr_model
    ocr_model.stop()


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    finished = exporter.get_finished_spans()
    named = {span.name: span for span in finished}
    assert len(named) == len(finished), [span.name for span in finished]
    return named


def attributes(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def test_the_engine_traces_each_stage_with_its_attributes(
    engine: OcrEngine, spans: InMemorySpanExporter
) -> None:
    data = line_png(TEXT)
    result = engine.recognize(data, OcrOptions(psm=7))
    assert result.text.strip() == TEXT
    named = by_name(spans)
    assert set(named) == set(STAGES)

    assert attributes(named["ocr.decode"]) == {
        "ocr.input_bytes": len(data),
        "ocr.format": "PNG",
        "ocr.pixels": 800 * 80,
        "ocr.decoded_bytes": 800 * 80,  # grayscale: one byte a pixel, no conversion
    }
    assert attributes(named["ocr.preprocess"]) == {
        "ocr.mode": "L",
        "ocr.rotation": 0,
        "ocr.skew": 0.0,
    }
    assert attributes(named["ocr.recognize"]) == {
        "ocr.engine": "tesserocr",
        "ocr.lang": "eng",
        "ocr.psm": 7,
        "ocr.oem": 3,
        "ocr.words": len(TEXT.split()),
        "ocr.confidence": result.confidence,
    }
    # In order, one after the other.
    decode, preprocess, recognize = (named[name] for name in STAGES)
    assert decode.end_time is not None
    assert preprocess.start_time is not None
    assert preprocess.end_time is not None
    assert recognize.start_time is not None
    assert decode.end_time <= preprocess.start_time
    assert preprocess.end_time <= recognize.start_time


def request(data: bytes, psm: int) -> InferRequest:
    message = build_infer_request(
        data, model_name="ocr-model", request_id="t1", lang="eng", psm=psm
    )
    return InferRequest.from_grpc(message)


def test_the_predictor_annotates_the_callers_span_and_nests_the_stages(
    model: OcrModel, spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer(__name__)
    data = line_png(TEXT)

    async def call() -> None:
        with tracer.start_as_current_span("server"):
            await model.predict(request(data, 7))

    asyncio.run(call())
    named = by_name(spans)
    assert set(named) == {"server", *STAGES}
    server = named["server"]
    server_attributes = attributes(server)
    assert server_attributes == {
        "ocr.lang": "eng",
        "ocr.psm": 7,
        "ocr.rotate": "none",
        "ocr.deskew": False,
        "ocr.outputs": ("text", "confidence", "words"),
        "ocr.pixels": 800 * 80,
        "ocr.words": len(TEXT.split()),
        "ocr.confidence": attributes(named["ocr.recognize"])["ocr.confidence"],
        "ocr.cache_hit": False,
        "ocr.rotation": 0,
        "ocr.skew": 0.0,
    }
    # The stages ran on an engine worker thread, yet under the caller's span and trace.
    for stage in STAGES:
        parent = named[stage].parent
        assert parent is not None
        assert parent.span_id == span_id(server)
        assert parent.trace_id == trace_id(server)

    # The same image again comes from the cache: no engine stage runs.
    spans.clear()
    asyncio.run(call())
    named = by_name(spans)
    assert set(named) == {"server"}
    assert attributes(named["server"])["ocr.cache_hit"] is True
    assert attributes(named["server"])["ocr.words"] == len(TEXT.split())


def test_the_preprocess_span_records_the_rotation_and_skew_applied(
    engine: OcrEngine, spans: InMemorySpanExporter
) -> None:
    from PIL import Image

    from tests.support.images import TESTDATA, encode

    turned = Image.open(TESTDATA / "phototest-rotated-L.png").convert("L")
    skewed = turned.rotate(8, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    result = engine.recognize(encode(skewed), OcrOptions(rotate="auto", deskew=True))
    preprocess = attributes(by_name(spans)["ocr.preprocess"])
    assert preprocess["ocr.rotation"] == result.rotation == 90
    assert preprocess["ocr.skew"] == result.skew
    assert abs(result.skew - -8) <= 0.1
