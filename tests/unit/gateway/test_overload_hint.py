"""The model's retry hint (trailing metadata `retry-after-ms`) becomes the gateway's
`Retry-After` on 429 `model_overloaded`; without a usable one, `Retry-After: 1`."""

from typing import Any

import grpc
import httpx
import pytest

from contract.metadata import RETRY_AFTER_MS
from gateway.errors import ModelOverloadedError, retry_after_ms, upstream_error_for
from gateway.protocol import pb
from tests.unit.gateway.fakes import FakeModelServicer, png_bytes
from tests.unit.gateway.helpers import SettingsFactory, assert_error, gateway_of

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(30)]


class Overloaded(FakeModelServicer):
    """Refuses every ModelInfer for overload, with `hint` as its trailing metadata."""

    def __init__(self, hint: tuple[tuple[str, str], ...]) -> None:
        super().__init__()
        self.hint = hint

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> Any:
        self.requests.append(request)
        context.set_trailing_metadata(self.hint)
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the OCR engine is busy")


@pytest.mark.parametrize(
    ("hint", "retry_after"),
    [
        (((RETRY_AFTER_MS, "2500"),), "3"),
        (((RETRY_AFTER_MS, "40"),), "1"),
        ((), "1"),
        (((RETRY_AFTER_MS, "soon"),), "1"),
    ],
    ids=["rounded up", "at least 1", "none", "not a number"],
)
async def test_the_models_hint_is_the_retry_after(
    make_settings: SettingsFactory, hint: tuple[tuple[str, str], ...], retry_after: str
) -> None:
    servicer = Overloaded(hint)
    async with gateway_of(servicer, make_settings) as client:
        response: httpx.Response = await client.post(
            "/gateway/ocr", files={"image_file": ("scan.png", png_bytes(), "image/png")}
        )
    assert_error(response, 429, "model_overloaded")
    assert response.headers["retry-after"] == retry_after
    assert len(servicer.requests) == 1  # a single image is not retried by the gateway


def test_the_hint_is_read_from_text_or_bytes_and_bounded() -> None:
    assert retry_after_ms([("other", "1"), (RETRY_AFTER_MS, b"1200")]) == 1200
    assert retry_after_ms([(RETRY_AFTER_MS, "0")]) is None
    assert retry_after_ms([(RETRY_AFTER_MS, "-5")]) is None
    assert retry_after_ms([(RETRY_AFTER_MS, "٣")]) is None  # a digit, but not ASCII
    assert retry_after_ms([(RETRY_AFTER_MS, "9" * 400)]) is None
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    days = upstream_error_for(code, "busy", [(RETRY_AFTER_MS, str(86_400_000))])
    assert isinstance(days, ModelOverloadedError)
    assert days.headers == {"Retry-After": "300"}  # believed up to 5 minutes
    # Other errors ignore it.
    unavailable = upstream_error_for(grpc.StatusCode.UNAVAILABLE, "", [(RETRY_AFTER_MS, "5000")])
    assert "Retry-After" not in unavailable.headers
