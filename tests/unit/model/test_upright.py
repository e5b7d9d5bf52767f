"""Pages set upright before they are read: `rotate=auto` (Tesseract OSD) and `deskew`.

Targets: a page turned 90, 180 or 270 degrees, or skewed 7 to 10 degrees, reads within 0.03
character error rate of the upright page. Pages are turned and skewed here with Pillow
(phototest.tif and a rendered page), besides Tesseract's own turned test files.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest
from PIL import Image

from gateway.protocol import pb
from model.assembly import create_model, create_pool
from model.engine import (
    InvalidImageError,
    InvalidOptionError,
    OcrEngine,
    OcrOptions,
    OcrResult,
    Orientation,
    PytesseractBackend,
    TesserocrBackend,
    upright,
)
from model.engine.engine import MIN_ORIENTATION_CONFIDENCE
from model.settings import ModelSettings
from tests.support.images import TESTDATA, encode, render_page
from tests.support.text import cer

pytestmark = pytest.mark.unit

TESSDATA = ModelSettings().tessdata_dir
TRUTH = (TESTDATA / "phototest.txt").read_text()
#: How much worse than the upright page a turned or skewed one may read.
MAX_CER_LOSS = 0.03


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine(TesserocrBackend(TESSDATA), max_pixels=40_000_000)


@pytest.fixture(scope="module")
def phototest() -> Image.Image:
    return Image.open(TESTDATA / "phototest.tif").convert("L")


@pytest.fixture(scope="module")
def upright_cer(engine: OcrEngine) -> float:
    return cer(
        TRUTH, engine.recognize((TESTDATA / "phototest.tif").read_bytes(), OcrOptions()).text
    )


def skewed(image: Image.Image, degrees: float) -> Image.Image:
    """`image` turned `degrees` counter-clockwise, as a scanner feeding it askew would."""
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)


# --- the parts ---


def test_turn_is_clockwise() -> None:
    image = Image.new("L", (3, 2), 255)
    image.putpixel((0, 0), 0)  # top left
    turned = upright.turn(image, 90)
    assert turned.size == (2, 3)
    assert turned.getpixel((1, 0)) == 0  # now top right
    assert upright.turn(image, 180).getpixel((2, 1)) == 0
    assert upright.turn(image, 270).getpixel((0, 2)) == 0
    assert upright.turn(image, 0) is image


@pytest.mark.parametrize("degrees", [-15, -10, -8, -7, -3, -1, 1, 3, 7, 8, 10, 12.5, 15])
def test_skew_is_measured_within_a_tenth_of_a_degree(
    phototest: Image.Image, degrees: float
) -> None:
    assert upright.measure_skew(skewed(phototest, degrees)) == pytest.approx(-degrees, abs=0.1)


def test_skew_of_a_bilevel_and_a_colour_page(phototest: Image.Image) -> None:
    page = skewed(phototest, 8)
    assert upright.measure_skew(page.convert("1")) == pytest.approx(-8, abs=0.1)
    assert upright.measure_skew(page.convert("RGB")) == pytest.approx(-8, abs=0.1)


def test_upright_blank_and_textless_pages_are_left_alone(phototest: Image.Image) -> None:
    assert upright.measure_skew(phototest) == 0.0
    assert upright.measure_skew(Image.new("L", (800, 600), 255)) == 0.0
    noise = np.random.default_rng(7).integers(0, 256, (600, 800), dtype=np.uint8)
    assert upright.measure_skew(Image.fromarray(noise)) == 0.0


def test_straightening_keeps_every_corner_on_white(phototest: Image.Image) -> None:
    straight = upright.straighten(phototest.convert("1"), 10)
    assert straight.mode == "L"
    assert straight.width > phototest.width
    assert straight.height > phototest.height
    assert straight.getpixel((0, 0)) == 255


# --- rotate=auto ---


@pytest.mark.parametrize("clockwise", [90, 180, 270])
def test_rotate_auto_reads_a_turned_page_as_the_upright_one(
    engine: OcrEngine, phototest: Image.Image, upright_cer: float, clockwise: int
) -> None:
    # Turned counter-clockwise by `clockwise`: setting it upright takes `clockwise` clockwise.
    data = encode(phototest.rotate(clockwise, expand=True))
    if clockwise != 270:  # Tesseract reads a page turned clockwise (its lines top-down) itself
        assert cer(TRUTH, engine.recognize(data, OcrOptions()).text) > 0.5
    result = engine.recognize(data, OcrOptions(rotate="auto"))
    assert cer(TRUTH, result.text) <= upright_cer + MAX_CER_LOSS
    assert result.rotation == clockwise
    assert result.rotation_confidence is not None
    assert result.rotation_confidence >= MIN_ORIENTATION_CONFIDENCE
    assert (result.width, result.height) == phototest.size  # boxes are the upright page's
    assert all(w.left + w.width <= result.width for w in result.words)


@pytest.mark.parametrize(
    ("name", "clockwise"),
    [
        ("phototest-rotated-L.png", 90),
        ("phototest-rotated-R.png", 270),
        ("phototest-rotated-180.png", 180),
        ("phototest.tif", 0),
    ],
)
def test_rotate_auto_on_tesseracts_turned_test_files(
    engine: OcrEngine, upright_cer: float, name: str, clockwise: int
) -> None:
    result = engine.recognize((TESTDATA / name).read_bytes(), OcrOptions(rotate="auto"))
    assert result.rotation == clockwise
    assert cer(TRUTH, result.text) <= upright_cer + MAX_CER_LOSS


def test_a_page_with_too_little_text_is_read_as_it_is(engine: OcrEngine) -> None:
    from tests.support.images import line_png

    result = engine.recognize(line_png("Short 42"), OcrOptions(rotate="auto", psm=7))
    assert (result.rotation, result.rotation_confidence) == (0, None)
    assert result.text.strip() == "Short 42"


def test_without_rotate_no_orientation_is_detected(engine: OcrEngine) -> None:
    result = engine.recognize((TESTDATA / "phototest-rotated-L.png").read_bytes(), OcrOptions())
    assert (result.rotation, result.rotation_confidence, result.skew) == (0, None, 0.0)


def test_an_unsure_detection_does_not_turn_the_page(phototest: Image.Image) -> None:
    class Unsure(TesserocrBackend):
        def orientation(self, image: Image.Image) -> Orientation | None:
            return Orientation(180, MIN_ORIENTATION_CONFIDENCE - 0.5)

    unsure = OcrEngine(Unsure(TESSDATA), max_pixels=40_000_000)
    result = unsure.recognize(encode(phototest), OcrOptions(rotate="auto"))
    assert result.rotation == 0
    assert result.rotation_confidence == MIN_ORIENTATION_CONFIDENCE - 0.5
    assert cer(TRUTH, result.text) <= 0.01


# --- deskew ---


@pytest.mark.parametrize("degrees", [7, -7, 8, -8, 10, -10])
def test_deskew_reads_a_skewed_page_as_the_upright_one(
    engine: OcrEngine, phototest: Image.Image, upright_cer: float, degrees: float
) -> None:
    data = encode(skewed(phototest, degrees))
    result = engine.recognize(data, OcrOptions(deskew=True))
    assert cer(TRUTH, result.text) <= upright_cer + MAX_CER_LOSS
    assert result.skew == pytest.approx(-degrees, abs=0.1)
    assert result.rotation_confidence is None


def test_an_upright_page_is_not_resampled(engine: OcrEngine) -> None:
    data = (TESTDATA / "phototest.tif").read_bytes()
    plain = engine.recognize(data, OcrOptions())
    both = engine.recognize(data, OcrOptions(rotate="auto", deskew=True))
    assert (both.rotation, both.skew) == (0, 0.0)
    assert both.text == plain.text
    assert both.words == plain.words


# --- a rendered page, turned and skewed at once ---


@pytest.fixture(scope="module")
def rendered(engine: OcrEngine) -> tuple[Image.Image, str, float]:
    page, truth = render_page()
    return page, truth, cer(truth, engine.recognize(encode(page), OcrOptions()).text)


@pytest.mark.parametrize(("clockwise", "degrees"), [(90, 0), (180, 8), (270, -7), (0, 10)])
def test_a_rendered_page_turned_and_skewed_reads_as_the_upright_one(
    engine: OcrEngine, rendered: tuple[Image.Image, str, float], clockwise: int, degrees: float
) -> None:
    page, truth, upright_cer = rendered
    assert upright_cer <= 0.01
    moved = skewed(page, degrees) if degrees else page
    moved = moved.rotate(clockwise, expand=True) if clockwise else moved
    result = engine.recognize(encode(moved), OcrOptions(rotate="auto", deskew=True))
    assert result.rotation == clockwise
    assert result.skew == pytest.approx(-degrees, abs=0.1)
    assert cer(truth, result.text) <= upright_cer + MAX_CER_LOSS


def test_the_cli_backend_turns_pages_the_same_way(upright_cer: float) -> None:
    cli = OcrEngine(PytesseractBackend(TESSDATA), max_pixels=40_000_000)
    for name, clockwise in (("phototest-rotated-L.png", 90), ("phototest-rotated-R.png", 270)):
        result = cli.recognize((TESTDATA / name).read_bytes(), OcrOptions(rotate="auto"))
        assert result.rotation == clockwise
        assert cer(TRUTH, result.text) <= upright_cer + MAX_CER_LOSS


# --- stage time and memory ---


def test_orientation_and_deskew_count_in_the_preprocess_stage(phototest: Image.Image) -> None:
    class Slow(TesserocrBackend):
        def orientation(self, image: Image.Image) -> Orientation | None:
            time.sleep(0.2)
            return super().orientation(image)

    slow = OcrEngine(Slow(TESSDATA), max_pixels=40_000_000)
    result = slow.recognize(encode(skewed(phototest, 7)), OcrOptions(rotate="auto", deskew=True))
    assert result.timings.preprocess_s >= 0.2
    assert result.skew == pytest.approx(-7, abs=0.1)


def test_the_upright_copies_are_within_the_decoded_bytes_budget() -> None:
    """The page and its upright copies count in OCR_MODEL_MAX_DECODED_BYTES, checked before
    any copy is made."""
    page = Image.new("L", (1500, 1000), 255)  # 1.5 MB a copy
    small = OcrEngine(TesserocrBackend(TESSDATA), 40_000_000, max_decoded_bytes=3_200_000)
    # The page and its turned (or bilevel) copy: 3 MB.
    assert small.recognize(encode(page), OcrOptions(rotate="auto")).rotation == 0
    # The page and a straightened copy up to 1.5 times larger: 3.75 MB.
    with pytest.raises(InvalidImageError, match="deskew on the 1500x1000 L page would hold"):
        small.recognize(encode(page), OcrOptions(deskew=True))


def test_a_straightened_page_stays_within_the_pixel_limit(phototest: Image.Image) -> None:
    page = skewed(phototest, 8)  # 702x566; straightened: ~775x660, cropped to its ink: 630x330
    width, height = upright.straighten(page, -8).size
    bound_width, bound_height = upright.straightened_size(page.size, -8)
    assert width <= bound_width <= width + 1
    assert height <= bound_height <= height + 1
    # Ink in the corners: straightened, the page keeps all of its ~775x660 pixels.
    marked = page.copy()
    for x, y in (
        (0, 0),
        (page.width - 4, 0),
        (0, page.height - 4),
        (page.width - 4, page.height - 4),
    ):
        marked.paste(0, (x, y, x + 4, y + 4))
    tight = OcrEngine(TesserocrBackend(TESSDATA), max_pixels=page.width * page.height + 1000)
    with pytest.raises(
        InvalidImageError, match=r"straightening the 702x566 page by -[78]\.\d+ degrees"
    ):
        tight.recognize(encode(marked), OcrOptions(deskew=True))
    assert tight.recognize(encode(marked), OcrOptions()).skew == 0.0
    # Without them, the straightened page is cropped to its ink, well within the limit.
    assert tight.recognize(encode(page), OcrOptions(deskew=True)).skew == pytest.approx(-8, abs=0.1)


# --- without the orientation data ---


@pytest.fixture
def tessdata_without_osd(tmp_path: Path) -> Path:
    for name in ("eng.traineddata",):
        (tmp_path / name).symlink_to(TESSDATA / name)
    return tmp_path


def test_rotate_auto_without_osd_data_is_an_option_error(tessdata_without_osd: Path) -> None:
    for backend in (
        TesserocrBackend(tessdata_without_osd),
        PytesseractBackend(tessdata_without_osd),
    ):
        engine = OcrEngine(backend, max_pixels=40_000_000)
        data = (TESTDATA / "phototest.tif").read_bytes()
        with pytest.raises(InvalidOptionError, match=r"rotate=auto needs .*tesseract-ocr-osd"):
            engine.recognize(data, OcrOptions(rotate="auto"))
        with pytest.raises(InvalidOptionError, match="tesseract-ocr-osd"):
            backend.orientation(Image.new("L", (10, 10), 255))
        # Everything else still works.
        assert cer(TRUTH, engine.recognize(data, OcrOptions(deskew=True)).text) <= 0.01


@pytest.fixture
def model_without_osd(tessdata_without_osd: Path) -> Iterator[object]:
    model = create_model(ModelSettings(tessdata_dir=tessdata_without_osd, workers=1))
    model.load()
    yield model
    model.stop()


def test_the_model_answers_invalid_input_without_osd_data(model_without_osd: object) -> None:
    from model.predictor import OcrModel

    assert isinstance(model_without_osd, OcrModel)
    data = (TESTDATA / "phototest.tif").read_bytes()
    message = pb.ModelInferRequest(
        model_name="ocr-model",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])],
        raw_input_contents=[len(data).to_bytes(4, "little") + data],
        parameters={"rotate": pb.InferParameter(string_param="auto")},
    )
    request = InferRequest.from_grpc(message)
    with pytest.raises(InvalidInput, match=r"rotate=auto needs .*tesseract-ocr-osd"):
        asyncio.run(model_without_osd.predict(request))


def test_default_rotate_auto_without_osd_data_fails_at_start(tessdata_without_osd: Path) -> None:
    settings = ModelSettings(tessdata_dir=tessdata_without_osd, default_rotate="auto")
    with pytest.raises(InvalidOptionError, match="tesseract-ocr-osd"):
        create_pool(settings, TesserocrBackend(tessdata_without_osd))


def test_default_rotate_auto_applies_when_a_request_sends_none() -> None:
    """OCR_MODEL_DEFAULT_ROTATE=auto: the workers load the orientation data at start-up, and a
    request without `rotate` is turned upright."""
    model = create_model(ModelSettings(default_rotate="auto", workers=1))
    model.load()
    try:
        data = (TESTDATA / "phototest-rotated-L.png").read_bytes()
        result: OcrResult = asyncio.run(model._pool.recognize(data, model._defaults))
        assert model._defaults.rotate == "auto"
        assert result.rotation == 90
    finally:
        model.stop()
