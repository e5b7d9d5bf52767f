"""Prometheus exposition with content negotiation, and trace exemplars for histograms."""

from __future__ import annotations

from opentelemetry import trace
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


def metrics_response(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The registry's metrics in the format the scraper accepts, and its content type.

    OpenMetrics (asked for by Prometheus with exemplar storage on) carries exemplars; the classic
    text format does not.
    """
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def exemplar() -> dict[str, str] | None:
    """`{"trace_id": ...}` of the current sampled span, to attach to a histogram observation."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid and context.trace_flags.sampled:
        return {"trace_id": format(context.trace_id, "032x")}
    return None
