"""Hostile and broken files for the bad-input matrix, generated in memory (no downloads)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from functools import cache

from PIL import Image

from tests.support.images import encode, line_png


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int, bit_depth: int = 1) -> bytes:
    """A tiny PNG that declares `width` x `height` pixels: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


@cache
def tiff_pages(pages: int) -> bytes:
    """A multi-page TIFF of tiny white pages."""
    images = [Image.new("L", (8, 8), 255) for _ in range(pages)]
    return encode(images[0], "TIFF", save_all=True, append_images=images[1:])


@cache
def gif_frames(frames: int) -> bytes:
    """An animated GIF whose frames alternate, so none is merged away."""
    images = [Image.new("L", (2, 2), (i % 2) * 255) for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=10)


@cache
def png_zip_polyglot() -> bytes:
    """A real PNG with a ZIP archive appended: both a valid image and a valid archive."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("payload.txt", "not for OCR")
    return line_png("polyglot") + archive.getvalue()


@cache
def truncated_jpeg() -> bytes:
    jpeg = encode(Image.new("RGB", (400, 200), "white"), "JPEG", quality=90)
    return jpeg[: len(jpeg) // 2]


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
PSD = b"8BPS\x00\x01" + b"\x00" * 64
FITS = b"SIMPLE  =                    T" + b" " * 50
