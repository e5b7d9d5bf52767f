"""Assembles the gateway's FastAPI app from settings: routers, middleware, handlers, lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from fastapi import Depends, FastAPI
from fastapi.security import APIKeyHeader
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from starlette.middleware.cors import CORSMiddleware

from gateway.access import AccessMiddleware
from gateway.client import InferenceClient
from gateway.context import REQUEST_ID_HEADER
from gateway.handlers import install_exception_handlers
from gateway.metrics import (
    UNMEASURED_PATHS,
    GatewayMetrics,
    MetricsMiddleware,
    UpstreamMetricsInterceptor,
)
from gateway.middleware import InflightUploads, RequestContextMiddleware, UploadLimitMiddleware
from gateway.routes import (
    docs_router,
    health_router,
    languages_router,
    metrics_router,
    ocr_router,
    ui_router,
)
from gateway.settings import GatewaySettings

DESCRIPTION: Final = """\
Public HTTP entry point of the OCR platform. `POST /gateway/ocr` takes an image as the multipart
field `image_file` and answers its text, found by Tesseract behind a KServe v2 gRPC model server.

Every error answer has the body `{"error": {"code", "message", "request_id"}}`; `code` is stable
and meant for programs. Each answer carries an `X-Request-ID` header (an incoming sane one is kept).
"""


def _package_version() -> str:
    try:
        return version("ocr-platform")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def create_app(settings: GatewaySettings, tracer_provider: TracerProvider | None = None) -> FastAPI:
    """The gateway app; its lifespan opens (and closes) the one channel to the model server.

    With a `tracer_provider` (tracing configured from OTEL_* variables) the HTTP server and the
    gRPC client are instrumented, so the W3C trace context crosses to the model server; without
    one nothing is instrumented and tracing costs nothing.
    """
    metrics = GatewayMetrics(CollectorRegistry())
    # grpc-stubs cannot express a mixed list of client interceptors.
    interceptors: list[Any] = []
    if tracer_provider is not None:
        from opentelemetry.instrumentation.grpc import aio_client_interceptors, filters

        # Only inference calls: readiness probes' ServerReady/ModelReady would be noise.
        interceptors.extend(
            aio_client_interceptors(  # type: ignore[no-untyped-call]  # untyped library
                tracer_provider=tracer_provider, filter_=filters.method_name("ModelInfer")
            )
        )
    # After the tracing interceptor, so upstream latency exemplars carry the call's trace id.
    interceptors.append(UpstreamMetricsInterceptor(metrics))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with InferenceClient(settings, interceptors) as client:
            app.state.inference_client = client
            try:
                yield
            finally:
                del app.state.inference_client

    app = FastAPI(
        title="OCR Gateway",
        version=_package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        # /docs is served from local assets (gateway.routes.docs); no ReDoc, no OAuth2 page.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # A redirect to the slash-less path would be built from the client's Host header.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_exception_handlers(app)
    # Starlette runs the middleware added last first: metrics see every answer, the request
    # context gives each one (even a 401/413/429) its id, CORS answers preflights before the
    # key check, and the upload limit sits closest to the routes.
    app.add_middleware(
        UploadLimitMiddleware,
        max_upload_bytes=settings.max_upload_bytes,
        inflight=InflightUploads(
            settings.inflight_upload_limit, metrics.upload_bytes_in_flight.set
        ),
        body_timeout_s=settings.body_timeout_s,
    )
    app.add_middleware(
        AccessMiddleware,
        api_keys=settings.api_keys,
        header=settings.api_key_header,
        per_minute=settings.rate_limit_per_minute,
        key_id_secret=settings.key_id_secret,
        auth_failures_per_minute=settings.auth_failures_per_minute,
    )
    if settings.cors_allow_origins:
        # Without allowed origins no CORS layer at all: an answer without CORS headers is
        # what denies browsers, and every request skips a layer that would only say no.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", settings.api_key_header, REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER, "Retry-After", "Content-Disposition"],
        )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # With keys, the schema declares the key header (Swagger UI's "Authorize" then sends it);
    # AccessMiddleware checks it, the dependency only documents it.
    key_scheme = APIKeyHeader(
        name=settings.api_key_header,
        scheme_name="APIKey",
        description="One of the gateway's API keys (OCR_GATEWAY_API_KEYS).",
        auto_error=False,
    )
    keyed = [Depends(key_scheme)] if settings.api_keys else []
    app.include_router(ocr_router, dependencies=keyed)
    app.include_router(languages_router, dependencies=keyed)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(docs_router)
    app.include_router(ui_router)
    if tracer_provider is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            excluded_urls=",".join(sorted(UNMEASURED_PATHS)),
        )
    return app
