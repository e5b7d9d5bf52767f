"""The image formats the platform reads, recognised from their first bytes, never from names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ImageFormat:
    """An accepted format: its display name, media type, Pillow format and magic prefixes."""

    name: str
    media_type: str
    pillow: str
    signatures: tuple[bytes, ...]

    def matches(self, data: bytes) -> bool:
        """Whether `data` starts like this format."""
        if self.pillow == "WEBP":
            # A RIFF container: "RIFF", a 4-byte size, then "WEBP".
            return len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP"
        return data.startswith(self.signatures)


IMAGE_FORMATS: Final[tuple[ImageFormat, ...]] = (
    ImageFormat("PNG", "image/png", "PNG", (b"\x89PNG\r\n\x1a\n",)),
    ImageFormat("JPEG", "image/jpeg", "JPEG", (b"\xff\xd8\xff",)),
    ImageFormat("TIFF", "image/tiff", "TIFF", (b"II*\x00", b"MM\x00*")),
    ImageFormat("GIF", "image/gif", "GIF", (b"GIF87a", b"GIF89a")),
    ImageFormat("BMP", "image/bmp", "BMP", (b"BM",)),
    ImageFormat("WebP", "image/webp", "WEBP", (b"RIFF",)),
)
#: The accepted formats for messages: "PNG, JPEG, TIFF, GIF, BMP, WebP".
ACCEPTED_FORMAT_NAMES: Final = ", ".join(f.name for f in IMAGE_FORMATS)


def sniff_image_format(data: bytes) -> ImageFormat | None:
    """The accepted format `data` starts like, or None."""
    for image_format in IMAGE_FORMATS:
        if image_format.matches(data):
            return image_format
    return None
