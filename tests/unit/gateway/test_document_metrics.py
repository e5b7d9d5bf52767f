"""Document metrics in-process: a PDF built at test time, read through the real app against the
fake gRPC model, moves the pages-per-document histogram, the pages counter and the page timer.

Values are read from the app's own registry, the one `/metrics` serves.
"""

import grpc
import httpx
import pytest
from fastapi import FastAPI

from gateway.metrics import DOCUMENT_PAGE_BUCKETS, PAGE_LATENCY_BUCKETS
from tests.support.model_documents import line_pages, scanned_pdf
from tests.unit.gateway.fakes import Failure, FakeModelServicer, png_bytes
from tests.unit.gateway.helpers import SettingsFactory, app_of

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(30)]

PDF = scanned_pdf(line_pages("First page", "Second page", "Third page"), dpi=150)


async def upload(
    client: httpx.AsyncClient, data: bytes, name: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        "/gateway/ocr", files={"image_file": (name, data)}, headers=headers or {}
    )


def sample(app: FastAPI, name: str, **labels: str) -> float | None:
    value = app.state.metrics.registry.get_sample_value(name, labels)
    assert value is None or isinstance(value, float)
    return value


def test_buckets_cover_a_document_and_a_page() -> None:
    assert DOCUMENT_PAGE_BUCKETS == (1, 2, 4, 8, 16, 32, 64, 128, 256)
    assert PAGE_LATENCY_BUCKETS[0] == 0.01
    assert PAGE_LATENCY_BUCKETS[-1] == 60
    assert list(PAGE_LATENCY_BUCKETS) == sorted(PAGE_LATENCY_BUCKETS)


async def test_a_three_page_pdf_counts_three_pages_read(make_settings: SettingsFactory) -> None:
    async with app_of(FakeModelServicer(), make_settings) as (app, client):
        response = await upload(client, PDF, "scan.pdf")
        exposed = (await client.get("/metrics")).text

    assert response.status_code == 200, response.text
    assert response.json()["page_count"] == 3
    # One document of three pages: in the (2, 4] bucket, not in (1, 2].
    assert sample(app, "ocr_gateway_document_pages_count") == 1
    assert sample(app, "ocr_gateway_document_pages_sum") == 3
    assert sample(app, "ocr_gateway_document_pages_bucket", le="2.0") == 0
    assert sample(app, "ocr_gateway_document_pages_bucket", le="4.0") == 1
    assert sample(app, "ocr_gateway_pages_total", outcome="ok") == 3
    assert sample(app, "ocr_gateway_pages_total", outcome="error") is None
    assert sample(app, "ocr_gateway_page_seconds_count") == 3
    page_seconds = sample(app, "ocr_gateway_page_seconds_sum")
    assert page_seconds is not None
    assert page_seconds > 0
    assert 'ocr_gateway_pages_total{outcome="ok"} 3.0' in exposed


async def test_a_failed_page_counts_as_an_error_and_the_rest_as_read(
    make_settings: SettingsFactory,
) -> None:
    # The first call to reach the model is refused (not retried); the document goes on.
    servicer = FakeModelServicer(failures=[Failure(grpc.StatusCode.INVALID_ARGUMENT, "no")])
    async with app_of(servicer, make_settings) as (app, client):
        response = await upload(client, PDF, "scan.pdf")

    assert response.status_code == 200, response.text
    failed = [entry for entry in response.json()["pages"] if "error" in entry]
    assert len(failed) == 1
    assert sample(app, "ocr_gateway_document_pages_sum") == 3
    assert sample(app, "ocr_gateway_pages_total", outcome="ok") == 2
    assert sample(app, "ocr_gateway_pages_total", outcome="error") == 1
    assert sample(app, "ocr_gateway_page_seconds_count") == 3


async def test_streamed_pages_and_single_images_are_counted(
    make_settings: SettingsFactory,
) -> None:
    ndjson = {"Accept": "application/x-ndjson"}
    async with app_of(FakeModelServicer(), make_settings) as (app, client):
        streamed = await upload(client, PDF, "scan.pdf", ndjson)
        single = await upload(client, png_bytes(), "line.png")

    assert (streamed.status_code, single.status_code) == (200, 200)
    assert len(streamed.text.splitlines()) == 4  # three pages and the summary
    # An image is a document of one page.
    assert sample(app, "ocr_gateway_document_pages_count") == 2
    assert sample(app, "ocr_gateway_document_pages_bucket", le="1.0") == 1
    assert sample(app, "ocr_gateway_pages_total", outcome="ok") == 4
    assert sample(app, "ocr_gateway_page_seconds_count") == 4


async def test_an_upload_refused_before_reading_counts_no_page(
    make_settings: SettingsFactory,
) -> None:
    servicer = FakeModelServicer()
    async with app_of(servicer, make_settings) as (app, client):
        assert (await upload(client, b"not a document", "notes.txt")).status_code == 415
        assert (await upload(client, PDF[:40], "cut.pdf")).status_code // 100 == 4

    assert not servicer.requests
    assert sample(app, "ocr_gateway_document_pages_count") == 0
    assert sample(app, "ocr_gateway_pages_total", outcome="ok") is None
    assert sample(app, "ocr_gateway_page_seconds_count") == 0
