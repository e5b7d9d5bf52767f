"""Decode uploaded bytes into a Pillow image Tesseract can read, without losing detail.

The format is decided from the bytes (Pillow's sniffing restricted to an allowlist), never from a
file name or a client's content type. One page is read: the first, or the one asked for of a
multi-page TIFF or GIF. A PDF (recognised from its bytes too) has one page rendered at a dpi by
`pdf_pages`, within the same limits.

Every upload is bounded in time and memory before a pixel is decoded (`probe`):

- pixels (`max_pixels`) and the estimated bytes decoding and conversion hold at their peak
  (`max_decoded_bytes`; `ImageProbe.decoded_bytes` is the estimate);
- frames or pages, counted only up to `max_frames` + 1 (Pillow's own count of TIFF pages takes
  time quadratic in their number, of GIF frames linear); reaching a GIF frame after the first
  decodes every frame before it, so `page` x frame pixels is bounded too;
- the JPEG's scans (`max_jpeg_scans`), counted once per colour component they cover: libjpeg
  walks every block of those components once per scan;
- the container's structure, where Pillow walks it in Python or keeps all of it in memory:
  PNG chunks, JPEG marker segments and junk before the first scan, GIF blocks and junk before
  the image read, TIFF strips or tiles and tag values of every page up to the one read (Pillow
  parses each on its way), RLE-compressed BMP data (see the `_MAX_*` constants).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

import contract

from . import pdf_pages
from .types import InvalidImageError

#: Pillow format names the engine accepts (the contract's image formats).
ALLOWED_FORMATS = tuple(f.pillow for f in contract.IMAGE_FORMATS)
#: Modes Tesseract takes as they are; everything else is converted to one of these.
_NATIVE_MODES = frozenset({"1", "L", "RGB"})
_MIB = 1024 * 1024

#: Structural limits, far above what any real file needs, each keeping Pillow's Python-level
#: parsing of a ~20 MiB upload under ~0.2 s and a few MiB (the measurements are in the tests).
#: PNG chunks of any kind (libpng writes 8 KiB IDAT chunks: 4096 for 32 MiB).
_MAX_PNG_CHUNKS = 65_536
#: JPEG marker segments before the first scan (ICC profiles take at most 255).
_MAX_JPEG_SEGMENTS = 1024
#: Bytes that are no marker (junk, fill) before a JPEG's first scan or a GIF's first image.
_MAX_JUNK_BYTES = 65_536
#: GIF data sub-blocks walked to count frames (a 40 MP frame needs ~160 000), and before the
#: first image (comments, XMP), where Pillow reads each in Python.
_MAX_GIF_BLOCKS = 1_048_576
_MAX_GIF_HEADER_BLOCKS = 65_536
#: Strips or tiles of a TIFF's first page (an uncompressed 40 MP page in 8 KiB strips: 5 000),
#: and values of any other numeric tag there (a 16-bit colour map has 196 608): Pillow holds
#: each as a Python object.
_MAX_TIFF_STRIPS = 65_536
_MAX_TIFF_VALUES = 262_144
#: Tags of the TIFF pages up to the one read, together (a page has 10-40; Pillow parses each
#: in Python on its way to the page read): what one classic TIFF page may declare.
_MAX_TIFF_TAGS = 65_536
#: Bytes of RLE-compressed BMP data (Pillow decodes RLE in Python: ~0.12 s per MiB).
_MAX_BMP_RLE_BYTES = 4 * _MIB
#: Formats whose frames are pages a request may choose (`page`); the frames of an animated PNG
#: or WebP are no pages, and only the first is read.
_PAGED_FORMATS = frozenset({"TIFF", "GIF"})
#: Pillow reaches GIF frame k by decoding the k - 1 before it (~6 ms a megapixel, measured):
#: `page` x frame pixels may be this many times `max_pixels` (~1 s at the default 40 MP).
_GIF_SEEK_PIXELS_FACTOR = 4
#: Peak bytes a pixel of a GIF frame after the first takes: Pillow composites those frames in
#: RGB(A) over the one before (measured: 12.5 on 16 MP colour frames), then the frame is
#: copied or flattened onto white (13.9 in all).
_GIF_LATER_FRAME_BYTES = 14

#: Default budget of `ImageProbe.decoded_bytes` (OCR_MODEL_MAX_DECODED_BYTES, see settings).
DEFAULT_MAX_DECODED_BYTES = 256 * _MIB


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """What one upload may cost the decoder; anything beyond is refused before decoding."""

    max_pixels: int = 40_000_000
    max_frames: int = 64
    max_jpeg_scans: int = 48
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES


DEFAULT_LIMITS = DecodeLimits()


@dataclass(frozen=True, slots=True)
class ImageProbe:
    """What an upload's headers say, read before any pixel is decoded."""

    format: str
    width: int
    height: int
    #: Pillow mode the page decodes to (a GIF frame after the first: the first frame's mode;
    #: Pillow decides it while seeking).
    mode: str
    #: Frames or pages in the file (at most `max_frames`: more are refused).
    frames: int
    #: Estimated peak bytes of pixel buffers from decoding to the Tesseract-ready image: the
    #: decoded frame, the decoder's own buffers (a multi-scan JPEG's coefficients...) and the
    #: largest copy made on the way (EXIF rotation, mode conversion). Tesseract's own copy and
    #: working memory come on top.
    decoded_bytes: int
    #: Pages a request may choose among: TIFF and GIF frames, PDF pages; 1 for other formats.
    pages: int = 1
    #: The page read, from 1.
    page: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height


