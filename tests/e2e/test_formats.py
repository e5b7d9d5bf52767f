"""Every answer format from one recognition, through the real platform (gateway + model).

The gateway's negotiation is unit-tested against a fake model; here each format is the real
model's output as a client gets it: JSON with its page facts, the text, hOCR, TSV, ALTO and a
searchable PDF, and `rotate=auto` turning a sideways page upright.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from PIL import Image

from tests.e2e.conftest import Platform, start_platform
from tests.support.images import TESTDATA
from tests.support.text import cer

pytestmark = pytest.mark.e2e

PAGE = TESTDATA / "phototest.tif"
SIDEWAYS = TESTDATA / "phototest-rotated-R.png"
TSV_HEADER = [
    "level", "page_num", "block_num", "par_num", "line_num", "word_num",
    "left", "top", "width", "height", "conf", "text",
]  # fmt: skip
ALTO_4 = "{http://www.loc.gov/standards/alto/ns-v4#}alto"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start_platform(tmp_path_factory.mktemp("formats"))
    yield running
    running.service.stop(signal.SIGINT)


def ocr(
    platform: Platform,
    path: Path = PAGE,
    headers: dict[str, str] | None = None,
    **form: str,
) -> httpx.Response:
    response = platform.ocr(
        files={"image_file": (path.name, path.read_bytes(), "application/octet-stream")},
        data=form,
        headers=headers or {},
    )
    assert response.status_code == 200, response.text
    return response


@pytest.fixture(scope="module")
def page_json(platform: Platform) -> dict[str, Any]:
    """The JSON answer for phototest.tif."""
    body: dict[str, Any] = ocr(platform).json()
    return body


def assert_download(response: httpx.Response, media_type: str, filename: str) -> None:
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'


def test_json_has_the_page_facts(page_json: dict[str, Any]) -> None:
    truth = (TESTDATA / "phototest.txt").read_text()
    assert cer(truth, page_json["text"]) <= 0.01
    assert page_json["page_count"] == 1
    (page,) = page_json["pages"]
    width, height = Image.open(PAGE).size
    assert (page["page"], page["width"], page["height"]) == (1, width, height)
    assert page["rotation"] == 0
    assert page["text"] == page_json["text"]
    assert page["words"] == page_json["words"]
    assert all(word["paragraph"] >= 1 for word in page_json["words"])
    assert set(page["timings"]) == {"queue_s", "decode_s", "preprocess_s", "recognize_s"}


def test_text_is_the_json_text(platform: Platform, page_json: dict[str, Any]) -> None:
    response = ocr(platform, format="text")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == page_json["text"]


def test_hocr_is_xhtml_with_words(platform: Platform, page_json: dict[str, Any]) -> None:
    response = ocr(platform, format="hocr")
    assert_download(response, "text/vnd.hocr+html; charset=utf-8", "phototest.hocr")
    root = etree.fromstring(response.content)
    words = root.xpath("//*[contains(concat(' ', @class, ' '), ' ocrx_word ')]")
    assert words
    texts = ["".join(word.itertext()).strip() for word in words]
    assert texts == [word["text"] for word in page_json["words"]]
    assert all("bbox " in word.get("title", "") for word in words)


def test_tsv_has_tesseracts_columns(platform: Platform, page_json: dict[str, Any]) -> None:
    response = ocr(platform, format="tsv")
    assert_download(response, "text/tab-separated-values; charset=utf-8", "phototest.tsv")
    header, *rows = response.text.splitlines()
    assert header.split("\t") == TSV_HEADER
    cells = [row.split("\t") for row in rows]
    assert all(len(row) == len(TSV_HEADER) for row in cells)
    words = [row[11] for row in cells if row[0] == "5"]
    assert words == [word["text"] for word in page_json["words"]]


def test_alto_is_alto_4(platform: Platform) -> None:
    response = ocr(platform, format="alto")
    assert_download(response, "application/alto+xml; charset=utf-8", "phototest.alto.xml")
    root = etree.fromstring(response.content)
    assert root.tag == ALTO_4
    assert root.findall(".//{*}String")


def test_pdf_is_searchable(platform: Platform, page_json: dict[str, Any], tmp_path: Path) -> None:
    response = ocr(platform, format="pdf")
    assert_download(response, "application/pdf", "phototest.pdf")
    assert response.content.startswith(b"%PDF")
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext (Debian poppler-utils) is needed"
    pdf = tmp_path / "page.pdf"
    pdf.write_bytes(response.content)
    extracted = subprocess.run(
        [pdftotext, str(pdf), "-"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    found = extracted.split()
    expected = [word["text"] for word in page_json["words"]]
    missing = [word for word in expected if word not in found]
    assert len(missing) <= len(expected) * 0.02, missing


def test_accept_header_chooses_the_format(platform: Platform) -> None:
    response = ocr(platform, headers={"Accept": "application/alto+xml"})
    assert response.headers["content-type"] == "application/alto+xml; charset=utf-8"
    # `format` wins over Accept.
    response = ocr(platform, headers={"Accept": "application/pdf"}, format="text")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_rotate_auto_reads_a_sideways_page(platform: Platform, page_json: dict[str, Any]) -> None:
    body = ocr(platform, SIDEWAYS, rotate="auto").json()
    assert cer(page_json["text"], body["text"]) <= 0.03
    (page,) = body["pages"]
    assert page["rotation"] in (90, 270)
    # Upright, the page is as wide as the original.
    assert (page["width"], page["height"]) == Image.open(PAGE).size


def test_deskew_of_a_straight_page_changes_nothing(
    platform: Platform, page_json: dict[str, Any]
) -> None:
    body = ocr(platform, deskew="true", rotate="none").json()
    (page,) = body["pages"]
    assert abs(page["skew"]) < 1.0
    assert page["rotation"] == 0
    assert cer(page_json["text"], body["text"]) <= 0.03
