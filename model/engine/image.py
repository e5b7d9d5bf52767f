"""Decode uploaded bytes into a Pillow image Tesseract can read, without losing detail.

The format is decided from the bytes (Pillow's sniffing restricted to an allowlist), never from a
file name or a client's content type. Only the first frame of multi-frame files is used.
"""

from __future__ import annotations

import io
import struct
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

import contract

from .types import InvalidImageError

#: Pillow format names the engine accepts (the contract's image formats).
ALLOWED_FORMATS = tuple(f.pillow for f in contract.IMAGE_FORMATS)
#: Modes Tesseract takes as they are; everything else is converted to one of these.
_NATIVE_MODES = frozenset({"1", "L", "RGB"})


def decode(data: bytes, max_pixels: int, max_frames: int = 64) -> Image.Image:
    """Return the first frame of `data`, loaded (pixels decoded), in its own mode.

    Raises InvalidImageError for empty, unknown, corrupt or oversized images, for files with
    more than `max_frames` frames or pages, and for PNGs with data after their end.
    """
    if not data:
        raise InvalidImageError("the image is empty (0 bytes)")
    if data.startswith(_PNG_SIGNATURE):
        _check_png_ends_at_iend(data)
    try:
        with warnings.catch_warnings():
            # Pillow's warnings about damaged metadata would go to stderr unformatted: the image
            # either decodes or is refused. A decompression-bomb warning is an error here.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            width, height = image.size
            if width <= 0 or height <= 0:
                raise InvalidImageError("the image has no pixels")
            if width * height > max_pixels:
                raise InvalidImageError(
                    f"the image is {width}x{height} pixels; the limit is {max_pixels} pixels"
                )
            frames = getattr(image, "n_frames", 1)
            if frames > max_frames:
                raise InvalidImageError(
                    f"the file holds {frames} frames or pages; the limit is {max_frames}"
                )
            image.seek(0)
            image.load()
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
    return image


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png_ends_at_iend(data: bytes) -> None:
    """Refuse bytes after a PNG's IEND chunk: a polyglot (PNG + ZIP, ...) is not an image."""
    offset = len(_PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        offset += 12 + length  # length, type, data, CRC
        if kind == b"IEND":
            if offset < len(data):
                raise InvalidImageError(
                    f"the PNG has {len(data) - offset} bytes of other data after its end"
                )
            return
    # No IEND: Pillow reports the truncation when it decodes.


def prepare(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, then convert to a mode Tesseract reads."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            upright = ImageOps.exif_transpose(image)
        except Exception:
            upright = image  # damaged EXIF: read the pixels as stored
        try:
            return to_tesseract_mode(upright)
        except Exception as exc:
            raise InvalidImageError("the image's pixel format cannot be converted") from exc


def to_tesseract_mode(image: Image.Image) -> Image.Image:
    """Convert to a mode Tesseract reads, flattening transparency onto white as Leptonica does."""
    if image.mode in _NATIVE_MODES:
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return image.convert("L")
    return image.convert("RGB")


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
