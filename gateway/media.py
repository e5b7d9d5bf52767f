"""Recognise the accepted image formats from their first bytes, never from client headers.

The formats themselves are part of the wire contract (:mod:`contract.formats`).
"""

from typing import Final

from contract import ACCEPTED_FORMAT_NAMES, sniff_image_format

ACCEPTED_FORMATS: Final = ACCEPTED_FORMAT_NAMES


def sniff_image_type(data: bytes) -> str | None:
    """The media type of ``data`` if it starts like an accepted image format, else None."""
    image_format = sniff_image_format(data)
    return None if image_format is None else image_format.media_type
