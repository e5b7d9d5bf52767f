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


#: Words the rendered pages are made of (common English: Tesseract's dictionary knows them).
PAGE_WORDS = tuple(
    " ".join(
        (
            "the quick brown fox jumps over lazy dog invoice total amount paid transfer reference",
            "customer account order number delivery address payment terms within thirty days",
            "please contact our office if you have any questions regarding this statement",
        )
    ).split()
)


def page_paragraphs(
    paragraphs: int = 4, lines: int = 5, words: int = 9, seed: int = 1
) -> list[list[str]]:
    """Deterministic paragraphs of lines of `PAGE_WORDS`, each line starting with a capital."""
    import random

    rng = random.Random(seed)  # noqa: S311  # test data, not security
    return [
        [" ".join(rng.choice(PAGE_WORDS) for _ in range(words)).capitalize() for _ in range(lines)]
        for _ in range(paragraphs)
    ]


def render_page(
    paragraphs: list[list[str]] | None = None,
    size: tuple[int, int] = (1240, 1754),
    font_px: int = 24,
) -> tuple[Image.Image, str]:
    """A grayscale page (A4 at 150 dpi by default) of paragraphs set apart by a blank line,
    and its text (paragraphs joined by spaces: compare with `text.cer`, which ignores layout)."""
    paragraphs = paragraphs or page_paragraphs()
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), font_px)
    top, line_h = size[1] // 12, int(font_px * 1.5)
    for paragraph in paragraphs:
        for line in paragraph:
            draw.text((size[0] // 12, top), line, font=font, fill=0)
            top += line_h
        top += line_h
    return image, " ".join(" ".join(paragraph) for paragraph in paragraphs)
