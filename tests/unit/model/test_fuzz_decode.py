"""Fuzz the decode and validate path: any bytes give an image or a clear InvalidImageError.

Random bytes, and valid images of every accepted format with bytes flipped, cut or appended,
go through `image.decode` + `image.prepare` (the code in front of Tesseract). Nothing else may
escape: no Pillow exception, no crash, no oversized image. Bounded here; `make fuzz` runs long.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from model.engine import InvalidImageError
from model.engine.image import decode, prepare
from tests.support.fuzzing import examples
from tests.support.images import encode, render_line

pytestmark = pytest.mark.unit

MAX_PIXELS = 4_000_000
FORMATS = ["PNG", "JPEG", "TIFF", "WEBP", "BMP", "GIF"]


@cache
def seed_image(fmt: str) -> bytes:
    image = render_line("Fuzz 1", size=(120, 30), font_px=18)
    return encode(image.convert("RGB") if fmt == "JPEG" else image, fmt)


def decode_or_refuse(data: bytes) -> None:
    """Only two outcomes are allowed: a usable image, or InvalidImageError with a message."""
    refusal = ""
    try:
        image: Image.Image | None = prepare(decode(data, MAX_PIXELS, max_frames=8))
    except InvalidImageError as error:
        image, refusal = None, str(error)
    if image is None:
        assert refusal
    else:
        assert image.mode in {"1", "L", "RGB"}
        assert 0 < image.width * image.height <= MAX_PIXELS


FUZZ = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    decode_or_refuse(data)


@FUZZ
@given(
    fmt=st.sampled_from(FORMATS),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
    tail=st.binary(max_size=64),
)
def test_mutated_images(
    fmt: str, flips: list[tuple[int, int]], cut: int | None, tail: bytes
) -> None:
    data = bytearray(seed_image(fmt))
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    decode_or_refuse(bytes(data) + tail)


def test_seed_images_decode() -> None:
    for fmt in FORMATS:
        assert prepare(decode(seed_image(fmt), MAX_PIXELS)).size == (120, 30)
