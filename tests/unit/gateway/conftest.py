"""Fixtures of the gateway unit tests: an asyncio backend and isolated settings."""

import os
from typing import Any

import pytest

from gateway.settings import GatewaySettings
from tests.unit.gateway.helpers import CLOSED_ADDRESS, SettingsFactory


@pytest.fixture
def anyio_backend() -> str:
    """gRPC aio runs on asyncio only."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep OCR_GATEWAY_* variables of the developer's shell out of the tests."""
    for name in list(os.environ):
        if name.upper().startswith("OCR_GATEWAY_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_settings() -> SettingsFactory:
    """Settings for tests: no reachable model, short deadlines and fast retries by default."""

    def factory(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "model_address": CLOSED_ADDRESS,
            "request_timeout_s": 2.0,
            "readiness_timeout_s": 1.0,
            "retry_initial_backoff_s": 0.01,
            "retry_max_backoff_s": 0.05,
        }
        values.update(overrides)
        return GatewaySettings(**values)

    return factory
