"""`POST /gateway/ocr` with documents, against a fake model: one call per page carrying only that
page, the failure rule (a failed page is an entry; all failed is the first error), overloaded
pages retried within the document's time, NDJSON lines and the failed-pages header.

The fake model answers from a script (tests.unit.gateway.fakes); documents are made at test time.
"""

from __future__ import annotations

import io
from typing import Any

import grpc
import orjson
import pikepdf
import pytest
from PIL import Image

from tests.support.model_documents import line_pages, multipage, scanned_pdf
from tests.unit.gateway.fakes import Failure, FakeModelServicer
from tests.unit.gateway.helpers import SettingsFactory, assert_error, gateway_of

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

PAGES = 3


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return scanned_pdf(line_pages(*(f"page {n}" for n in range(1, PAGES + 1))), dpi=72)


async def post(client: Any, data: bytes, **form: str) -> Any:
    headers = {"Accept": form.pop("accept")} if "accept" in form else {}
    return await client.post(
        "/gateway/ocr",
        data=form,
        headers=headers,
        files={"image_file": ("doc.pdf", data, "application/octet-stream")},
    )


def sent_pages(servicer: FakeModelServicer) -> list[bytes]:
    """The file each ModelInfer carried."""
    return [request.raw_input_contents[0][4:] for request in servicer.requests]


async def test_each_page_is_one_call_carrying_only_that_page(
    make_settings: SettingsFactory, pdf: bytes
) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        response = await post(client, pdf)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["page_count"] == PAGES
    assert [page["page"] for page in body["pages"]] == [1, 2, 3]
    assert body["text"].count("\f") == PAGES - 1
    assert {word["page"] for word in body["words"]} == {1, 2, 3}
    sent = sent_pages(servicer)
    assert len(sent) == PAGES
    for data in sent:
        with pikepdf.open(io.BytesIO(data)) as one:
            assert len(one.pages) == 1
        assert len(data) < len(pdf)


async def test_a_failed_page_is_an_entry_and_the_rest_is_read(
    make_settings: SettingsFactory, pdf: bytes
) -> None:
    # Concurrency 1 keeps the order: the first call (page 1) fails.
    servicer = FakeModelServicer(failures=[Failure(grpc.StatusCode.DEADLINE_EXCEEDED, "slow")])
    async with gateway_of(servicer, make_settings, page_concurrency=1) as client:
        response = await post(client, pdf)
        text = await post(client, pdf, format="text")
    assert response.status_code == 200, response.text
    first, *rest = response.json()["pages"]
    assert first == {
        "page": 1,
        "error": {"code": "model_timeout", "message": first["error"]["message"]},
    }
    assert [page["page"] for page in rest] == [2, 3]
    assert text.status_code == 200
    assert "x-ocr-failed-pages" not in text.headers  # that call had no failure left


async def test_a_file_answer_names_its_failed_pages(
    make_settings: SettingsFactory, pdf: bytes
) -> None:
    servicer = FakeModelServicer(failures=[Failure(grpc.StatusCode.INVALID_ARGUMENT, "bad page")])
    async with gateway_of(servicer, make_settings, page_concurrency=1) as client:
        response = await post(client, pdf, format="text")
    assert response.status_code == 200
    assert response.headers["x-ocr-failed-pages"] == "1"
    assert response.text.startswith("\f")


async def test_when_every_page_fails_the_answer_is_the_first_pages_error(
    make_settings: SettingsFactory, pdf: bytes
) -> None:
    failures = [Failure(grpc.StatusCode.INVALID_ARGUMENT, "no good")] * PAGES
    servicer = FakeModelServicer(failures=failures)
    async with gateway_of(servicer, make_settings, page_concurrency=1) as client:
        response = await post(client, pdf)
    assert_error(response, 422, "invalid_argument")


async def test_overloaded_pages_are_tried_again_within_the_document_time(
    make_settings: SettingsFactory, pdf: bytes
) -> None:
    overloaded = [Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")] * 2
    servicer = FakeModelServicer(failures=overloaded)
    async with gateway_of(servicer, make_settings, page_concurrency=1) as client:
        response = await post(client, pdf)
    assert response.status_code == 200, response.text
    assert all("error" not in page for page in response.json()["pages"])
    assert len(servicer.requests) == PAGES + 2


async def test_a_single_image_refused_for_overload_gets_the_429_at_once(
    make_settings: SettingsFactory,
) -> None:
    image = io.BytesIO()
    Image.new("L", (40, 20), 255).save(image, "PNG")
    servicer = FakeModelServicer(failures=[Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")])
    async with gateway_of(servicer, make_settings) as client:
        response = await post(client, image.getvalue())
    assert_error(response, 429, "model_overloaded")
    assert len(servicer.requests) == 1


async def test_ndjson_is_a_line_per_page_then_the_summary(
    make_settings: SettingsFactory, pdf: bytes
) -> None:
    servicer = FakeModelServicer(failures=[Failure(grpc.StatusCode.INVALID_ARGUMENT, "bad")])
    async with gateway_of(servicer, make_settings, page_concurrency=1) as client:
        response = await post(client, pdf, accept="application/x-ndjson")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    *pages, last = [orjson.loads(line) for line in response.text.splitlines()]
    assert [page["page"] for page in pages] == [1, 2, 3]
    assert pages[0]["error"]["code"] == "invalid_argument"
    summary = last["summary"]
    assert summary["page_count"] == PAGES
    assert summary["pages_read"] == PAGES - 1
    assert summary["failed_pages"] == [1]


async def test_a_multipage_tiff_sends_each_frame_alone(make_settings: SettingsFactory) -> None:
    tiff = multipage(line_pages("one", "two"), "TIFF")
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        response = await post(client, tiff, pages="2")
    assert response.status_code == 200, response.text
    assert [page["page"] for page in response.json()["pages"]] == [2]
    (sent,) = sent_pages(servicer)
    with Image.open(io.BytesIO(sent)) as frame:
        assert getattr(frame, "n_frames", 1) == 1


async def test_a_page_past_the_end_is_refused_before_any_call(
    make_settings: SettingsFactory, pdf: bytes
) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        response = await post(client, pdf, pages="2,9")
    message = assert_error(response, 422, "validation_error")
    assert "3 pages" in message
    assert servicer.requests == []
