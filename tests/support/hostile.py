"""Hostile images, generated at test time: small files that cost a decoder or Tesseract much time
or memory. Each reproduces one finding of the hardening review (see the engine's image module).
"""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from tests.support.images import FONT, encode


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@cache
def palette_png_with_transparency(side: int = 6324) -> bytes:
    """A ~5 KB 1-bit palette PNG of `side` x `side` pixels whose palette has a transparent entry.

    Decoded it is one byte per pixel (40 MB at 6324²); converted through RGBA, as a naive
    flattening does, it costs several times that.
    """
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 3, 0, 0, 0)  # 1-bit, palette, no interlace
    palette = bytes((255, 255, 255, 0, 0, 0))  # entry 0 white, entry 1 black
    transparency = b"\x00"  # entry 0 fully transparent
    row = b"\x00" + b"\x00" * ((side + 7) // 8)  # filter "none", every pixel entry 0
    idat = zlib.compress(row * side, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"PLTE", palette)
        + _png_chunk(b"tRNS", transparency)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each marker segment of a JPEG Pillow wrote, a scan's data included."""
    segments: list[tuple[int, int]] = []
    offset = 2  # after SOI
    while offset < len(data):
        marker = data[offset + 1]
        if marker == 0xD9:  # EOI
            segments.append((offset, offset + 2))
            break
        (length,) = struct.unpack_from(">H", data, offset + 2)
        end = offset + 2 + length
        if marker == 0xDA:  # SOS: entropy-coded data runs to the next marker that is not RSTn
            while not (data[end] == 0xFF and data[end + 1] not in (0x00, *range(0xD0, 0xD8))):
                end += 1
        segments.append((offset, end))
        offset = end
    return segments


@cache
def progressive_jpeg_repeated_scans(
    size: tuple[int, int] = (6000, 6000), repeats: int = 2500, mode: str = "L", scan: int = -1
) -> bytes:
    """A progressive JPEG of a blank page whose scan number `scan` (the last by default: a
    refinement scan, a few bytes) is repeated `repeats` times in a row. Each repeat makes libjpeg
    walk every block of the components the scan covers once more, so a few hundred KB keep a
    decoder busy for tens of seconds at 36 MP. In colour (`mode` "RGB", no subsampling) scan 0
    covers all three components."""
    jpeg = encode(
        Image.new(mode, size, "white"), "JPEG", progressive=True, quality=90, subsampling=0
    )
    scans = [s for s in _jpeg_segments(jpeg) if jpeg[s[0] + 1] == 0xDA]
    start, end = scans[scan]
    return jpeg[:end] + jpeg[start:end] * (repeats - 1) + jpeg[end:]


@cache
def tiff_many_pages(pages: int = 150_000) -> bytes:
    """A little-endian TIFF of `pages` 1x1 white pages, ~100 bytes each, all sharing one strip.

    Counting its pages with Pillow (`n_frames`) takes time quadratic in `pages`."""
    entries = (
        (256, 3, 1, 1),  # ImageWidth
        (257, 3, 1, 1),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 8),  # StripOffsets: the byte at offset 8
        (278, 3, 1, 1),  # RowsPerStrip
        (279, 4, 1, 1),  # StripByteCounts
    )
    ifd_size = 2 + 12 * len(entries) + 4
    first_ifd = 12  # header (8) + the strip (1) + padding to a word boundary
    out = bytearray(b"II*\x00" + struct.pack("<I", first_ifd) + b"\xff\x00\x00\x00")
    for page in range(pages):
        out += struct.pack("<H", len(entries))
        for tag, kind, count, value in entries:
            short = struct.pack("<H", value) + b"\x00\x00"
            packed = short if kind == 3 else struct.pack("<I", value)
            out += struct.pack("<HHI", tag, kind, count) + packed
        following = first_ifd + (page + 1) * ifd_size if page + 1 < pages else 0
        out += struct.pack("<I", following)
    return bytes(out)


@cache
def gif_many_frames(frames: int = 500_000) -> bytes:
    """A GIF of `frames` 1x1 frames, ~15 bytes each (counting them walks every one)."""
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"," + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return header + frame * frames + b";"


