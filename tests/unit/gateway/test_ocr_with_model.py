"""The HTTP app in front of a real in-process gRPC model double: answers and error mapping."""

import time

import grpc
import httpx
import pytest

from gateway.protocol import pb
from tests.unit.gateway.fakes import (
    MODEL_NAME,
    MODEL_VERSION,
    SAMPLE_CONFIDENCE,
    SAMPLE_TEXT,
    SAMPLE_WORDS,
    Failure,
    FakeModelServicer,
    ok_response,
    png_bytes,
)
from tests.unit.gateway.helpers import SettingsFactory, assert_error, gateway_of

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(30)]


async def post_png(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post(
        "/gateway/ocr",
        data=form,
        files={"image_file": ("scan.bin", png_bytes(), "application/octet-stream")},
    )


async def test_ocr_answer(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        response = await client.post(
            "/gateway/ocr",
            data={"lang": "eng+deu", "psm": "6"},
            files={"image_file": ("scan.bin", png_bytes(), "application/octet-stream")},
            headers={"X-Request-ID": "ocr-1"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == SAMPLE_TEXT
    assert body["confidence"] == SAMPLE_CONFIDENCE
    assert body["words"] == SAMPLE_WORDS
    assert (body["model"], body["model_version"]) == (MODEL_NAME, MODEL_VERSION)
    assert body["request_id"] == response.headers["x-request-id"] == "ocr-1"
    timings = body["timings"]
    assert 0 < timings["model_ms"] <= timings["total_ms"]
    # One call carrying the untouched upload, the form fields and the request id.
    (request,) = servicer.requests
    assert request.id == "ocr-1"
    assert request.raw_input_contents[0][4:] == png_bytes()
    assert request.parameters["lang"].string_param == "eng+deu"
    assert request.parameters["psm"].int64_param == 6


async def test_defaults_are_sent_when_fields_are_omitted(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        assert (await post_png(client)).status_code == 200
    (request,) = servicer.requests
    assert request.parameters["lang"].string_param == "eng"
    assert "psm" not in request.parameters


async def test_typed_contents_answer_is_understood(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer(response=ok_response(raw=False, text="typed"))
    async with gateway_of(servicer, make_settings) as client:
        response = await post_png(client)
    assert response.status_code == 200
    assert response.json()["text"] == "typed"


async def test_unavailable_twice_then_success(make_settings: SettingsFactory) -> None:
    unavailable = Failure(grpc.StatusCode.UNAVAILABLE, "starting")
    servicer = FakeModelServicer(failures=[unavailable, unavailable])
    async with gateway_of(servicer, make_settings, retry_max_attempts=3) as client:
        response = await post_png(client)
    assert response.status_code == 200
    assert len(servicer.requests) == 3


async def test_model_rejection_is_422_with_its_message(make_settings: SettingsFactory) -> None:
    rejection = Failure(grpc.StatusCode.INVALID_ARGUMENT, "unknown language 'xx'")
    servicer = FakeModelServicer(failures=[rejection])
    async with gateway_of(servicer, make_settings) as client:
        response = await post_png(client, lang="xx")
    assert assert_error(response, 422, "invalid_argument") == "unknown language 'xx'"
    assert len(servicer.requests) == 1


@pytest.mark.parametrize(
    ("grpc_code", "status", "code"),
    [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "model_overloaded"),
        (grpc.StatusCode.NOT_FOUND, 502, "model_not_found"),
        (grpc.StatusCode.INTERNAL, 502, "upstream_error"),
    ],
)
async def test_model_failures_map_to_http(
    make_settings: SettingsFactory, grpc_code: grpc.StatusCode, status: int, code: str
) -> None:
    servicer = FakeModelServicer(failures=[Failure(grpc_code, "internal detail 10.1.1.1")])
    async with gateway_of(servicer, make_settings) as client:
        response = await post_png(client)
    message = assert_error(response, status, code)
    assert "10.1.1.1" not in message
    if status == 429:
        assert response.headers["retry-after"] == "1"


async def test_slow_model_is_504_at_the_deadline(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer(hang=True)
    async with gateway_of(servicer, make_settings, request_timeout_s=0.5) as client:
        started = time.monotonic()
        response = await post_png(client)
        elapsed = time.monotonic() - started
    assert_error(response, 504, "model_timeout")
    assert 0.45 <= elapsed < 2.0


async def test_off_contract_answer_is_502(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer(response=pb.ModelInferResponse(model_name=MODEL_NAME))
    async with gateway_of(servicer, make_settings) as client:
        response = await post_png(client)
    assert_error(response, 502, "bad_model_response")


async def test_readiness_with_a_ready_model(make_settings: SettingsFactory) -> None:
    async with gateway_of(FakeModelServicer(ready=True), make_settings) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_readiness_with_a_loading_model(make_settings: SettingsFactory) -> None:
    async with gateway_of(FakeModelServicer(ready=False), make_settings) as client:
        assert_error(await client.get("/readyz"), 503, "not_ready")
