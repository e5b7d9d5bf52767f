"""The benchmark's images, generated here with Pillow and Debian's DejaVu font (no downloads).

Each workload is one encoded image sent again and again: a single text line, a full page of
text, and a photo-like JPEG scan (uneven grey background, slight tilt, blur and noise); any of
them can be skewed, as a page fed askew (the deskew benchmark). For documents: scanned text pages
and one-line pages that know their own text, and PDFs made of them (`python -m bench.documents`).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
#: Ordinary English words; pages are made of them in a fixed pseudo-random order.
_VOCABULARY = (
    "the quick brown fox jumps over a lazy dog while seven wizards box and judge quartz "
    "invoice total amount due payment received order number customer account balance "
    "shipping address delivery date reference please contact our office for details"
)
_WORDS = tuple(_VOCABULARY.split())


@dataclass(frozen=True)
class Workload:
    """One encoded image and how to upload it."""

    name: str
    description: str
    data: bytes
    filename: str
    content_type: str
    width: int
    height: int


def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT), px)


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _sentence(rnd: random.Random, words: int) -> str:
    return " ".join(rnd.choice(_WORDS) for _ in range(words))


def one_line() -> Workload:
    """800x80 greyscale PNG with one line of black text."""
    size = (800, 80)
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).text(
        (12, 18), "Invoice 4711: the quick brown fox", font=_font(40), fill=0
    )
    return Workload(
        "line", "one text line, 800x80 PNG", _encode(image, "PNG"), "line.png", "image/png", *size
    )


def full_page() -> Workload:
    """1700x2200 greyscale PNG (a letter page at 200 dpi) filled with lines of text."""
    size = (1700, 2200)
    rnd = random.Random(6)  # noqa: S311  # reproducible text, not a secret
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = _font(28)
    for y in range(150, size[1] - 150, 46):
        draw.text((150, y), _sentence(rnd, 10), font=font, fill=0)
    return Workload(
        "page",
        "full text page, 1700x2200 PNG",
        _encode(image, "PNG", optimize=True),
        "page.png",
        "image/png",
        *size,
    )


def skewed(workload: Workload, degrees: float = 7.0) -> Workload:
    """`workload`'s image turned `degrees` counter-clockwise and padded white, as a scanner fed
    the page askew gives it (PNG, bicubic)."""
    image = Image.open(io.BytesIO(workload.data))
    image.load()
    turned = image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    return Workload(
        f"{workload.name}-skewed",
        f"{workload.description} skewed {degrees:g} degrees ({turned.width}x{turned.height})",
        _encode(turned, "PNG", optimize=True),
        f"skewed-{workload.filename.rsplit('.', 1)[0]}.png",
        "image/png",
        *turned.size,
    )


def photo_scan() -> Workload:
    """1600x1200 RGB JPEG (quality 80) of text photographed rather than scanned."""
    size = (1600, 1200)
    rnd = random.Random(7)  # noqa: S311  # reproducible text, not a secret
    # Uneven lighting: bright in the middle, darker towards the corners (a phone's vignette).
    image = Image.radial_gradient("L").resize(size).point(lambda v: 215 - v * 60 // 255)
    draw = ImageDraw.Draw(image)
    font = _font(32)
    for y in range(90, size[1] - 100, 56):
        draw.text((90, y), _sentence(rnd, 8), font=font, fill=35)
    image = image.rotate(0.8, resample=Image.Resampling.BICUBIC, fillcolor=190)
    image = image.filter(ImageFilter.GaussianBlur(0.9))
    image = Image.blend(image, Image.effect_noise(size, 24), 0.12)
    rgb = Image.merge("RGB", (image, image.point(lambda v: max(0, v - 4)), image))
    return Workload(
        "scan",
        "photo-like scan, 1600x1200 JPEG q80",
        _encode(rgb, "JPEG", quality=80),
        "scan.jpg",
        "image/jpeg",
        *size,
    )


@dataclass(frozen=True)
class TextPage:
    """A page image rendered here and the text printed on it: its ground truth."""

    image: Image.Image
    text: str
    """The page's lines, joined by newlines."""
    dpi: int


def scanned_text_page(seed: int, dpi: int = 300, lines: int | None = None) -> TextPage:
    """A US-letter page of text at `dpi` as a flatbed scanner gives it: grey, lightly blurred.

    The full page's layout (1-inch-ish margins, 10 words a line, 10.5 pt type) scaled to `dpi`;
    `seed` picks the words, so pages of a document differ. `lines` caps the number of lines
    (None: a full page, 41 lines)."""
    scale = dpi / 200  # full_page() is the same layout at 200 dpi
    size = (round(8.5 * dpi), round(11 * dpi))
    rnd = random.Random(seed)  # noqa: S311  # reproducible text, not a secret
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = _font(round(28 * scale))
    margin, step = round(150 * scale), round(46 * scale)
    printed: list[str] = []
    for y in range(margin, size[1] - margin, step):
        if lines is not None and len(printed) >= lines:
            break
        sentence = _sentence(rnd, 10)
        draw.text((margin, y), sentence, font=font, fill=0)
        printed.append(sentence)
    # A scanner's optics soften edges a little; stored as JPEG in the PDF, as scanners do.
    return TextPage(image.filter(ImageFilter.GaussianBlur(0.7)), "\n".join(printed), dpi)


def line_text_page(number: int, dpi: int = 150) -> TextPage:
    """A small page (8 x 1 inch at `dpi`) holding one numbered line of text: the cheapest page
    that is still read by Tesseract, for documents of hundreds of pages."""
    size = (8 * dpi, dpi)
    text = f"Page {number}: the quick brown fox jumps over the lazy dog"
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).text((dpi // 4, dpi // 3), text, font=_font(round(dpi * 16 / 72)), fill=0)
    return TextPage(image, text, dpi)


def pdf_of(pages: list[TextPage]) -> bytes:
    """A PDF with one page per image, each filling its page at its own dpi (Pillow: grey
    images stored as JPEG, DCTDecode, as a scanner's PDF holds them)."""
    out = io.BytesIO()
    first, *rest = pages
    if any(page.dpi != first.dpi for page in rest):
        raise ValueError("every page of one PDF is rendered at the same dpi here")
    # Copies: Pillow leaves the save's settings on the images it appended, and a later save of
    # one of them alone would append the others again.
    first.image.copy().save(
        out,
        "PDF",
        save_all=True,
        append_images=[page.image.copy() for page in rest],
        resolution=first.dpi,
    )
    return out.getvalue()


#: Workload names in the order they run.
BUILDERS = {"line": one_line, "page": full_page, "scan": photo_scan}


def build(names: list[str]) -> list[Workload]:
    """The workloads called `names`, in the order given."""
    return [BUILDERS[name]() for name in names]
