"""Shared telemetry: when tracing turns on, JSON logs with trace ids, exposition, exemplars."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Histogram

from telemetry import (
    configure_logging,
    configure_tracing,
    exemplar,
    metrics_response,
    tracing_off_reason,
    tracing_requested,
)
from telemetry.logs import TraceContextFilter

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_turns_on_only_with_an_endpoint(env: dict[str, str], expected: bool) -> None:
    assert tracing_requested(env) is expected


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_log_lines_are_json_with_trace_and_span_ids_inside_a_span() -> None:
    stream = io.StringIO()
    configure_logging("info", "unit")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    log = logging.getLogger("unit.test")
    log.info("outside %s", "any span")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        log.warning("inside %s", "a span")
        context = span.get_span_context()
    outside, inside = json_lines(stream)
    assert outside["message"] == "outside any span"
    assert outside["service"] == "unit"
    assert "trace_id" not in outside
    assert inside["level"] == "WARNING"
    assert inside["logger"] == "unit.test"
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")


def test_library_loggers_use_the_json_handler() -> None:
    configure_logging("info", "unit")
    for name in ("uvicorn.access", "kserve"):
        library = logging.getLogger(name)
        assert library.handlers == []
        assert library.propagate
    assert any(isinstance(f, TraceContextFilter) for f in logging.getLogger().handlers[0].filters)


def test_exemplars_carry_the_sampled_trace_id_and_only_openmetrics_shows_them() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("demo_seconds", "demo", registry=registry, buckets=(1.0,))
    assert exemplar() is None  # no span, no exemplar
    with TracerProvider().get_tracer("t").start_as_current_span("s") as span:
        trace_exemplar = exemplar()
        histogram.observe(0.5, trace_exemplar)
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert trace_exemplar == {"trace_id": trace_id}
    open_metrics, content_type = metrics_response(registry, "application/openmetrics-text")
    assert content_type.startswith("application/openmetrics-text")
    assert f'trace_id="{trace_id}"' in open_metrics.decode()
    classic, classic_type = metrics_response(registry, None)
    assert classic_type.startswith("text/plain")
    assert "trace_id" not in classic.decode()


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}, "DISABLED"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}, "none"),
        ({}, "no OTEL_EXPORTER_OTLP_ENDPOINT set"),
    ],
)
def test_tracing_off_says_why_from_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    env: dict[str, str],
    reason: str,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.INFO, logger="telemetry.tracing"):
        assert configure_tracing("svc") is None
    assert [r.getMessage() for r in caplog.records] == [f"tracing off: {tracing_off_reason(env)}"]
    assert reason in caplog.records[0].getMessage()
