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
    # Hardening: 4 largest uploads held at once, 30 s to send a body, no proxy believed,
    # 10 wrong keys a minute per address, no model token.
    assert settings.max_inflight_upload_bytes is None
    assert settings.inflight_upload_limit == 4 * settings.max_upload_bytes
    assert settings.body_timeout_s == 30.0
    assert settings.trusted_proxies == []
    assert settings.auth_failures_per_minute == 10
    assert settings.model_token is None


def test_hardening_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCR_GATEWAY_MAX_INFLIGHT_UPLOAD_BYTES", str(100 * 1024 * 1024))
    monkeypatch.setenv("OCR_GATEWAY_BODY_TIMEOUT_S", "12.5")
    monkeypatch.setenv("OCR_GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8,192.168.1.7")
    monkeypatch.setenv("OCR_GATEWAY_MODEL_TOKEN", "t0ken-with.symbols~")
    settings = GatewaySettings()
    assert settings.inflight_upload_limit == 100 * 1024 * 1024
    assert settings.body_timeout_s == 12.5
    assert settings.trusted_proxies == ["10.0.0.0/8", "fd00::/8", "192.168.1.7"]
    assert settings.model_token is not None
    assert settings.model_token.get_secret_value() == "t0ken-with.symbols~"
    assert "t0ken" not in repr(settings)
    monkeypatch.setenv("OCR_GATEWAY_MAX_INFLIGHT_UPLOAD_BYTES", "0")
    monkeypatch.setenv("OCR_GATEWAY_MODEL_TOKEN", "")
    assert GatewaySettings().inflight_upload_limit is None  # 0: no cap
    assert GatewaySettings().model_token is None  # empty: no token


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
        {"max_inflight_upload_bytes": -1},
        {"max_inflight_upload_bytes": 1024, "max_upload_bytes": 2048},
        {"body_timeout_s": 0},
        {"auth_failures_per_minute": -1},
        {"trusted_proxies": ["loopback"]},
        {"trusted_proxies": ["10.0.0.1/8"]},  # host bits set: uvicorn would trust nothing
        {"model_token": "two words"},
        {"model_token": "line\nbreak"},
        {"key_id_secret": "short"},
        {"api_keys": ["fifteen-chars-x"]},
    ],
)
def test_invalid_values_are_rejected(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        GatewaySettings(**values)


def test_every_field_is_documented() -> None:
    undocumented = [n for n, f in GatewaySettings.model_fields.items() if not f.description]
    assert undocumented == []
