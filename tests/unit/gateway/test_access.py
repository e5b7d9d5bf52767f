"""API keys, per-key rate limits and CORS, through the real app in-process."""

import hashlib
import hmac
import os
import secrets

import httpx
import pytest

from common import SettingsLoadError, load_settings
from gateway.access import key_id
from gateway.app import create_app
from gateway.errors import RateLimitedError, TooManyAuthFailuresError, UnauthorizedError
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


def test_key_id_is_an_hmac_keyed_by_the_secret() -> None:
    secret = b"s" * 32
    assert len(key_id(KEY, secret)) == 16
    assert key_id(KEY, secret) == key_id(KEY, secret)  # stable for one secret
    assert key_id(KEY, secret) != key_id(OTHER, secret)
    assert KEY not in key_id(KEY, secret)
    # Not an unsalted hash anyone can recompute from a guess, and another secret, other ids.
    assert key_id(KEY, secret) != hashlib.sha256(KEY.encode()).hexdigest()[:16]
    assert key_id(KEY, secret) != key_id(KEY, b"t" * 32)
    assert key_id(KEY, secret) == hmac.new(secret, KEY.encode(), "sha256").hexdigest()[:16]


def guesses(count: int) -> list[str]:
    """Wrong keys of a valid length, made up now."""
    return [secrets.token_urlsafe(24) for _ in range(count)]


async def test_wrong_keys_from_one_address_are_throttled_before_any_check(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(api_keys=[KEY], auth_failures_per_minute=3))

    def client_from(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://gateway.test")

    async with (
        app.router.lifespan_context(app),
        client_from("10.0.0.1") as attacker,
        client_from("10.0.0.2") as neighbour,
    ):
        for guess in guesses(3):
            wrong = await attacker.post("/gateway/ocr", headers={"X-API-Key": guess})
            assert_error(wrong, 401, "unauthorized")
        throttled = await attacker.post("/gateway/ocr", headers={"X-API-Key": guesses(1)[0]})
        message = assert_error(
            throttled, TooManyAuthFailuresError.status, TooManyAuthFailuresError.code
        )
        assert message == TooManyAuthFailuresError(1).message
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        # Not even the right key is checked now: a lucky guess would tell the attacker nothing.
        right = await attacker.post("/gateway/ocr", headers={"X-API-Key": KEY})
        assert_error(right, 429, "too_many_auth_failures")
        # Probes stay open to that address; another address is not affected.
        assert (await attacker.get("/healthz")).status_code == 200
        assert_error(await neighbour.post("/gateway/ocr", headers={"X-API-Key": KEY}), 422,
                     "validation_error")  # fmt: skip


async def test_a_missing_key_is_not_a_guess(make_settings: SettingsFactory) -> None:
    async with gateway_client(make_settings(api_keys=[KEY], auth_failures_per_minute=2)) as client:
        for _ in range(5):
            assert_error(await client.post("/gateway/ocr"), 401, "unauthorized")
        ok = await client.post("/gateway/ocr", headers={"X-API-Key": KEY})
        assert_error(ok, 422, "validation_error")


async def test_auth_throttling_can_be_turned_off(make_settings: SettingsFactory) -> None:
    async with gateway_client(make_settings(api_keys=[KEY], auth_failures_per_minute=0)) as client:
        for guess in guesses(15):
            wrong = await client.post("/gateway/ocr", headers={"X-API-Key": guess})
            assert_error(wrong, 401, "unauthorized")


def test_short_keys_are_refused_at_start_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    short = "s3cr3t-" + secrets.token_hex(4)  # 15 characters
    monkeypatch.setenv("OCR_GATEWAY_API_KEYS", f"{KEY},{short}")
    with pytest.raises(SettingsLoadError) as raised:
        load_settings(GatewaySettings)
    message = str(raised.value)
    assert "\n" not in message
    assert "OCR_GATEWAY_API_KEYS" in message
    assert "16 characters" in message
    assert short not in message
    assert KEY not in message


def test_the_key_id_secret_is_random_per_process_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = GatewaySettings(), GatewaySettings()
    assert first.key_id_secret.get_secret_value() != second.key_id_secret.get_secret_value()
    assert len(first.key_id_secret.get_secret_value()) >= 32
    secret = secrets.token_urlsafe(32)
    monkeypatch.setenv("OCR_GATEWAY_KEY_ID_SECRET", secret)
    stable = [GatewaySettings().key_id_secret.get_secret_value() for _ in range(2)]
    assert stable == [secret, secret]
    assert secret not in repr(GatewaySettings())
    monkeypatch.setenv("OCR_GATEWAY_KEY_ID_SECRET", "short")
    with pytest.raises(SettingsLoadError, match="OCR_GATEWAY_KEY_ID_SECRET"):
        load_settings(GatewaySettings)
