"""The image and document formats the platform reads, recognised from their bytes, never names."""

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


@dataclass(frozen=True, slots=True)
class DocumentFormat:
    """A multi-page format the gateway splits into pages: display name, media type, signature.

    Unlike an image's magic prefix, the signature may follow some bytes of junk: PDF readers
    look for ``%PDF-`` anywhere in the first 1024 bytes.
    """

    name: str
    media_type: str
    signature: bytes
    #: The signature must lie wholly within this many first bytes.
    window: int

    def matches(self, data: bytes) -> bool:
        """Whether `data` carries this format's signature within its first `window` bytes."""
        return self.signature in data[: self.window]


PDF_FORMAT: Final = DocumentFormat("PDF", "application/pdf", b"%PDF-", 1024)
DOCUMENT_FORMATS: Final[tuple[DocumentFormat, ...]] = (PDF_FORMAT,)
#: Every format an upload may be once documents are read: "PDF, PNG, JPEG, TIFF, GIF, BMP, WebP".
#: `ACCEPTED_FORMAT_NAMES` stays the image formats: what a single-image call accepts.
ACCEPTED_DOCUMENT_FORMAT_NAMES: Final = ", ".join(
    [*(f.name for f in DOCUMENT_FORMATS), *(f.name for f in IMAGE_FORMATS)]
)


def sniff_document_format(data: bytes) -> DocumentFormat | None:
    """The document format `data` is, or None; a file that starts like an image is that image.

    An image's magic bytes at offset 0 are definite, while a document signature may follow
    junk: a PNG that carries ``%PDF-`` in an early chunk is a PNG, as the model decodes it.
    """
    if sniff_image_format(data) is not None:
        return None
    for document_format in DOCUMENT_FORMATS:
        if document_format.matches(data):
            return document_format
    return None
