"""Gateway settings: defaults, the OCR_GATEWAY_ prefix and self-validation."""

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings

pytestmark = pytest.mark.unit


def test_defaults() -> None:
    settings = GatewaySettings()
    assert (settings.host, settings.port) == ("0.0.0.0", 8001)
    assert (settings.model_address, settings.model_name) == ("localhost:8081", "ocr-model")
    assert settings.request_timeout_s == 30.0
    assert settings.max_upload_bytes == 20 * 1024 * 1024
    assert settings.retry_max_attempts == 3
    assert settings.log_level == "info"


def test_environment_with_prefix_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCR_GATEWAY_MODEL_ADDRESS", "model.ocr.svc:9000")
    monkeypatch.setenv("OCR_GATEWAY_PORT", "9001")
    monkeypatch.setenv("OCR_GATEWAY_REQUEST_TIMEOUT_S", "2.5")
    monkeypatch.setenv("OCR_GATEWAY_LOG_LEVEL", "DEBUG")
    settings = GatewaySettings()
    assert settings.model_address == "model.ocr.svc:9000"
    assert settings.port == 9001
    assert settings.request_timeout_s == 2.5
    assert settings.log_level == "debug"


def test_environment_without_prefix_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9999")
    monkeypatch.setenv("MODEL_NAME", "other")
    settings = GatewaySettings()
    assert (settings.port, settings.model_name) == (8001, "ocr-model")


def test_invalid_environment_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCR_GATEWAY_REQUEST_TIMEOUT_S", "-1")
    with pytest.raises(ValidationError, match="request_timeout_s"):
        GatewaySettings()


@pytest.mark.parametrize(
    "values",
    [
        {"port": 0},
        {"port": 70_000},
        {"request_timeout_s": 0},
        {"max_upload_bytes": 0},
        {"retry_max_attempts": 0},
        {"retry_initial_backoff_s": -0.1},
        {"retry_initial_backoff_s": 2.0, "retry_max_backoff_s": 1.0},
        {"readiness_timeout_s": 0},
        {"model_address": ""},
        {"model_name": ""},
        {"log_level": "loud"},
    ],
)
def test_invalid_values_are_rejected(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        GatewaySettings(**values)


def test_every_field_is_documented() -> None:
    undocumented = [n for n, f in GatewaySettings.model_fields.items() if not f.description]
    assert undocumented == []
