"""OpenTelemetry tracing configured from the standard `OTEL_*` environment variables.

Tracing is on when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) and neither `OTEL_SDK_DISABLED=true` nor
`OTEL_TRACES_EXPORTER=none` says otherwise. Otherwise no SDK is installed: the OpenTelemetry
API stays a no-op, so instrumentation costs nothing and exports nothing. The SDK itself reads
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*` and
the exporter's endpoint, headers, timeout and protocol variables.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

logger = logging.getLogger(__name__)


def tracing_off_reason(env: Mapping[str, str]) -> str | None:
    """Why the environment turns tracing off, or None when it asks for traces to be exported."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return "OTEL_SDK_DISABLED=true"
    if env.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return "OTEL_TRACES_EXPORTER=none"
    if not (
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    ):
        return "no OTEL_EXPORTER_OTLP_ENDPOINT set"
    return None


def tracing_requested(env: Mapping[str, str]) -> bool:
    """True when the environment asks for traces to be exported."""
    return tracing_off_reason(env) is None


def _exporter(env: Mapping[str, str]) -> SpanExporter:
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HTTPSpanExporter,
        )

        return HTTPSpanExporter()
    raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use 'grpc' or 'http/protobuf'")


def configure_tracing(default_service_name: str) -> TracerProvider | None:
    """Install the SDK as the global tracer provider when tracing is requested; else None.

    Decides from `os.environ`, the same environment the SDK's resource and exporters read, so
    the decision and the exporter never disagree.
    """
    env = os.environ
    reason = tracing_off_reason(env)
    if reason is not None:
        logger.info("tracing off: %s", reason)
        return None
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: default_service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(_exporter(env)))
    trace.set_tracer_provider(provider)
    logger.info("tracing on: service %s", provider.resource.attributes.get(SERVICE_NAME, "unknown"))
    return provider
