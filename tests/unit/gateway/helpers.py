"""Helpers of the gateway unit tests: an in-process HTTP client and error-body checks."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

from gateway.app import create_app
from gateway.settings import GatewaySettings

# Nothing listens on port 1: connections are refused at once.
CLOSED_ADDRESS = "127.0.0.1:1"

SettingsFactory = Callable[..., GatewaySettings]


@asynccontextmanager
async def gateway_client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking in-process to a gateway app whose lifespan is running."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as client,
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
