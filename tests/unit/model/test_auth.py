"""The shared bearer token: its setting, its comparison, and which calls it guards."""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import Any

import grpc
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from common import SettingsLoadError, load_settings
from model.auth import (
    BearerToken,
    TokenInterceptor,
    TokenMiddleware,
    grpc_call_is_open,
    rest_path_is_open,
)
from model.settings import MIN_TOKEN_CHARS, ModelSettings

pytestmark = pytest.mark.unit

TOKEN = secrets.token_urlsafe(24)


# --- the setting ----------------------------------------------------------------------------


def test_no_token_by_default() -> None:
    assert ModelSettings().auth_token.get_secret_value() == ""


@pytest.mark.parametrize(
    "bad",
    [
        "x" * (MIN_TOKEN_CHARS - 1),
        "with a space inside it ok",
        "tab\tinside-a-long-token",
        "é" * 20,
    ],
)
def test_a_short_or_unsendable_token_is_refused_in_one_line_without_its_value(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("OCR_MODEL_AUTH_TOKEN", bad)
    with pytest.raises(SettingsLoadError) as caught:
        load_settings(ModelSettings)
    message = str(caught.value)
    assert "OCR_MODEL_AUTH_TOKEN" in message
    assert f"at least {MIN_TOKEN_CHARS}" in message
    assert "\n" not in message
    assert bad not in message


def test_a_long_token_is_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCR_MODEL_AUTH_TOKEN", TOKEN)
    settings = load_settings(ModelSettings)
    assert settings.auth_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)


# --- the comparison -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER  {TOKEN} ", f"Bearer {TOKEN}".encode()],
)
def test_the_token_is_accepted_in_the_bearer_form(header: str | bytes) -> None:
    assert BearerToken(TOKEN).accepts(header)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        TOKEN,
        f"Basic {TOKEN}",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN.upper()}" if TOKEN.upper() != TOKEN else "Bearer nope",
        "Bearer ",
        "Bearer \udcff\u00e9 not ascii",
        b"Bearer \xff\xfe",
    ],
)
def test_anything_else_is_refused_without_raising(header: str | bytes | None) -> None:
    assert not BearerToken(TOKEN).accepts(header)


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert not BearerToken(TOKEN).accepts("Bearer wrong")
    assert calls == [(b"wrong", TOKEN.encode())]


def test_the_token_never_shows_in_a_repr() -> None:
    assert TOKEN not in repr(BearerToken(TOKEN))


# --- which calls need it --------------------------------------------------------------------

INFERENCE = "/inference.GRPCInferenceService/"


@pytest.mark.parametrize(
    "method",
    [
        INFERENCE + "ServerLive",
        INFERENCE + "ServerReady",
        INFERENCE + "ModelMetadata",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ],
)
def test_probes_health_and_reflection_are_open(method: str) -> None:
    assert grpc_call_is_open(method)


@pytest.mark.parametrize(
    "method",
    [
        INFERENCE + "ModelInfer",
        INFERENCE + "ServerMetadata",
        INFERENCE + "RepositoryModelLoad",
        INFERENCE + "RepositoryModelUnload",
        INFERENCE + "RepositoryIndex",
        INFERENCE + "ServerLiveX",
        "/other.Service/ServerLive",
        "/grpc.health.v1.HealthX/Check",
        "",
    ],
)
def test_every_other_grpc_method_is_closed(method: str) -> None:
    assert not grpc_call_is_open(method)


@pytest.mark.parametrize(
    "path",
    ["/v2/health/live", "/v2/health/ready", "/v2/models/ocr-model/ready", "/metrics"],
)
def test_probe_paths_are_open(path: str) -> None:
    assert rest_path_is_open(path)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v2",
        "/v2/models",
        "/v2/models/ocr-model",
        "/v2/models/ocr-model/infer",
        "/v2/models/ocr-model/versions/1/ready",
        "/v2/models/ocr-model/ready/x",
        "/v2/health",
        "/v2/health/",
        "/v2/health/ready/x",
        "/metrics/x",
        "/v1/models/ocr-model",
        "/v2/repository/models/ocr-model/unload",
        "/docs",
    ],
)
def test_every_other_path_is_closed(path: str) -> None:
    assert not rest_path_is_open(path)


# --- the ASGI middleware --------------------------------------------------------------------


def rest_client(token: str = TOKEN) -> tuple[httpx.AsyncClient, list[str]]:
    """A client of a tiny app behind `TokenMiddleware`; the list records the paths served."""
    served: list[str] = []

    async def endpoint(request: Request) -> JSONResponse:
        served.append(request.url.path)
        await request.body()
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])
    app.add_middleware(TokenMiddleware, token=BearerToken(token))
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://model"), served


def test_rest_requests_without_the_token_get_401_json_and_never_reach_the_app() -> None:
    async def run() -> None:
        client, served = rest_client()
        async with client:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                response = await client.post(
                    "/v2/models/ocr-model/infer", content=b"x" * 1000, headers=headers
                )
                assert response.status_code == 401
                assert response.json() == {"error": "missing or wrong bearer token"}
                assert response.headers["www-authenticate"] == "Bearer"
        assert served == []

    asyncio.run(run())


def test_rest_requests_with_the_token_and_open_paths_reach_the_app() -> None:
    async def run() -> None:
        client, served = rest_client()
        async with client:
            ok = await client.post(
                "/v2/models/ocr-model/infer", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert ok.status_code == 200
            for path in ("/v2/health/ready", "/v2/models/ocr-model/ready", "/metrics"):
                assert (await client.get(path)).status_code == 200
        assert served == [
            "/v2/models/ocr-model/infer",
            "/v2/health/ready",
            "/v2/models/ocr-model/ready",
            "/metrics",
        ]

    asyncio.run(run())


# --- the gRPC interceptor -------------------------------------------------------------------


class Details(grpc.HandlerCallDetails):
    def __init__(self, method: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.method = method
        self.invocation_metadata = metadata


def intercept(method: str, *metadata: tuple[str, str]) -> tuple[Any, list[str]]:
    """What `TokenInterceptor` returns for a call, and the methods it let through."""
    passed: list[str] = []

    async def continuation(details: grpc.HandlerCallDetails) -> Any:
        passed.append(details.method)
        return grpc.unary_unary_rpc_method_handler(lambda request, context: None)

    interceptor = TokenInterceptor(BearerToken(TOKEN))
    handler = asyncio.run(interceptor.intercept_service(continuation, Details(method, metadata)))
    return handler, passed


def test_grpc_calls_without_the_token_are_refused_before_any_parsing() -> None:
    for metadata in ((), (("authorization", "Bearer wrong"),), (("x-token", TOKEN),)):
        handler, passed = intercept(INFERENCE + "ModelInfer", *metadata)
        assert passed == []
        # No deserializer: the message stays bytes, never parsed.
        assert handler.request_deserializer is None
        assert handler.unary_unary is not None


def test_grpc_calls_with_the_token_or_open_go_through() -> None:
    _, passed = intercept(INFERENCE + "ModelInfer", ("authorization", f"Bearer {TOKEN}"))
    assert passed == [INFERENCE + "ModelInfer"]
    _, passed = intercept(INFERENCE + "ServerReady")
    assert passed == [INFERENCE + "ServerReady"]