def probe(
    data: bytes,
    limits: DecodeLimits = DEFAULT_LIMITS,
    *,
    page: int = 1,
    dpi: int = contract.DEFAULT_DPI,
) -> ImageProbe:
    """Read `data`'s headers and check them against `limits` for reading page `page` (a PDF
    page at `dpi`), decoding no pixel.

    Raises InvalidImageError for empty, unknown, corrupt, oversized or too costly files, and
    for a page the file does not have.
    """
    if is_pdf(data):
        return _pdf_probe(pdf_pages.measure(data, page, dpi, limits))
    image, found = _open(data, limits, page)
    image.close()
    return found


def load(
    data: bytes,
    limits: DecodeLimits = DEFAULT_LIMITS,
    *,
    page: int = 1,
    dpi: int = contract.DEFAULT_DPI,
    deadline: float | None = None,
) -> tuple[Image.Image, ImageProbe]:
    """`probe`, then decode page `page` (the first by default; a PDF page rendered at `dpi`
    in grayscale, stopping at `deadline`, a `time.perf_counter()` value): the loaded image (in
    its own mode, its resolution in `info["dpi"]`) and the probe."""
    if is_pdf(data):
        rendered, size = pdf_pages.render(data, page, dpi, limits, deadline)
        return rendered, _pdf_probe(size)
    image, found = _open(data, limits, page)
    with _as_invalid_image(data):
        if found.page > 1 and found.format == "GIF":
            image.seek(found.page - 1)  # decodes the frames before it (checked in `_open`)
            image.load()
            if image.mode in _NATIVE_MODES:
                # tesserocr hands Tesseract the image re-encoded in its own format, and
                # Leptonica reads no GIF: the frame goes on as a plain image (counted in
                # _GIF_LATER_FRAME_BYTES). Other modes are converted to one anyway.
                frame = image.copy()
                image.close()
                return frame, found
        image.load()
    return image, found


def is_pdf(data: bytes) -> bool:
    """A PDF (`%PDF-` within the first 1024 bytes), and no image: an image's own signature wins
    (a PNG may carry "%PDF-" in a text chunk); the contract's rule, as the gateway applies it."""
    return contract.formats.sniff_document_format(data) is contract.formats.PDF_FORMAT


def _pdf_probe(size: pdf_pages.PdfPageSize) -> ImageProbe:
    return ImageProbe(
        format="PDF",
        width=size.width,
        height=size.height,
        mode="L",
        frames=size.pages,
        decoded_bytes=size.bitmap_bytes,
        pages=size.pages,
        page=size.page,
    )


def decode(data: bytes, max_pixels: int, max_frames: int = 64) -> Image.Image:
    """Return the first frame of `data`, loaded, within the default limits and these two."""
    return load(data, DecodeLimits(max_pixels=max_pixels, max_frames=max_frames))[0]


