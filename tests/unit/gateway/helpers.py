"""Helpers of the gateway unit tests: in-process HTTP clients (with or without a fake model) and
error-body checks."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.unit.gateway.fakes import FakeModelServicer, serve_fake_model

# Nothing listens on port 1: connections are refused at once.
CLOSED_ADDRESS = "127.0.0.1:1"

SettingsFactory = Callable[..., GatewaySettings]


Running = tuple[FastAPI, httpx.AsyncClient]


@asynccontextmanager
async def running_gateway(settings: GatewaySettings) -> AsyncIterator[Running]:
    """A gateway app with its lifespan running, and an in-process HTTP client of it."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as client,
    ):
        yield app, client


@asynccontextmanager
async def gateway_client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking in-process to a gateway app whose lifespan is running."""
    async with running_gateway(settings) as (_, client):
        yield client


@asynccontextmanager
async def app_of(
    servicer: FakeModelServicer, make_settings: SettingsFactory, **overrides: Any
) -> AsyncIterator[Running]:
    """The app and a client of a gateway whose model server is a fake serving ``servicer``."""
    async with (
        serve_fake_model(servicer) as address,
        running_gateway(make_settings(model_address=address, **overrides)) as running,
    ):
        yield running


@asynccontextmanager
async def gateway_of(
    servicer: FakeModelServicer, make_settings: SettingsFactory, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of a gateway whose model server is a fake serving ``servicer``."""
    async with (
        serve_fake_model(servicer) as address,
        gateway_client(make_settings(model_address=address, **overrides)) as client,
    ):
        yield client


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """Check the JSON error shape and the request id echo; return the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    message = body["error"]["message"]
    assert isinstance(message, str)
    assert message
    assert "Traceback" not in message
    return message
