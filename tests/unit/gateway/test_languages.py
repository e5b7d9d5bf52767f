"""`GET /gateway/languages`: what the model names in its `ModelMetadata` answer, asked at most
once a minute, its failures answered like the OCR route's, documented like the other routes."""

from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from gateway import client as client_module
from gateway.app import create_app
from tests.unit.gateway.fakes import SAMPLE_LANGUAGES, Failure, FakeModelServicer
from tests.unit.gateway.helpers import SettingsFactory, assert_error, gateway_client, gateway_of
from tests.unit.gateway.test_openapi import error_pairs, routes_table

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

KEY = "languages-test-key-0123"
TOKEN = "model-token-0123456789"  # noqa: S105  # a test value


def metadata_calls(servicer: FakeModelServicer) -> int:
    return sum(1 for method, _ in servicer.calls if method == "ModelMetadata")


@pytest.mark.anyio
async def test_the_languages_the_model_names(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings, model_token=TOKEN) as client:
        response = await client.get("/gateway/languages")
    assert response.status_code == 200, response.text
    assert response.json() == {"languages": list(SAMPLE_LANGUAGES)}
    # Asked like every other call: the model's name, the model token.
    ((method, metadata),) = servicer.calls
    assert method == "ModelMetadata"
    assert metadata["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.anyio
async def test_the_model_is_asked_again_only_after_a_minute(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    # The client's clock only: the event loop keeps the real one.
    monkeypatch.setattr(client_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        assert (await client.get("/gateway/languages")).status_code == 200
        servicer.languages = ("eng",)
        now[0] += client_module.LANGUAGES_TTL_S - 1
        assert (await client.get("/gateway/languages")).json()["languages"] == list(
            SAMPLE_LANGUAGES
        )
        assert metadata_calls(servicer) == 1
        now[0] += 2
        assert (await client.get("/gateway/languages")).json()["languages"] == ["eng"]
        assert metadata_calls(servicer) == 2


@pytest.mark.anyio
async def test_a_model_naming_no_languages_is_a_bad_model_response(
    make_settings: SettingsFactory,
) -> None:
    async with gateway_of(FakeModelServicer(languages=None), make_settings) as client:
        assert_error(await client.get("/gateway/languages"), 502, "bad_model_response")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("servicer", "overrides", "status", "code"),
    [
        (FakeModelServicer(ready=False), {}, 503, "model_unavailable"),
        (FakeModelServicer(), {"model_name": "other-model"}, 502, "model_not_found"),
        (
            FakeModelServicer(failures=[Failure(grpc.StatusCode.INTERNAL, "boom")]),
            {},
            502,
            "upstream_error",
        ),
    ],
    ids=["unavailable", "unknown model", "internal"],
)
async def test_failures_are_answered_like_the_ocr_routes(
    make_settings: SettingsFactory,
    servicer: FakeModelServicer,
    overrides: dict[str, Any],
    status: int,
    code: str,
) -> None:
    async with gateway_of(servicer, make_settings, **overrides) as client:
        assert_error(await client.get("/gateway/languages"), status, code)


@pytest.mark.anyio
async def test_a_model_that_cannot_be_reached_is_unavailable(
    make_settings: SettingsFactory,
) -> None:
    async with gateway_client(make_settings()) as client:
        assert_error(await client.get("/gateway/languages"), 503, "model_unavailable")


@pytest.mark.anyio
async def test_with_api_keys_the_languages_need_one(make_settings: SettingsFactory) -> None:
    async with gateway_of(FakeModelServicer(), make_settings, api_keys=[KEY]) as client:
        assert_error(await client.get("/gateway/languages"), 401, "unauthorized")
        response = await client.get("/gateway/languages", headers={"X-API-Key": KEY})
    assert response.status_code == 200
    assert response.json()["languages"] == list(SAMPLE_LANGUAGES)


def test_the_route_documents_the_readme_rows(make_settings: SettingsFactory) -> None:
    spec = create_app(make_settings(api_keys=[KEY])).openapi()
    operation = spec["paths"]["/gateway/languages"]["get"]
    assert error_pairs(operation["responses"]) == routes_table().pairs(
        route="`GET /gateway/languages`"
    )
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Languages"
    }
    assert operation["security"] == [{"APIKey": []}]
