"""Gateway metrics: HTTP traffic, uploads, documents and their pages, in-flight requests and the
gRPC hop to the model.

All metrics live in the registry given to `GatewayMetrics` (one per app, none at import time),
beside the process collector, so `/metrics` shows exactly this process.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import grpc
import grpc.aio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import GatewayError
from telemetry import exemplar

_R = TypeVar("_R")

#: Request latency buckets (seconds): OCR of a page takes ~0.1-3 s, a line ~20-50 ms.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UPLOAD_BUCKETS: Final = tuple(float(2**k) for k in range(10, 26, 2))  # 1 KiB .. 32 MiB
#: Pages read per upload: an image is 1, a document up to MAX_PAGES (200 by default).
DOCUMENT_PAGE_BUCKETS: Final = tuple(float(2**k) for k in range(9))  # 1 .. 256
#: One page's read (seconds): ~0.1-3 s at 300 dpi; more behind a busy model queue or retries.
PAGE_LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Probe and scrape routes stay out of the request metrics (they would drown the traffic).
UNMEASURED_PATHS: Final = frozenset({"/metrics", "/healthz", "/health", "/readyz"})


class GatewayMetrics:
    """The gateway's Prometheus metrics, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.requests = Counter(
            "ocr_gateway_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "ocr_gateway_request_duration_seconds",
            "Time from request arrival to the end of the response.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upload_bytes = Histogram(
            "ocr_gateway_upload_bytes",
            "Size of uploaded image files.",
            buckets=UPLOAD_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "ocr_gateway_requests_in_flight",
            "HTTP requests being served right now.",
            registry=registry,
        )
        self.upload_bytes_in_flight = Gauge(
            "ocr_gateway_upload_bytes_in_flight",
            "Request body bytes held by requests under way (capped by MAX_INFLIGHT_UPLOAD_BYTES).",
            registry=registry,
        )
        self.document_pages = Histogram(
            "ocr_gateway_document_pages",
            "Pages selected for reading per upload (an image is one page).",
            buckets=DOCUMENT_PAGE_BUCKETS,
            registry=registry,
        )
        self.pages = Counter(
            "ocr_gateway_pages",
            "Pages read on the model, by outcome (ok, or error: the page's entry carries it).",
            ["outcome"],
            registry=registry,
        )
        self.page_duration = Histogram(
            "ocr_gateway_page_seconds",
            "Time to read one page: its split from the upload and its model calls (retries too).",
            buckets=PAGE_LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_duration = Histogram(
            "ocr_gateway_upstream_duration_seconds",
            "Duration of each gRPC call to the model server (every attempt).",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "ocr_gateway_upstream_errors",
            "gRPC calls to the model server that failed, by method and status code.",
            ["method", "grpc_code"],
            registry=registry,
        )


def measure_pages(
    read_one: Callable[[int], Awaitable[_R]], metrics: GatewayMetrics
) -> Callable[[int], Awaitable[_R]]:
    """`read_one`, each page timed and counted by outcome; a cancelled page (the client left)
    is neither."""

    async def measured(number: int) -> _R:
        started = time.perf_counter()

        def record(outcome: str) -> None:
            metrics.pages.labels(outcome).inc()
            metrics.page_duration.observe(time.perf_counter() - started, exemplar())

        try:
            result = await read_one(number)
        except GatewayError:
            record("error")
            raise
        record("ok")
        return result

    return measured


class MetricsMiddleware:
    """Counts and times every HTTP request except probes and scrapes (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNMEASURED_PATHS:
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app fails before answering
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self.metrics.in_flight.dec()
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.request_duration.labels(route, method).observe(
                time.perf_counter() - started, exemplar()
            )


def _route_template(scope: Scope) -> str:
    """The matched route's path template; one label value for every unmatched path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


if TYPE_CHECKING:  # generic only in grpc-stubs, not at run time
    _UnaryUnaryInterceptor = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
else:
    _UnaryUnaryInterceptor = grpc.aio.UnaryUnaryClientInterceptor


class UpstreamMetricsInterceptor(_UnaryUnaryInterceptor):
    """Times each unary gRPC call to the model and counts failures by status code."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    async def intercept_unary_unary(
        self,
        # grpc-stubs types the continuation as returning the call; in grpc.aio it is awaited.
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]] | Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        full = client_call_details.method
        method = (full.decode() if isinstance(full, bytes) else str(full)).rsplit("/", 1)[-1]
        started = time.perf_counter()
        call = await continuation(client_call_details, request)
        try:
            code = await call.code()
        finally:
            self.metrics.upstream_duration.labels(method).observe(
                time.perf_counter() - started, exemplar()
            )
        if code != grpc.StatusCode.OK:
            self.metrics.upstream_errors.labels(method, code.name).inc()
        return call
