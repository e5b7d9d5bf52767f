"""Assembles the gateway's FastAPI app from settings: routers, middleware, handlers, lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Final

from fastapi import FastAPI

from gateway.client import InferenceClient
from gateway.handlers import install_exception_handlers
from gateway.middleware import RequestContextMiddleware, UploadLimitMiddleware
from gateway.routes import health_router, ocr_router
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


def create_app(settings: GatewaySettings) -> FastAPI:
    """The gateway app; its lifespan opens (and closes) the one channel to the model server."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with InferenceClient(settings) as client:
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
    )
    app.state.settings = settings
    install_exception_handlers(app)
    # Starlette runs the middleware added last first: the request context wraps the limit, so
    # even a 413 carries the request id.
    app.add_middleware(UploadLimitMiddleware, max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(ocr_router)
    app.include_router(health_router)
    return app
