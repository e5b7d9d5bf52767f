"""Recognise the accepted formats (PDF and images) from their first bytes, never from headers.

The formats themselves are part of the wire contract (:mod:`contract.formats`).
"""

from typing import Final

from contract.formats import (
    ACCEPTED_DOCUMENT_FORMAT_NAMES,
    sniff_document_format,
    sniff_image_format,
)

#: "PDF, PNG, JPEG, TIFF, GIF, BMP, WebP".
ACCEPTED_FORMATS: Final = ACCEPTED_DOCUMENT_FORMAT_NAMES


def sniff_image_type(data: bytes) -> str | None:
    """The media type of ``data`` if it starts like an accepted format, else None."""
    image_format = sniff_image_format(data)
    if image_format is not None:
        return image_format.media_type
    document_format = sniff_document_format(data)
    return None if document_format is None else document_format.media_type
