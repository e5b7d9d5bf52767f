"""Render test images with known text (Pillow + DejaVu from Debian's fonts-dejavu-core)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
#: Tesseract's own test pages with ground truth (tests/data/tesseract/README.md: origin, licence).
TESTDATA = Path(__file__).resolve().parents[1] / "data" / "tesseract"


def render_line(text: str, size: tuple[int, int] = (800, 80), font_px: int = 40) -> Image.Image:
    """One line of black text on white, as a grayscale image."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    draw.text(
        (10, (size[1] - font_px) // 2), text, font=ImageFont.truetype(str(FONT), font_px), fill=0
    )
    return image


def render_lines(lines: list[str], width: int = 1200, font_px: int = 36) -> Image.Image:
    """Several lines of text, one under the other."""
    line_h = int(font_px * 1.8)
    image = Image.new("L", (width, line_h * len(lines) + 40), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), font_px)
    for i, line in enumerate(lines):
        draw.text((20, 20 + i * line_h), line, font=font, fill=0)
    return image


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    """Encode an image in memory."""
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def line_png(text: str) -> bytes:
    """A PNG of one rendered line."""
    return encode(render_line(text))
