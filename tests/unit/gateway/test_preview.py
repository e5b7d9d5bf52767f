"""`preview=true`: the NDJSON page lines carry the page image the model read, as a `data:` URL
(what the web page draws the word boxes on); the model is asked for `preview` only then."""

from __future__ import annotations

import base64
from typing import Any

import grpc
import orjson
import pytest

from tests.support.model_documents import line_pages, scanned_pdf
from tests.unit.gateway.fakes import (
    SAMPLE_PAGE,
    SAMPLE_PREVIEW,
    Failure,
    FakeModelServicer,
    ok_response,
    png_bytes,
)
from tests.unit.gateway.helpers import SettingsFactory, assert_error, gateway_of

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(30)]

DATA_URL = "data:image/jpeg;base64,"


async def post(client: Any, data: bytes, **form: str) -> Any:
    return await client.post(
        "/gateway/ocr",
        data=form,
        files={"image_file": ("scan.bin", data, "application/octet-stream")},
    )


def asked(servicer: FakeModelServicer) -> list[list[str]]:
    """The outputs each ModelInfer asked for."""
    return [[output.name for output in request.outputs] for request in servicer.requests]


async def test_each_page_line_carries_its_preview(make_settings: SettingsFactory) -> None:
    pdf = scanned_pdf(line_pages("one", "two"), dpi=72)
    servicer = FakeModelServicer(failures=[Failure(grpc.StatusCode.INVALID_ARGUMENT, "bad")])
    async with gateway_of(servicer, make_settings, page_concurrency=1) as client:
        response = await post(client, pdf, format="ndjson", preview="true")
    assert response.status_code == 200, response.text
    failed, read, summary = [orjson.loads(line) for line in response.text.splitlines()]
    assert asked(servicer) == [["text", "confidence", "words", "page", "preview"]] * 2
    # A page that failed has nothing to show; a page read has its facts and its image.
    assert set(failed) == {"page", "error"}
    assert read["page"] == 2
    assert read["preview"].startswith(DATA_URL)
    assert base64.b64decode(read["preview"].removeprefix(DATA_URL)) == SAMPLE_PREVIEW
    assert (read["width"], read["height"]) == (SAMPLE_PAGE["width"], SAMPLE_PAGE["height"])
    assert read["words"][0]["page"] == 2
    assert summary["summary"]["pages_read"] == 1


async def test_without_preview_the_lines_and_the_call_stay_as_they_were(
    make_settings: SettingsFactory,
) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        response = await post(client, png_bytes(), format="ndjson")
    page, _ = [orjson.loads(line) for line in response.text.splitlines()]
    assert "preview" not in page
    assert asked(servicer) == [["text", "confidence", "words", "page"]]


@pytest.mark.parametrize("answer_format", ["json", "text", "hocr", "pdf"])
async def test_the_other_formats_ignore_it(
    make_settings: SettingsFactory, answer_format: str
) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        response = await post(client, png_bytes(), format=answer_format, preview="true")
    assert response.status_code == 200, response.text
    assert "preview" not in asked(servicer)[0]
    assert b"data:image/jpeg" not in response.content


async def test_a_preview_that_is_no_jpeg_is_a_bad_model_response(
    make_settings: SettingsFactory,
) -> None:
    outputs = ("text", "confidence", "words", "page", "preview")
    answer = ok_response(outputs=outputs, documents={"preview": b"\x89PNG\r\n\x1a\n not a jpeg"})
    servicer = FakeModelServicer(response=answer)
    async with gateway_of(servicer, make_settings) as client:
        response = await post(client, png_bytes(), format="ndjson", preview="true")
    page, summary = [orjson.loads(line) for line in response.text.splitlines()]
    assert page["error"]["code"] == "bad_model_response"
    assert summary["summary"]["failed_pages"] == [1]


async def test_preview_must_be_a_boolean(make_settings: SettingsFactory) -> None:
    async with gateway_of(FakeModelServicer(), make_settings) as client:
        response = await post(client, png_bytes(), format="ndjson", preview="maybe")
    assert "preview" in assert_error(response, 422, "validation_error")
