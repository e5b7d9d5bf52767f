"""The one engine-error table: each engine error leaves with its row's status over gRPC (through
KServe's own interceptor) and over REST (through KServe's handlers plus ours)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.rest.server import RESTServer

from model.engine import (
    EngineBusyError,
    EngineMemoryShortError,
    EngineTimeoutError,
    InvalidImageError,
    InvalidOptionError,
)
from model.errors import ERROR_TABLE, REST_HANDLED, rest_error_handler, to_protocol_error

pytestmark = pytest.mark.unit

ENGINE_ERRORS = [
    InvalidImageError("the image is empty (0 bytes)"),
    InvalidOptionError("psm 99 is out of range: use 0..13"),
    EngineBusyError("all 2 OCR workers are busy"),
    EngineMemoryShortError("the model ran short of memory reading this page"),
    EngineTimeoutError("recognition ran out of time"),
]


def row_of(error: Exception) -> Any:
    return next(row for row in ERROR_TABLE if isinstance(error, row.engine_error))


class Aborted(Exception):
    pass


class FakeContext:
    """Captures what KServe's interceptor aborts the call with."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details


async def _grpc_status(error: Exception) -> tuple[grpc.StatusCode | None, str]:
    context = FakeContext()
    with contextlib.suppress(Aborted):
        await ExceptionToStatusInterceptor().handle_exception(
            to_protocol_error(error), None, context, "/inference.GRPCInferenceService/ModelInfer"
        )
    return context.code, context.details


@pytest.mark.parametrize("error", ENGINE_ERRORS, ids=lambda e: type(e).__name__)
def test_grpc_status_follows_the_table(error: Exception) -> None:
    code, details = asyncio.run(_grpc_status(error))
    assert code == row_of(error).grpc_status
    assert str(error) in details


def rest_app() -> FastAPI:
    """A REST app with KServe's handlers (as its RESTServer installs them) and ours."""
    app = FastAPI()
    RESTServer._add_exception_handlers(None, app)
    for error_class in REST_HANDLED:
        app.add_exception_handler(error_class, rest_error_handler)
    return app


@pytest.mark.parametrize("error", ENGINE_ERRORS, ids=lambda e: type(e).__name__)
def test_rest_status_follows_the_table(error: Exception) -> None:
    app = rest_app()

    @app.get("/fail")
    async def fail() -> None:
        raise to_protocol_error(error)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://model.test") as client:
            return await client.get("/fail")

    response = asyncio.run(call())
    row = row_of(error)
    assert response.status_code == row.http_status
    assert str(error) in response.json()["error"]
    if row.retry_after_s is not None:
        assert response.headers["retry-after"] == str(row.retry_after_s)


def test_unexpected_errors_are_left_alone() -> None:
    error = RuntimeError("a bug")
    assert to_protocol_error(error) is error


def test_every_engine_error_has_one_row() -> None:
    for error in ENGINE_ERRORS:
        assert sum(isinstance(error, row.engine_error) for row in ERROR_TABLE) == 1
