"""Image formats are recognised from their bytes."""

import pytest

from gateway.media import sniff_image_type
from tests.unit.gateway.fakes import png_bytes

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("data", "mime_type"),
    [
        (png_bytes(), "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"II*\x00\x08\x00\x00\x00", "image/tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "image/tiff"),
        (b"GIF87a\x01\x00", "image/gif"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"BM6\x00\x00\x00", "image/bmp"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    ],
)
def test_accepted_formats(data: bytes, mime_type: str) -> None:
    assert sniff_image_type(data) == mime_type


@pytest.mark.parametrize(
    "data",
    [b"hello, I am text", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"RIFF", b"\x89PN", b""],
)
def test_other_bytes_are_refused(data: bytes) -> None:
    assert sniff_image_type(data) is None