def dense_page(size: tuple[int, int] = (6000, 6000), font_px: int = 22) -> Image.Image:
    """A page of `size` filled edge to edge with small text lines (grayscale): the worst case of
    Tesseract's layout analysis per pixel among ordinary documents."""
    tile = Image.new("L", (1500, 1500), 255)
    draw = ImageDraw.Draw(tile)
    font = ImageFont.truetype(str(FONT), font_px)
    line = "Invoice 2024-117 total 42.50 paid by transfer, ref QX-7781 "
    step = int(font_px * 1.5)
    for i, y in enumerate(range(10, tile.height - step, step)):
        draw.text((10, y), (line * 4)[i % 17 :], font=font, fill=0)
    page = Image.new("L", size, 255)
    for x in range(0, size[0], tile.width):
        for y in range(0, size[1], tile.height):
            page.paste(tile, (x, y))
    return page


@cache
def dense_page_png(size: tuple[int, int] = (6000, 6000)) -> bytes:
    """`dense_page` as a PNG (fast compression: the point is the pixels, not the bytes)."""
    buf = io.BytesIO()
    dense_page(size).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


# Containers whose structure Pillow walks in Python (or keeps whole in memory): ~20 MiB each,
# just under the gateway's upload limit. Before the engine checked them, each took 1-9 s and
# up to 1 GiB to open.


@cache
def png_chunk_flood(chunks: int = 1_600_000) -> bytes:
    """A tiny PNG with `chunks` empty private chunks before its pixels."""
    png = encode(Image.new("L", (8, 8), 255))
    idat = png.index(b"IDAT") - 4
    return png[:idat] + _png_chunk(b"prVt", b"") * chunks + png[idat:]


@cache
def jpeg_segment_flood(segments: int = 4_000_000) -> bytes:
    """A tiny JPEG with `segments` one-byte APP5 segments before its frame header."""
    jpeg = encode(Image.new("L", (8, 8), 255), "JPEG")
    return jpeg[:2] + b"\xff\xe5\x00\x03x" * segments + jpeg[2:]


@cache
def gif_junk(junk: int = 19_000_000) -> bytes:
    """A tiny GIF with `junk` zero bytes before its image (Pillow skips them one by one)."""
    gif = encode(Image.new("L", (2, 2), 255), "GIF")
    image = gif.index(b",")
    return gif[:image] + b"\x00" * junk + gif[image:]


@cache
def tiff_strip_flood(strips: int = 3_000_000) -> bytes:
    """An uncompressed 1 x `strips` TIFF, one row per strip, every strip the same byte."""
    entries = (
        (256, 3, 1, 1),  # ImageWidth
        (257, 4, 1, strips),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, strips, -1),  # StripOffsets: an array, after the IFD
        (278, 3, 1, 1),  # RowsPerStrip
        (279, 3, strips, -2),  # StripByteCounts: an array, after the offsets
    )
    ifd = 8
    offsets = ifd + 2 + 12 * len(entries) + 4
    counts = offsets + 4 * strips
    strip = counts + 2 * strips
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd) + struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        if value < 0:
            packed = struct.pack("<I", offsets if value == -1 else counts)
        elif kind == 3:
            packed = struct.pack("<H", value) + b"\x00\x00"
        else:
            packed = struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + packed
    out += b"\x00\x00\x00\x00"  # no next IFD
    out += struct.pack("<I", strip) * strips + struct.pack("<H", 1) * strips + b"\xff"
    return bytes(out)


@cache
def bmp_rle8(size: tuple[int, int] = (6000, 2000)) -> bytes:
    """An RLE8 BMP of 1-pixel runs (Pillow's RLE decoder is Python: ~0.12 s per MiB)."""
    width, height = size
    row = bytes((1, 0, 1, 255)) * (width // 2) + b"\x00\x00"  # runs, then end of line
    pixels = row * height + b"\x00\x01"  # end of bitmap
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    header = struct.pack(
        "<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0
    )
    offset = 14 + len(header) + len(palette)
    return (
        b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + palette + pixels
    )


def stripes_page(size: tuple[int, int]) -> Image.Image:
    """Diagonal 3-pixel stripes: no text, yet Tesseract's layout analysis (which cannot be
    stopped) takes ~1.5 s per megapixel on it, 15 times a dense text page. The layout estimate
    is calibrated on documents and does not see this (see `TesserocrBackend`)."""
    width, height = size
    period = Image.new("L", (6, 1), 255)
    period.paste(0, (0, 0, 3, 1))
    page = Image.new("L", size, 255)
    row = Image.new("L", (width + 6, 1), 255)
    for x in range(0, width + 6, 6):
        row.paste(period, (x, 0))
    for y in range(height):
        page.paste(row.crop((y % 6, 0, y % 6 + width, 1)), (0, y))
    return page
