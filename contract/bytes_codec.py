"""Raw BYTES tensor contents: each element is its length (uint32, little-endian), then its bytes.

This is how `raw_input_contents` and `raw_output_contents` carry BYTES tensors in the v2 gRPC
protocol (KServe and Triton agree).
"""

from __future__ import annotations

import struct
from typing import Final

_LENGTH_PREFIX: Final = struct.Struct("<I")


class MalformedBytesError(ValueError):
    """Raw BYTES contents whose length prefixes do not add up."""


def encode_bytes_element(element: bytes) -> bytes:
    """One BYTES tensor element in raw form: its length, then the bytes."""
    return _LENGTH_PREFIX.pack(len(element)) + element


def decode_bytes_elements(raw: bytes) -> list[bytes]:
    """Split raw BYTES contents into elements; MalformedBytesError on a truncated buffer."""
    elements: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + _LENGTH_PREFIX.size > len(raw):
            raise MalformedBytesError(f"truncated length prefix at byte {offset}")
        (length,) = _LENGTH_PREFIX.unpack_from(raw, offset)
        offset += _LENGTH_PREFIX.size
        if offset + length > len(raw):
            raise MalformedBytesError(
                f"element of {length} bytes overruns the {len(raw)}-byte buffer"
            )
        elements.append(raw[offset : offset + length])
        offset += length
    return elements
