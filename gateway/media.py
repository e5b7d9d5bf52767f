"""Recognise the accepted image formats from their first bytes, never from client headers."""

from typing import Final

# (magic prefix, MIME type); the first match wins.
_SIGNATURES: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)

ACCEPTED_FORMATS: Final = "PNG, JPEG, TIFF, GIF, BMP, WebP"


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type of ``data`` if it starts like an accepted image format, else None."""
    for magic, mime_type in _SIGNATURES:
        if data.startswith(magic):
            return mime_type
    # WebP is a RIFF container: "RIFF", a 4-byte size, then "WEBP".
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return None
