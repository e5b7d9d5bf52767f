"""What setting a page upright costs, kept low without reading worse: orientation detection
looks at fewer characters first, and a straightened page is cropped to its ink.

`test_upright` checks that turned and skewed pages read as the upright ones; this checks the two
ways the cost is cut: the tesserocr backend's two OSD looks (the short one decides only when it
is sure) and `upright.cropped_size` (every ink pixel kept, the padded corners dropped).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from model.engine import OcrEngine, OcrOptions, TesserocrBackend, backends, upright
from model.engine.engine import MIN_ORIENTATION_CONFIDENCE
from model.settings import ModelSettings
from tests.support.images import PAGE_WORDS, TESTDATA, encode
from tests.support.text import cer

pytestmark = pytest.mark.unit

TESSDATA = ModelSettings().tessdata_dir
ITALIC = "/usr/share/fonts/truetype/dejavu/DejaVuSerifCondensed-Italic.ttf"


@pytest.fixture(scope="module")
def backend() -> TesserocrBackend:
    return TesserocrBackend(TESSDATA)


@pytest.fixture(scope="module")
def phototest() -> Image.Image:
    return Image.open(TESTDATA / "phototest.tif").convert("L")


def skewed(image: Image.Image, degrees: float, fill: int = 255) -> Image.Image:
    """`image` turned `degrees` counter-clockwise, as a scanner feeding it askew would."""
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)


def italic_page() -> Image.Image:
    """An A4 page at 150 dpi of condensed italic serif (28 px): text OSD is slow to be sure of."""
    rnd = random.Random(1)  # noqa: S311  # test data, not security
    page = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(ITALIC, 28)
    for top in range(80, page.height - 108, 44):
        line = " ".join(rnd.choice(PAGE_WORDS) for _ in range(8)).capitalize()
        draw.text((80, top), line, font=font, fill=0)
    return page


# --- orientation: a short look first, the full one when it is not sure ---


def test_a_clear_page_is_decided_by_the_first_look(
    backend: TesserocrBackend, phototest: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second look at 5 characters would answer with a confidence far under the threshold.
    monkeypatch.setattr(backends, "OSD_CHARACTERS", 5)
    found = backend.orientation(upright.bilevel(phototest.rotate(90, expand=True)))
    assert found is not None
    assert found.degrees == 90
    assert found.confidence >= MIN_ORIENTATION_CONFIDENCE


def test_an_unsure_first_look_is_followed_by_the_full_one(
    backend: TesserocrBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = upright.bilevel(italic_page().rotate(270, expand=True))
    found = backend.orientation(page)
    assert found is not None
    assert found.degrees == 270
    assert found.confidence >= MIN_ORIENTATION_CONFIDENCE + 1
    # The first look alone would have left the page turned.
    monkeypatch.setattr(backends, "OSD_CHARACTERS", backends.OSD_FIRST_LOOK_CHARACTERS)
    first = backend.orientation(page)
    assert first is not None
    assert first.confidence < MIN_ORIENTATION_CONFIDENCE


def test_too_little_text_has_no_orientation(backend: TesserocrBackend) -> None:
    line = Image.new("L", (800, 80), 255)
    ImageDraw.Draw(line).text((10, 20), "Short 42", font=ImageFont.truetype(ITALIC, 40), fill=0)
    assert backend.orientation(upright.bilevel(line)) is None


# --- deskew: the straightened page cropped to its ink ---


def _ink_box(image: Image.Image) -> tuple[int, int, int, int]:
    box = image.point(lambda value: 255 if value < 128 else 0).getbbox()
    assert box is not None
    return box


@pytest.mark.parametrize("degrees", [-15, -7, 3, 8, 12.5])
def test_the_cropped_page_keeps_every_ink_pixel_with_a_margin(
    phototest: Image.Image, degrees: float
) -> None:
    page = skewed(phototest, degrees)
    skew = upright.measure_skew(page)
    whole = upright.straighten(page, skew)  # every corner kept
    width, height = upright.cropped_size(page, skew)
    assert width * height < 0.7 * whole.width * whole.height
    left, top = (whole.width - width) / 2, (whole.height - height) / 2
    ink = _ink_box(whole)
    margin = max(16, upright.CROP_MARGIN * max(page.size)) - 1
    assert ink[0] - left >= margin
    assert ink[1] - top >= margin
    assert left + width - ink[2] >= margin
    assert top + height - ink[3] >= margin


def test_the_cropped_page_is_the_centre_of_the_whole_one(phototest: Image.Image) -> None:
    page = skewed(phototest, 8)
    whole = upright.straighten(page, -8)
    width, height = whole.width - 120, whole.height - 80
    cropped = upright.straighten(page, -8, (width, height))
    centre = whole.crop((60, 40, 60 + width, 40 + height))
    assert np.array_equal(np.asarray(cropped), np.asarray(centre))


def test_ink_in_the_corners_keeps_the_whole_straightened_page(phototest: Image.Image) -> None:
    page = skewed(phototest, 8)
    # Turned about the centre, one corner reaches the top and bottom, the next the sides.
    page.paste(0, (0, 0, 3, 3))
    page.paste(0, (page.width - 3, 0, page.width, 3))
    assert upright.cropped_size(page, -8) == upright.straightened_size(page.size, -8)
    assert upright.cropped_size(Image.new("L", (600, 400), 255), 5) == (
        upright.straightened_size((600, 400), 5)
    )


def test_every_mode_crops_alike_and_light_text_counts_as_ink(phototest: Image.Image) -> None:
    page = skewed(phototest, 8)
    size = upright.cropped_size(page, -8)
    assert upright.cropped_size(page.convert("1"), -8) == size
    assert upright.cropped_size(page.convert("RGB"), -8) == size
    # White text on black, padded black: the text is the ink.
    negative = skewed(Image.eval(phototest, lambda value: 255 - value), 8, fill=0)
    assert upright.cropped_size(negative, -8) == size


def test_deskew_reads_a_page_no_larger_than_its_ink(phototest: Image.Image) -> None:
    engine = OcrEngine(TesserocrBackend(TESSDATA), max_pixels=40_000_000)
    upright_text = engine.recognize(encode(phototest), OcrOptions()).text
    page = skewed(phototest, -7)
    result = engine.recognize(encode(page), OcrOptions(deskew=True))
    assert result.skew == pytest.approx(7, abs=0.1)
    assert result.width * result.height < phototest.width * phototest.height
    assert all(w.left >= 0 and w.top >= 0 for w in result.words)
    assert all(w.left + w.width <= result.width for w in result.words)
    assert all(w.top + w.height <= result.height for w in result.words)
    assert cer(upright_text, result.text) <= 0.03
