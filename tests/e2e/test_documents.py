"""Documents through the real platform: PDFs and multi-page TIFFs split by the gateway, each page
read by the real model, joined in every format; the hostile set answered with clear 4xx.

Documents are made at test time: scanned PDFs from rendered pages (Pillow), a born-digital PDF
(pikepdf, Helvetica), multi-page TIFFs (Pillow). Each answer is checked with an independent
reader: JSON fields, `pdftotext` for PDFs, lxml for hOCR, csv for TSV.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pikepdf
import pytest
from lxml import etree

from tests.e2e.conftest import Platform, start_platform
from tests.support.model_documents import (
    encrypted_pdf,
    line_pages,
    multipage,
    scanned_pdf,
    vector_pdf,
)
from tests.support.text import cer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TEXTS = ("First page of three", "Second page here", "Third and last page")
HOCR = "{http://www.w3.org/1999/xhtml}"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start_platform(tmp_path_factory.mktemp("documents"), {"OCR_GATEWAY_MAX_PAGES": "20"})
    yield running
    running.service.stop(signal.SIGINT)


@pytest.fixture(scope="module")
def scanned() -> bytes:
    return scanned_pdf(line_pages(*TEXTS), dpi=150)


def post(
    platform: Platform,
    data: bytes,
    name: str = "doc.pdf",
    headers: dict[str, str] | None = None,
    **form: str,
) -> httpx.Response:
    return platform.ocr(
        files={"image_file": (name, data, "application/octet-stream")},
        data=form,
        headers=headers or {},
    )


def ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code == 200, response.text
    return response


def test_a_scanned_pdf_answers_one_entry_per_page_in_order(
    platform: Platform, scanned: bytes
) -> None:
    body: dict[str, Any] = ok(post(platform, scanned)).json()
    assert body["page_count"] == 3
    assert [page["page"] for page in body["pages"]] == [1, 2, 3]
    texts = body["text"].split("\f")
    assert len(texts) == 3
    for truth, text, page in zip(TEXTS, texts, body["pages"], strict=True):
        assert cer(truth, text) <= 0.05
        assert page["text"] == text
        assert page["dpi"] == 300  # rendered at the model's default
        assert {word["page"] for word in page["words"]} == {page["page"]}
    assert [w["page"] for w in body["words"]] == sorted(w["page"] for w in body["words"])


def test_pages_selects_and_a_page_past_the_end_is_a_422(platform: Platform, scanned: bytes) -> None:
    body = ok(post(platform, scanned, pages="3,1")).json()
    assert [page["page"] for page in body["pages"]] == [1, 3]
    assert body["page_count"] == 3
    refused = post(platform, scanned, pages="2-9")
    assert refused.status_code == 422
    assert "3 pages" in refused.json()["error"]["message"]
    malformed = post(platform, scanned, pages="two")
    assert malformed.status_code == 422
    assert malformed.json()["error"]["message"].startswith("pages")


def test_a_multipage_tiff_is_read_frame_by_frame(platform: Platform) -> None:
    tiff = multipage(line_pages(*TEXTS), "TIFF")
    body = ok(post(platform, tiff, "scan.tif", format="json")).json()
    assert body["page_count"] == 3
    for truth, page in zip(TEXTS, body["pages"], strict=True):
        assert cer(truth, page["text"]) <= 0.05


def test_ndjson_streams_a_line_per_page_then_the_summary(
    platform: Platform, scanned: bytes
) -> None:
    started = time.monotonic()
    first_line_s = None
    lines: list[dict[str, Any]] = []
    with httpx.stream(
        "POST",
        f"{platform.url}/gateway/ocr",
        files={"image_file": ("doc.pdf", scanned, "application/pdf")},
        headers={"Accept": "application/x-ndjson"},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        for line in response.iter_lines():
            if first_line_s is None:
                first_line_s = time.monotonic() - started
            lines.append(json.loads(line))
    *pages, last = lines
    assert sorted(page["page"] for page in pages) == [1, 2, 3]
    summary = last["summary"]
    assert summary["page_count"] == 3
    assert summary["pages_read"] == 3
    assert summary["failed_pages"] == []
    assert first_line_s is not None


def test_text_joins_pages_with_form_feeds(platform: Platform, scanned: bytes) -> None:
    response = ok(post(platform, scanned, format="text"))
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text.count("\f") == 2


def test_hocr_and_tsv_hold_one_page_each_in_order(platform: Platform, scanned: bytes) -> None:
    hocr = etree.fromstring(ok(post(platform, scanned, format="hocr")).content)
    pages = hocr.findall(f".//{HOCR}div[@class='ocr_page']")
    assert len(pages) == 3
    assert len({page.get("id") for page in pages}) == 3
    tsv = ok(post(platform, scanned, format="tsv")).text
    rows = list(csv.reader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0][:2] == ["level", "page_num"]
    assert sorted({int(row[1]) for row in rows[1:] if row}) == [1, 2, 3]


def test_a_pdf_upload_keeps_its_pages_with_a_text_layer(
    platform: Platform, scanned: bytes, tmp_path: Any
) -> None:
    response = ok(post(platform, scanned, format="pdf"))
    assert response.headers["content-type"] == "application/pdf"
    out = tmp_path / "out.pdf"
    out.write_bytes(response.content)
    with pikepdf.open(io.BytesIO(scanned)) as original, pikepdf.open(out) as searchable:
        assert len(searchable.pages) == 3
        for before, after in zip(original.pages, searchable.pages, strict=True):
            # The page's own image, byte for byte.
            (name_before, image_before), *_ = before.get_images().items()
            image_after = after.get_images()[name_before]
            assert image_after.read_raw_bytes() == image_before.read_raw_bytes()
    text = subprocess.run(
        ["pdftotext", "-layout", str(out), "-"], capture_output=True, check=True, text=True
    ).stdout
    pages = text.split("\f")
    for truth, page in zip(TEXTS, pages, strict=False):
        assert cer(truth, page.strip()) <= 0.05
    assert len(response.content) <= 1.3 * len(scanned) + 20_000 * 3


def test_a_born_digital_pdf_is_read_by_ocr(platform: Platform) -> None:
    pdf = vector_pdf([["Vector text on page one"], ["And on page two"]])
    body = ok(post(platform, pdf)).json()
    assert body["page_count"] == 2
    assert cer("Vector text on page one", body["pages"][0]["text"]) <= 0.05


@pytest.mark.parametrize(
    ("data", "status", "code", "says"),
    [
        (encrypted_pdf(), 422, "encrypted_document", "password"),
        (b"%PDF-1.7\n" + b"junk " * 200, 422, "unreadable_document", ""),
        (scanned_pdf(line_pages("x"))[:400], 422, "unreadable_document", ""),
        (scanned_pdf(line_pages(*("p",) * 21), dpi=30), 413, "too_many_pages", "20"),
    ],
    ids=["encrypted", "junk-after-header", "truncated", "too-many-pages"],
)
def test_hostile_documents_get_a_clear_4xx_fast(
    platform: Platform, data: bytes, status: int, code: str, says: str
) -> None:
    started = time.monotonic()
    response = post(platform, data)
    assert time.monotonic() - started < 3.0
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert says in error["message"]
    # The service keeps serving.
    assert ok(post(platform, vector_pdf([["Still here"]]))).json()["page_count"] == 1


def test_pdf_text_keep_returns_a_born_digital_pages_own_text(platform: Platform) -> None:
    lines = ["Kept exactly: 42 (text)", "second line"]
    pdf = vector_pdf([lines], rotate=0)
    body = ok(post(platform, pdf, pdf_text="keep")).json()
    (page,) = body["pages"]
    assert page["source"] == "pdf"
    assert body["text"] == "\n".join(lines) + "\n"
    assert {word["confidence"] for word in body["words"]} == {100.0}
    assert [word["line"] for word in body["words"]] == [1, 1, 1, 1, 2, 2]
    # Boxes at the render dpi: the first word starts an inch in (72 pt at 300 dpi).
    first = body["words"][0]
    assert abs(first["left"] - 300) <= 10
    # Without keep the same page is read by OCR.
    assert ok(post(platform, pdf)).json()["pages"][0]["source"] == "ocr"


def test_pdf_text_keep_still_reads_a_scanned_page_by_ocr(
    platform: Platform, scanned: bytes
) -> None:
    body = ok(post(platform, scanned, pdf_text="keep", pages="1")).json()
    assert body["pages"][0]["source"] == "ocr"
    assert cer(TEXTS[0], body["text"]) <= 0.05


def test_a_kept_page_gets_no_text_layer_over_its_own(platform: Platform, tmp_path: Any) -> None:
    pdf = vector_pdf([["Only once please"]])
    response = ok(post(platform, pdf, pdf_text="keep", format="pdf"))
    out = tmp_path / "kept.pdf"
    out.write_bytes(response.content)
    text = subprocess.run(
        ["pdftotext", str(out), "-"], capture_output=True, check=True, text=True
    ).stdout
    assert text.count("Only once please") == 1
    bad = post(platform, pdf, pdf_text="maybe")
    assert bad.status_code == 422
    assert "pdf_text" in bad.text
