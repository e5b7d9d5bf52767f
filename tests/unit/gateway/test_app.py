"""The HTTP app with no model server reachable: probes, validation, limits and error bodies."""

import logging
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.middleware import MULTIPART_OVERHEAD_BYTES
from tests.unit.gateway.fakes import png_bytes
from tests.unit.gateway.helpers import SettingsFactory, assert_error, gateway_client

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(30)]

MIB = 1024 * 1024


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway, its model address a closed loopback port, uploads limited to 1 MiB."""
    async with gateway_client(make_settings(max_upload_bytes=MIB, request_timeout_s=1.0)) as c:
        yield c


async def test_liveness_needs_no_model(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/health"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_readiness_fails_without_a_model(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/readyz"), 503, "not_ready")


async def test_valid_image_without_model_is_unavailable_within_the_deadline(
    client: httpx.AsyncClient,
) -> None:
    started = time.monotonic()
    response = await client.post(
        "/gateway/ocr", files={"image_file": ("page.png", png_bytes(), "image/png")}
    )
    assert time.monotonic() - started < 2.0
    message = assert_error(response, 503, "model_unavailable")
    assert "127.0.0.1" not in message


async def test_sane_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/gateway/ocr",
        files={"image_file": ("page.png", png_bytes(), "image/png")},
        headers={"X-Request-ID": "client-req.42"},
    )
    assert response.headers["x-request-id"] == "client-req.42"
    assert response.json()["error"]["request_id"] == "client-req.42"


async def test_insane_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "x" * 65})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_missing_image_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/gateway/ocr", data={"lang": "eng"})
    message = assert_error(response, 422, "validation_error")
    assert message.startswith("image_file: ")
    assert "required" in message.lower()


async def test_empty_file(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/gateway/ocr", files={"image_file": ("page.png", b"", "image/png")}
    )
    assert_error(response, 422, "empty_file")


async def test_text_named_png_is_refused_by_its_bytes(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/gateway/ocr", files={"image_file": ("page.png", b"just some text\n", "image/png")}
    )
    message = assert_error(response, 415, "unsupported_media_type")
    assert "PNG" in message


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"psm": "99"}, "psm"),
        ({"psm": "-1"}, "psm"),
        ({"psm": "six"}, "psm"),
        ({"lang": "eng;rm -rf"}, "lang"),
        ({"lang": "eng+"}, "lang"),
        ({"lang": "e" * 65}, "lang"),
    ],
)
async def test_invalid_form_fields(
    client: httpx.AsyncClient, form: dict[str, str], field: str
) -> None:
    response = await client.post(
        "/gateway/ocr",
        data=form,
        files={"image_file": ("page.png", png_bytes(), "image/png")},
    )
    message = assert_error(response, 422, "validation_error")
    assert message.startswith(f"{field}: ")


async def test_unknown_route(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/nope"), 404, "not_found")


async def test_wrong_method(client: httpx.AsyncClient) -> None:
    response = await client.get("/gateway/ocr")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


BOUNDARY = "xyz"
MULTIPART_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


class RecordingBody:
    """A huge multipart body, made as it is read, that counts the bytes the server pulled."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total = total
        self.chunk = chunk
        self.consumed = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head = (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="image_file"; filename="page.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode() + png_bytes()
        self.consumed = len(head)
        yield head
        while self.consumed < self.total:
            size = min(self.chunk, self.total - self.consumed)
            self.consumed += size
            yield b"\0" * size


async def test_declared_oversize_body_is_refused_unread(client: httpx.AsyncClient) -> None:
    body = RecordingBody(total=4 * MIB)
    response = await client.post(
        "/gateway/ocr",
        content=body,
        headers={**MULTIPART_HEADERS, "Content-Length": str(body.total)},
    )
    message = assert_error(response, 413, "payload_too_large")
    assert "1 MB" in message
    assert body.consumed == 0


async def test_streamed_oversize_body_is_refused_early(client: httpx.AsyncClient) -> None:
    body = RecordingBody(total=16 * MIB)
    response = await client.post(
        "/gateway/ocr",
        content=body,
        headers=MULTIPART_HEADERS,
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")
    # Refused as soon as the limit was passed: at most one chunk beyond it was pulled.
    assert body.consumed <= MIB + MULTIPART_OVERHEAD_BYTES + body.chunk


async def test_file_over_the_limit_within_the_overhead_is_refused(
    client: httpx.AsyncClient,
) -> None:
    image = png_bytes() + b"\0" * MIB  # just over 1 MiB: passes the body check, not the file one
    response = await client.post(
        "/gateway/ocr", files={"image_file": ("page.png", image, "image/png")}
    )
    assert_error(response, 413, "payload_too_large")


async def test_unexpected_error_is_a_generic_500(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings())

    async def explode() -> None:
        raise RuntimeError("secret at /srv/gateway/app.py via 10.9.8.7")

    app.add_api_route("/explode", explode)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        with caplog.at_level(logging.ERROR, logger="gateway"):
            response = await client.get("/explode")
    message = assert_error(response, 500, "internal_error")
    for leak in ("secret", "RuntimeError", "/srv/", "10.9.8.7"):
        assert leak not in response.text
    assert message == "Internal server error."
    # The logs keep what the client does not see.
    (record,) = [r for r in caplog.records if r.exc_info is not None]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


async def test_openapi_documents_responses_and_errors(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    responses = spec["paths"]["/gateway/ocr"]["post"]["responses"]
    ok_schema = responses["200"]["content"]["application/json"]["schema"]
    assert ok_schema == {"$ref": "#/components/schemas/OcrResponse"}
    for status in ("413", "415", "422", "429", "503", "504"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, status
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["info"]["title"] == "OCR Gateway"