@contextlib.contextmanager
def _as_invalid_image(data: bytes) -> Iterator[None]:
    """Turn whatever Pillow raises on these bytes into an InvalidImageError for the client."""
    try:
        with warnings.catch_warnings():
            # Pillow's warnings about damaged metadata would go to stderr unformatted: the image
            # either decodes or is refused. A decompression-bomb warning is an error here.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except InvalidImageError:
        raise
    except UnidentifiedImageError:
        raise InvalidImageError(
            f"the file is not an image in a supported format ({contract.ACCEPTED_FORMAT_NAMES})"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImageError("the image has too many pixels") from None
    except Exception as exc:
        # Pillow reports damaged data with many exception types (OSError, SyntaxError,
        # TypeError, struct.error...; fuzzing found several); the detail is not for clients.
        raise InvalidImageError(
            f"the {image_format_name(data)} image is corrupt or truncated"
        ) from exc


@dataclass(slots=True)
class _Structure:
    """What the container walk found that Pillow's header does not say."""

    frames: int | None = None  # counted frames (GIF, TIFF), at most max_frames + 1
    jpeg_scans: int = 0  # SOS segments
    jpeg_component_scans: int = 0  # scans counted once per colour component they cover
    tiff_strip_rows: int | None = None  # rows per strip (or tile height) of a TIFF's page 1
    tiff_tile_width: int | None = None
    late_exif: bool = False  # a PNG eXIf chunk after the pixels: Pillow reads it only on load


def _open(data: bytes, limits: DecodeLimits, page: int = 1) -> tuple[Image.Image, ImageProbe]:
    """Open `data` (headers only; a TIFF at page `page`) and refuse it unless every limit
    holds for reading that page."""
    if not data:
        raise InvalidImageError("the image is empty (0 bytes)")
    with _as_invalid_image(data):
        structure = _walk_container(data, limits, page)
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        later_tiff_page = page > 1 and image.format == "TIFF"
        if not later_tiff_page:  # that page's own size is checked once it is found
            _check_size(image, limits)
        frames = structure.frames
        if frames is None:
            frames = getattr(image, "n_frames", 1)  # PNG and WebP declare it in a header
        if frames > limits.max_frames:
            # Walked containers are counted only up to one frame over the limit.
            held = frames if structure.frames is None else f"more than {limits.max_frames}"
            raise InvalidImageError(
                f"the file holds {held} frames or pages; the limit is {limits.max_frames}"
            )
        pages = frames if image.format in _PAGED_FORMATS else 1
        if page > pages:
            raise InvalidImageError(
                f"page {page} was asked for; the {image_format_name(data)} file has {pages} "
                f"page{'s' if pages > 1 else ''}"
            )
        if later_tiff_page:
            image.seek(page - 1)  # the page's tags only (each page has a size of its own)
            _check_size(image, limits)
        width, height = image.size
        if _is_rle_bmp(image) and len(data) > _MAX_BMP_RLE_BYTES:
            raise InvalidImageError(
                f"the RLE-compressed BMP is over {_MAX_BMP_RLE_BYTES // _MIB} MiB; send it "
                "uncompressed or as PNG"
            )
        decoded_bytes = _estimate_decoded_bytes(image, structure)
        if page > 1 and image.format == "GIF":
            if page * width * height > _GIF_SEEK_PIXELS_FACTOR * limits.max_pixels:
                raise InvalidImageError(
                    f"reading frame {page} of the {width}x{height} GIF decodes the {page - 1} "
                    f"before it: {page * width * height} pixels; the limit is "
                    f"{_GIF_SEEK_PIXELS_FACTOR * limits.max_pixels}"
                )
            decoded_bytes = width * height * _GIF_LATER_FRAME_BYTES
        found = ImageProbe(
            format=image.format or "unknown",
            width=width,
            height=height,
            mode=image.mode,
            frames=frames,
            decoded_bytes=decoded_bytes,
            pages=pages,
            page=page,
        )
    if found.decoded_bytes > limits.max_decoded_bytes:
        raise InvalidImageError(
            f"decoding the {width}x{height} {found.format} image ({found.mode}) would take about "
            f"{math.ceil(found.decoded_bytes / _MIB)} MiB; the limit is "
            f"{limits.max_decoded_bytes // _MIB} MiB"
        )
    return image, found


def _check_size(image: Image.Image, limits: DecodeLimits) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidImageError("the image has no pixels")
    if width * height > limits.max_pixels:
        raise InvalidImageError(
            f"the image is {width}x{height} pixels; the limit is {limits.max_pixels} pixels"
        )


# --- container walks: fast, bounded, and lenient (what they cannot parse, Pillow refuses) ---


def _walk_container(data: bytes, limits: DecodeLimits, page: int = 1) -> _Structure:
    if data.startswith(_PNG_SIGNATURE):
        return _walk_png(data)
    if data.startswith(b"\xff\xd8"):
        return _walk_jpeg(data, limits.max_jpeg_scans)
    if data.startswith((b"GIF87a", b"GIF89a")):
        return _walk_gif(data, limits.max_frames, page)
    if data.startswith((b"II", b"MM")):
        return _walk_tiff(data, limits.max_frames, page)
    return _Structure()


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _walk_png(data: bytes) -> _Structure:
    """Count the chunks and refuse bytes after IEND: a polyglot (PNG + ZIP, ...) is no image."""
    structure = _Structure()
    offset = len(_PNG_SIGNATURE)
    chunks = 0
    pixels_seen = False
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        offset += 12 + length  # length, type, data, CRC
        chunks += 1
        if chunks > _MAX_PNG_CHUNKS:
            raise InvalidImageError(f"the PNG has more than {_MAX_PNG_CHUNKS} chunks")
        if kind == b"IDAT":
            pixels_seen = True
        elif kind == b"eXIf" and pixels_seen:
            structure.late_exif = True
        elif kind == b"IEND":
            if offset < len(data):
                raise InvalidImageError(
                    f"the PNG has {len(data) - offset} bytes of other data after its end"
                )
            break
    # No IEND: Pillow reports the truncation when it decodes.
    return structure


#: A marker: 0xFF, any fill 0xFF bytes, then a code that is neither 0x00 (a stuffed data byte)
#: nor 0xFF.
_JPEG_MARKER = re.compile(rb"\xff+([^\x00\xff])")
#: The end of a scan's entropy-coded data: a marker other than RST0-7.
_JPEG_SCAN_END = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")


def _walk_jpeg(data: bytes, max_scans: int) -> _Structure:
    """Count the scans (each makes libjpeg walk the components it covers again), the segments
    and the junk bytes before the first scan (Pillow parses those byte by byte in Python)."""
    structure = _Structure()
    offset = 2  # after SOI
    segments = junk = 0
    while True:
        marker_at = _JPEG_MARKER.search(data, offset)
        if marker_at is None:
            break  # truncated: libjpeg says so
        if not structure.jpeg_scans:
            junk += marker_at.start(1) - 1 - offset
            segments += 1
            if junk > _MAX_JUNK_BYTES:
                raise InvalidImageError(
                    f"the JPEG has more than {_MAX_JUNK_BYTES} bytes of junk between its segments"
                )
            if segments > _MAX_JPEG_SEGMENTS:
                raise InvalidImageError(
                    f"the JPEG has more than {_MAX_JPEG_SEGMENTS} segments before its image data"
                )
        code = marker_at.group(1)[0]
        offset = marker_at.end()
        if code == 0xD9:  # EOI
            break
        if 0xD0 <= code <= 0xD8 or code == 0x01:  # RSTn, SOI, TEM: no length
            continue
        if offset + 2 > len(data):
            break
        (length,) = struct.unpack_from(">H", data, offset)
        if code == 0xDA:  # SOS
            # A scan costs a walk over each colour component it covers (Ns, after the length).
            components = data[offset + 2] if offset + 2 < len(data) else 1
            structure.jpeg_scans += 1
            structure.jpeg_component_scans += max(components, 1)
            if structure.jpeg_component_scans > max_scans:
                raise InvalidImageError(
                    f"the JPEG has more than {max_scans} scans (progressive passes, one per "
                    f"colour component); the limit is {max_scans}"
                )
        offset += length
        if code == 0xDA:  # its entropy-coded data runs to the next marker but RSTn
            scan_end = _JPEG_SCAN_END.search(data, offset)
            if scan_end is None:
                break
            offset = scan_end.start()
    return structure


_GIF_BLOCK_START = re.compile(rb"[!,;]")


def _walk_gif(data: bytes, max_frames: int, page: int = 1) -> _Structure:
    """Count the frames (images) up to `max_frames` + 1, skipping data in bounded steps.

    Up to the image of the frame read (`page`) Pillow parses extension blocks and skips junk
    in Python: both are bounded tighter there."""
    frames = blocks = parsed = junk = 0
    if len(data) < 13:
        return _Structure()
    offset = 13  # header and logical screen descriptor
    if data[10] & 0x80:
        offset += 3 << ((data[10] & 7) + 1)  # global colour table
    while offset < len(data) and frames <= max_frames:
        introducer = data[offset]
        if introducer == 0x3B:  # trailer
            break
        if introducer == 0x21:  # extension: label, then sub-blocks
            offset += 2
            in_python = frames < page  # image data is decoded in C; extensions read in Python
        elif introducer == 0x2C:  # image descriptor, local colour table, LZW code size
            frames += 1
            in_python = False
            if offset + 10 > len(data):
                break
            flags = data[offset + 9]
            offset += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
        else:
            # Pillow skips bytes it does not understand, one by one in Python.
            following = _GIF_BLOCK_START.search(data, offset)
            if frames < page:
                junk += (following.start() if following else len(data)) - offset
                if junk > _MAX_JUNK_BYTES:
                    raise InvalidImageError(
                        f"the GIF has more than {_MAX_JUNK_BYTES} bytes of junk before its image"
                    )
            if following is None:
                break
            offset = following.start()
            continue
        while offset < len(data):  # data sub-blocks, up to the 0-length terminator
            blocks += 1
            parsed += in_python
            if blocks > _MAX_GIF_BLOCKS or parsed > _MAX_GIF_HEADER_BLOCKS:
                raise InvalidImageError("the GIF has too many data blocks")
            size = data[offset]
            offset += 1 + size
            if size == 0:
                break
    return _Structure(frames=max(frames, 1))


# TIFF tags the walk reads.
_ROWS_PER_STRIP, _STRIP_OFFSETS, _TILE_WIDTH, _TILE_LENGTH, _TILE_OFFSETS = 278, 273, 322, 323, 324


def _walk_tiff(data: bytes, max_frames: int, page: int = 1) -> _Structure:
    """Count the pages (IFDs) up to `max_frames` + 1 and check the tags of every page up to
    `page`, the one read (Pillow parses the tags of each page on its way there)."""
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        big = False
    elif data[:4] in (b"II+\x00", b"MM\x00+"):
        big = True
    else:
        return _Structure()
    order = "<" if data[:2] == b"II" else ">"
    offset_format, count_format, entry_size = ("Q", "Q", 20) if big else ("I", "H", 12)
    count_size = struct.calcsize(count_format)
    structure = _Structure()
    frames = tags = 0
    seen: set[int] = set()
    try:
        (ifd,) = struct.unpack_from(order + offset_format, data, 8 if big else 4)
        while ifd and ifd not in seen and frames <= max_frames:
            seen.add(ifd)
            (entries,) = struct.unpack_from(order + count_format, data, ifd)
            if frames < page:
                tags += entries
                if tags > _MAX_TIFF_TAGS:
                    raise InvalidImageError(
                        f"the TIFF's pages up to page {page} hold more than {_MAX_TIFF_TAGS} tags"
                    )
                selected = structure if frames == page - 1 else None
                _read_page(data, order, ifd + count_size, entries, big, frames + 1, selected)
            frames += 1
            (ifd,) = struct.unpack_from(
                order + offset_format, data, ifd + count_size + entries * entry_size
            )
    except struct.error:
        pass  # an IFD runs past the end: Pillow decides whether the page is readable
    structure.frames = max(frames, 1)
    return structure


#: TIFF field types whose values Pillow reads as bytes or text rather than numbers.
_TIFF_BYTE_TYPES = frozenset({1, 2, 6, 7})


def _read_page(
    data: bytes,
    order: str,
    start: int,
    entries: int,
    big: bool,
    number: int,
    structure: _Structure | None,
) -> None:
    """Refuse too many strips or tiles (Pillow keeps a Python object per strip and reads
    uncompressed ones one by one) or numeric values on page `number`; note the strip and tile
    size in `structure` (the page read; None for a page on the way to it)."""
    entry_size, count_format = (20, "Q") if big else (12, "I")
    for index in range(entries):
        at = start + index * entry_size
        tag, kind = struct.unpack_from(order + "HH", data, at)
        (count,) = struct.unpack_from(order + count_format, data, at + 4)
        if tag in (_STRIP_OFFSETS, _TILE_OFFSETS) and count > _MAX_TIFF_STRIPS:
            which = "the TIFF's first page" if number == 1 else f"page {number} of the TIFF"
            raise InvalidImageError(
                f"{which} has {count} strips or tiles; the limit is {_MAX_TIFF_STRIPS}"
            )
        if kind not in _TIFF_BYTE_TYPES and count > _MAX_TIFF_VALUES:
            raise InvalidImageError(
                f"the TIFF's tag {tag} holds {count} values; the limit is {_MAX_TIFF_VALUES}"
            )
        wanted = (_ROWS_PER_STRIP, _TILE_WIDTH, _TILE_LENGTH)
        if structure is None or tag not in wanted or count != 1:
            continue
        value_at = at + (12 if big else 8)
        if kind == 3:  # SHORT
            (value,) = struct.unpack_from(order + "H", data, value_at)
        elif kind == 4:  # LONG
            (value,) = struct.unpack_from(order + "I", data, value_at)
        else:
            continue
        if tag == _TILE_WIDTH:
            structure.tiff_tile_width = value
        else:  # rows per strip, tile length
            structure.tiff_strip_rows = value


# --- the estimate of decoded bytes ---


def _pixel_bytes(mode: str) -> int:
    """Bytes Pillow stores per pixel of `mode` ("1" takes a whole byte; RGB is padded to 4)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _estimate_decoded_bytes(image: Image.Image, structure: _Structure) -> int:
    """Peak bytes from decoding to the Tesseract-ready image (`ImageProbe.decoded_bytes`).

    The decoded frame is held throughout; at most one of these comes on top at a time: the
    decoder's own buffers, the EXIF rotation's copy, the mode conversion's copies.
    """
    width, height = image.size
    pixels = width * height
    frame = pixels * _pixel_bytes(image.mode)
    return frame + max(
        _decoder_bytes(image, structure, frame),
        frame if _may_rotate(image, structure) else 0,
        _conversion_bytes(image, pixels),
    )


def _decoder_bytes(image: Image.Image, structure: _Structure, frame: int) -> int:
    width, height = image.size
    if image.format == "JPEG" and (structure.jpeg_scans > 1 or image.info.get("progressive")):
        # libjpeg keeps every DCT coefficient (2 bytes each, 64 per 8x8 block) between scans.
        layers: list[tuple[int, int, int, int]] = getattr(image, "layer", [])
        h_max = max((layer[1] for layer in layers), default=1) or 1
        v_max = max((layer[2] for layer in layers), default=1) or 1
        return sum(
            math.ceil(width * layer[1] / h_max / 8) * math.ceil(height * layer[2] / v_max / 8) * 128
            for layer in layers
        )
    if image.format == "WEBP":
        # libwebp's canvas, the bytes Pillow copies out of it and the stream it reads them from
        # (4 bytes a pixel each, measured).
        return width * height * 12
    if _is_rle_bmp(image):
        return frame  # Pillow's Python RLE decoder builds the whole frame, then copies it
    if image.format == "TIFF" and image.info.get("compression") != "raw":
        # libtiff decodes a strip (or tile) at a time into a buffer of its own.
        rows = min(structure.tiff_strip_rows or height, height)
        columns = min(structure.tiff_tile_width or width, width)
        return rows * columns * _pixel_bytes(image.mode)
    return 0


def _is_rle_bmp(image: Image.Image) -> bool:
    return image.format == "BMP" and image.info.get("compression") in (1, 2)  # RLE8, RLE4


def _may_rotate(image: Image.Image, structure: _Structure) -> bool:
    """Whether `prepare` will transpose the frame for its EXIF orientation (a copy)."""
    if structure.late_exif:
        return True
    try:
        return _orientation(image) in range(2, 9)
    except Exception:
        return False  # damaged EXIF: `prepare` reads the pixels as stored


_ORIENTATION = 0x0112
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(?:="|>)([0-9])')


def _orientation(image: Image.Image) -> int:
    """The EXIF (or XMP) orientation as `Image.getexif` finds it, from what `Image.open` read:
    never decoding pixels, as `PngImageFile.getexif` does to find a late eXIf chunk."""
    tags: Any = getattr(image, "tag_v2", None)  # a TIFF page's own tags
    if tags is not None and _ORIENTATION in tags:
        return int(tags[_ORIENTATION])
    raw = image.info.get("exif")
    if raw is None and "Raw profile type exif" in image.info:
        raw = bytes.fromhex("".join(str(image.info["Raw profile type exif"]).split("\n")[3:]))
    if isinstance(raw, bytes):
        exif = Image.Exif()
        exif.load(raw)
        if _ORIENTATION in exif:
            return int(exif[_ORIENTATION])
    xmp = image.info.get("XML:com.adobe.xmp") or image.info.get("xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode()
    if isinstance(xmp, bytes) and (match := _XMP_ORIENTATION.search(xmp)):
        return int(match[1])
    return 1


def _conversion_bytes(image: Image.Image, pixels: int) -> int:
    """Bytes `to_tesseract_mode` allocates on top of its input (see there)."""
    mode = image.mode
    if mode in _NATIVE_MODES:
        return 0
    if mode == "P":
        return pixels if _palette_is_gray(image) else pixels * 4
    if mode in ("LA", "La"):
        return pixels * 2  # the luminance, the white page
    if mode == "RGBA":
        return pixels * 4  # the white page
    if mode in ("PA", "RGBa"):
        return pixels * 8  # RGBA, then the white page
    if mode.startswith("I") or mode == "F":
        return pixels
    return pixels * 4


def _palette_is_gray(image: Image.Image) -> bool:
    """Whether every entry of `image`'s palette is a gray (read from headers; unknown: no)."""
    palette = image.palette
    if palette is None or palette.mode != "RGB" or palette.rawmode not in (None, "RGB"):
        return False
    entries = palette.palette  # bytes as read from a header, a list once Pillow synced it
    if not isinstance(entries, bytes | bytearray | list):
        return False
    return entries[0::3] == entries[1::3] == entries[2::3]


# --- preparation for Tesseract ---


def prepare(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, then convert to a mode Tesseract reads.

    Takes ownership of `image`: it may be rotated in place and its palette changed. Only one
    copy of the pixels is made at a time (see `_conversion_bytes`).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # In place: exif_transpose would otherwise copy every image, rotated or not. Damaged
        # EXIF: the pixels are read as stored.
        with contextlib.suppress(Exception):
            ImageOps.exif_transpose(image, in_place=True)
        try:
            return to_tesseract_mode(image)
        except Exception as exc:
            raise InvalidImageError("the image's pixel format cannot be converted") from exc


def to_tesseract_mode(image: Image.Image) -> Image.Image:
    """Convert to a mode Tesseract reads, flattening transparency onto white as Leptonica does.

    A palette image becomes L when its colours are grays, RGB otherwise, its transparent
    entries flattened in the palette (no RGBA copy); an image with an alpha band is pasted
    onto a white page through its alpha (one copy). Changes `image`'s palette.
    """
    if image.mode in _NATIVE_MODES:
        return image
    if image.mode == "P":
        _flatten_palette(image)
        return image.convert("L" if _palette_is_gray(image) else "RGB")
    if image.mode in ("PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode in ("LA", "La"):
        page = Image.new("L", image.size, 255)
        page.paste(image.convert("L"), mask=image)
        return page
    if image.mode == "RGBA":
        page = Image.new("RGB", image.size, (255, 255, 255))
        page.paste(image, mask=image)  # RGBA onto RGB: Pillow blends without a converted copy
        return page
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return image.convert("L")
    return image.convert("RGB")


def _flatten_palette(image: Image.Image) -> None:
    """Composite each transparent palette entry onto white, in the palette itself."""
    transparency = image.info.pop("transparency", None)
    palette = image.getpalette("RGB") or []
    entries = len(palette) // 3
    if isinstance(transparency, int):
        alphas = [255] * entries
        if 0 <= transparency < entries:
            alphas[transparency] = 0
    elif isinstance(transparency, bytes):
        alphas = [*transparency[:entries], *([255] * max(0, entries - len(transparency)))]
    else:
        return
    image.putpalette(
        [
            (value * alphas[index // 3] + 255 * (255 - alphas[index // 3]) + 127) // 255
            for index, value in enumerate(palette)
        ],
        "RGB",
    )


def image_format_name(data: bytes) -> str:
    """A short human name of the container format from the magic bytes, for messages."""
    signatures = (
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"\xff\xd8\xff", "JPEG"),
        (b"II*\x00", "TIFF"),
        (b"MM\x00*", "TIFF"),
        (b"GIF87a", "GIF"),
        (b"GIF89a", "GIF"),
        (b"BM", "BMP"),
    )
    for magic, name in signatures:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return "uploaded"
