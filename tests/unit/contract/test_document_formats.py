"""Document formats sit beside the image formats: PDF is recognised from its bytes as readers do,
an image's magic bytes win over a document signature, and the image list is unchanged."""

from __future__ import annotations

import pytest
from PIL import Image

import contract
from contract.formats import (
    ACCEPTED_DOCUMENT_FORMAT_NAMES,
    DOCUMENT_FORMATS,
    PDF_FORMAT,
    sniff_document_format,
)
from tests.support.images import encode

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        b"%PDF-2.0",
        b"\x00" * 1000 + b"%PDF-1.4",  # junk before the header, still in the first 1024 bytes
        b"junk\r\n%PDF-1.3",
    ],
)
def test_a_pdf_is_recognised_where_readers_find_it(data: bytes) -> None:
    assert sniff_document_format(data) is PDF_FORMAT
    assert PDF_FORMAT.media_type == "application/pdf"
    assert contract.sniff_image_format(data) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"%PDF",
        b"%pdf-1.7",
        b"\x00" * 1020 + b"%PDF-1.4",  # the signature does not end within the first 1024 bytes
        b"<svg",
    ],
)
def test_other_bytes_are_no_document(data: bytes) -> None:
    assert sniff_document_format(data) is None


def test_an_image_that_carries_a_pdf_signature_is_the_image() -> None:
    png = encode(Image.new("L", (4, 4), 255), "PNG")
    polyglot = png + b"%PDF-1.7\n"  # a PDF header within the first 1024 bytes, after the PNG
    assert len(polyglot) < PDF_FORMAT.window
    assert contract.sniff_image_format(polyglot) is not None
    assert sniff_document_format(polyglot) is None


def test_the_image_formats_are_unchanged_and_the_names_list_every_format() -> None:
    assert [f.name for f in contract.IMAGE_FORMATS] == ["PNG", "JPEG", "TIFF", "GIF", "BMP", "WebP"]
    assert contract.ACCEPTED_FORMAT_NAMES == "PNG, JPEG, TIFF, GIF, BMP, WebP"
    assert [f.name for f in DOCUMENT_FORMATS] == ["PDF"]
    assert ACCEPTED_DOCUMENT_FORMAT_NAMES == "PDF, PNG, JPEG, TIFF, GIF, BMP, WebP"
