"""The benchmark's images, generated here with Pillow and Debian's DejaVu font (no downloads).

Each workload is one encoded image sent again and again: a single text line, a full page of
text, and a photo-like JPEG scan (uneven grey background, slight tilt, blur and noise); any of
them can be skewed, as a page fed askew (the deskew benchmark).
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


#: Workload names in the order they run.
BUILDERS = {"line": one_line, "page": full_page, "scan": photo_scan}


def build(names: list[str]) -> list[Workload]:
    """The workloads called `names`, in the order given."""
    return [BUILDERS[name]() for name in names]
