"""API keys, per-key rate limits and CORS, through the real app in-process."""

import os

import pytest

from gateway.access import key_id
from gateway.errors import RateLimitedError, UnauthorizedError
from gateway.settings import GatewaySettings
from tests.unit.gateway.helpers import SettingsFactory, assert_error, gateway_client

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

KEY, OTHER = "k-" + "a" * 30, "k-" + "b" * 30


async def test_keys_are_required_except_on_probes(make_settings: SettingsFactory) -> None:
    async with gateway_client(make_settings(api_keys=[KEY])) as client:
        missing = await client.post("/gateway/ocr")
        message = assert_error(missing, UnauthorizedError.status, UnauthorizedError.code)
        assert message == UnauthorizedError("X-API-Key").message
        wrong = await client.post("/gateway/ocr", headers={"X-API-Key": "nope"})
        assert_error(wrong, 401, "unauthorized")
        # A valid key passes the gate (then the missing file is the problem).
        valid = await client.post("/gateway/ocr", headers={"X-API-Key": KEY})
        assert_error(valid, 422, "validation_error")
        for path in ("/healthz", "/health", "/metrics", "/openapi.json"):
            assert (await client.get(path)).status_code == 200
        assert (await client.get("/readyz")).status_code == 503  # no model: but no 401


async def test_rate_limit_is_per_key_with_retry_after(make_settings: SettingsFactory) -> None:
    settings = make_settings(api_keys=[KEY, OTHER], rate_limit_per_minute=2)
    async with gateway_client(settings) as client:
        for _ in range(2):
            ok = await client.post("/gateway/ocr", headers={"X-API-Key": KEY})
            assert ok.status_code == 422
        limited = await client.post("/gateway/ocr", headers={"X-API-Key": KEY})
        message = assert_error(limited, RateLimitedError.status, RateLimitedError.code)
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert message == RateLimitedError(per_minute=2, retry_after_s=retry_after).message
        # Another key has its own budget; probes never count.
        assert (await client.post("/gateway/ocr", headers={"X-API-Key": OTHER})).status_code == 422
        assert (await client.get("/healthz")).status_code == 200


async def test_without_keys_the_limit_applies_per_client_address(
    make_settings: SettingsFactory,
) -> None:
    async with gateway_client(make_settings(rate_limit_per_minute=1)) as client:
        assert (await client.post("/gateway/ocr")).status_code == 422
        assert_error(await client.post("/gateway/ocr"), 429, "rate_limited")


async def test_cors_is_denied_by_default_and_allowlisted(make_settings: SettingsFactory) -> None:
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
    }
    async with gateway_client(make_settings()) as client:
        denied = await client.options("/gateway/ocr", headers=preflight)
        assert "access-control-allow-origin" not in denied.headers
    allowed = make_settings(cors_allow_origins=["https://app.example"])
    async with gateway_client(allowed) as client:
        ok = await client.options(
            "/gateway/ocr", headers={**preflight, "Origin": "https://app.example"}
        )
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        other = await client.options("/gateway/ocr", headers=preflight)
        assert "access-control-allow-origin" not in other.headers


def test_keys_and_origins_come_from_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCR_GATEWAY_API_KEYS", f"{KEY}, {OTHER}")
    monkeypatch.setenv("OCR_GATEWAY_CORS_ALLOW_ORIGINS", "https://a.example,https://b.example")
    settings = GatewaySettings()
    assert [k.get_secret_value() for k in settings.api_keys] == [KEY, OTHER]
    assert settings.cors_allow_origins == ["https://a.example", "https://b.example"]
    assert KEY not in repr(settings)  # secrets stay out of logs and reprs
    assert os.environ["OCR_GATEWAY_API_KEYS"]


def test_key_id_is_short_and_not_the_key() -> None:
    assert len(key_id(KEY)) == 12
    assert key_id(KEY) != key_id(OTHER)
    assert KEY not in key_id(KEY)
