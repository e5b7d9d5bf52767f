"""The REST guard on KServe's app: the repository extension answered 404, bodies over the limit
413 before they are read, unexpected errors a fixed 500, malformed bodies 400 without echo."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from model.errors import INTERNAL_ERROR, rest_validation_error_handler
from model.rest_guard import RestGuardMiddleware
from model.settings import ModelSettings

pytestmark = pytest.mark.unit

LIMIT = 2 * 1024 * 1024


class Body(BaseModel):
    inputs: list[dict[str, Any]]
    parameters: dict[str, int] = {}


def app_behind_the_guard() -> tuple[FastAPI, list[str]]:
    """A FastAPI app like KServe's (repository routes included) behind `RestGuardMiddleware`;
    the list records the routes that ran."""
    ran: list[str] = []
    app = FastAPI()

    @app.post("/v2/repository/models/{name}/unload")
    async def unload(name: str) -> dict[str, bool]:
        ran.append("unload")
        return {"unload": True}

    @app.post("/echo")
    async def echo_length(request: Request) -> dict[str, int]:
        ran.append("echo")
        return {"length": len(await request.body())}

    @app.post("/typed")
    async def typed(body: Body) -> dict[str, int]:
        ran.append("typed")
        return {"inputs": len(body.inputs)}

    @app.get("/boom")
    async def boom() -> None:
        ran.append("boom")
        raise ValueError("secret detail at /srv/model/internal.py")

    app.add_exception_handler(RequestValidationError, rest_validation_error_handler)
    app.add_middleware(RestGuardMiddleware, max_body_bytes=LIMIT)
    return app, ran


def call(method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, list[str]]:
    app, ran = app_behind_the_guard()

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://model") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(run()), ran


def test_the_default_limit_carries_a_full_grpc_message_as_base64_json() -> None:
    settings = ModelSettings()
    assert settings.max_rest_body_bytes == 48 * 1024 * 1024
    assert settings.max_rest_body_bytes > settings.max_message_bytes * 4 / 3


@pytest.mark.parametrize(
    "path",
    [
        "/v2/repository/models/ocr-model/unload",
        "/v2/repository/models/ocr-model/load",
        "/v2/repository/index",
        "/v2/repository",
        "/v2/repository/models/ocr-model/unload/",
    ],
)
def test_the_repository_extension_is_not_found(path: str) -> None:
    response, ran = call("POST", path)
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}
    assert ran == []


def test_a_declared_length_over_the_limit_is_413_before_the_body_is_read() -> None:
    read: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        read.append(1)
        yield b"x" * (LIMIT + 1)

    response, ran = call(
        "POST", "/echo", content=body(), headers={"Content-Length": str(LIMIT + 1)}
    )
    assert response.status_code == 413
    assert response.json() == {"error": f"request body over the limit of {LIMIT} bytes"}
    assert response.headers["connection"] == "close"
    assert ran == []


def test_a_chunked_body_is_413_as_soon_as_it_passes_the_limit() -> None:
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(2 * LIMIT // 4096):
            sent.append(1)
            yield b"x" * 4096

    response, ran = call("POST", "/echo", content=chunks())
    assert response.status_code == 413
    assert response.json() == {"error": f"request body over the limit of {LIMIT} bytes"}
    # The app started reading; the guard stopped it at the chunk that passed the limit.
    assert ran == ["echo"]
    assert len(sent) <= LIMIT // 4096 + 2


def test_bodies_under_the_limit_pass_whole() -> None:
    response, ran = call("POST", "/echo", content=b"y" * LIMIT)
    assert response.status_code == 200
    assert response.json() == {"length": LIMIT}
    assert ran == ["echo"]


def test_an_unexpected_error_is_a_fixed_500_logged_server_side(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="model.rest_guard"):
        response, ran = call("GET", "/boom")
    assert response.status_code == 500
    assert response.json() == {"error": INTERNAL_ERROR}
    assert "ValueError" not in response.text
    assert "/srv/model" not in response.text
    assert ran == ["boom"]
    assert "unexpected error answering GET /boom" in caplog.text


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"inputs": "x" * 1024 * 1024}, "inputs"),
        ({"inputs": [], "parameters": {"k" * 1024 * 1024: "not an int"}}, "parameters"),
        ("[1, 2", "JSON decode error"),
    ],
)
def test_a_malformed_body_is_400_naming_the_field_without_echo(body: object, where: str) -> None:
    if isinstance(body, str):
        response, _ = call(
            "POST", "/typed", content=body, headers={"content-type": "application/json"}
        )
    else:
        response, _ = call("POST", "/typed", json=body)
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("malformed request body: ")
    assert where in message
    assert len(response.text) < 300
