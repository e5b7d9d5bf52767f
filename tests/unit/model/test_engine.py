"""The engine on its own: real Tesseract through tesserocr and pytesseract, no server."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from model.engine import (
    EnginePool,
    InvalidImageError,
    InvalidOptionError,
    OcrEngine,
    OcrOptions,
    PytesseractBackend,
    TesserocrBackend,
)
from model.settings import ModelSettings
from tests.support.images import TESTDATA, encode, line_png, render_line, render_lines
from tests.support.text import cer, normalize

pytestmark = pytest.mark.unit

TESSDATA = ModelSettings().tessdata_dir


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine(TesserocrBackend(TESSDATA), max_pixels=40_000_000)


def test_reads_a_rendered_line_exactly(engine: OcrEngine) -> None:
    result = engine.recognize(line_png("Invoice 2024-117 total 42.50"), OcrOptions(psm=7))
    assert result.text.strip() == "Invoice 2024-117 total 42.50"
    assert [w.text for w in result.words] == ["Invoice", "2024-117", "total", "42.50"]
    assert 80 < result.confidence <= 100
    first = result.words[0]
    assert (first.block, first.line) == (1, 1)
    assert 0 <= first.left < 60
    assert first.width > 0
    assert first.height > 0


def test_reads_several_lines_with_line_numbers(engine: OcrEngine) -> None:
    lines = ["The quick brown fox", "jumps over the lazy dog", "Pack my box with five dozen"]
    result = engine.recognize(encode(render_lines(lines)), OcrOptions())
    assert normalize(result.text) == normalize(" ".join(lines))
    # Each text line is one (block, line) pair; words keep reading order.
    pairs = [(w.block, w.line) for w in result.words]
    assert len(set(pairs)) == 3
    assert pairs == sorted(pairs)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "BMP", "WEBP", "GIF", "JPEG"])
def test_every_supported_format_decodes(engine: OcrEngine, fmt: str) -> None:
    image = render_line("Format check 123")
    params: dict[str, object] = {"quality": 95} if fmt == "JPEG" else {}
    if fmt == "WEBP":
        params = {"lossless": True}
    result = engine.recognize(encode(image, fmt, **params), OcrOptions(psm=7))
    assert result.text.strip() == "Format check 123"


def test_rgba_and_palette_images_are_flattened(engine: OcrEngine) -> None:
    rgba = render_line("Alpha channel 7").convert("RGBA")
    palette = render_line("Palette image 8").convert("P")
    assert engine.recognize(encode(rgba), OcrOptions(psm=7)).text.strip() == "Alpha channel 7"
    assert engine.recognize(encode(palette), OcrOptions(psm=7)).text.strip() == "Palette image 8"


@pytest.mark.parametrize(
    ("name", "max_cer"),
    [("phototest.tif", 0.01), ("phototest_2.tif", 0.01), ("phototest-rotated-R.png", 0.02)],
)
def test_real_scans_within_character_error_bound(
    engine: OcrEngine, name: str, max_cer: float
) -> None:
    truth = (TESTDATA / "phototest.txt").read_text()
    result = engine.recognize((TESTDATA / name).read_bytes(), OcrOptions())
    assert cer(truth, result.text) <= max_cer


def test_multi_language_page(engine: OcrEngine) -> None:
    truth = (TESTDATA / "eurotext.txt").read_text()
    result = engine.recognize((TESTDATA / "eurotext.tif").read_bytes(), OcrOptions(lang="eng+deu"))
    assert cer(truth, result.text) <= 0.05


def test_matches_tesseract_reading_the_file_itself(engine: OcrEngine) -> None:
    """No accuracy lost in decoding: same text as Leptonica reading the file directly."""
    import tesserocr

    for name in ("phototest.tif", "phototest_2.tif", "eurotext.tif"):
        path = TESTDATA / name
        expected = tesserocr.file_to_text(str(path), path=str(TESSDATA) + "/", lang="eng")
        assert engine.recognize(path.read_bytes(), OcrOptions()).text == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is plain text, not an image", "not an image"),
        (line_png("truncated")[:200], "corrupt or truncated"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n", "not an image"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "not an image"),
    ],
)
def test_bad_bytes_are_refused_with_a_clear_message(
    engine: OcrEngine, data: bytes, message: str
) -> None:
    with pytest.raises(InvalidImageError, match=message):
        engine.recognize(data, OcrOptions())


@pytest.mark.parametrize("mode", ["L", "RGB", "1"])
def test_blank_page_is_an_empty_result_not_an_error(engine: OcrEngine, mode: str) -> None:
    blank = Image.new(mode, (600, 300), "white")
    result = engine.recognize(encode(blank), OcrOptions())
    assert result.text.strip() == ""
    assert result.words == ()
    assert result.confidence == 0.0


def test_image_over_the_pixel_cap_is_refused() -> None:
    small = OcrEngine(TesserocrBackend(TESSDATA), max_pixels=1000)
    with pytest.raises(InvalidImageError, match="the limit is 1000 pixels"):
        small.recognize(line_png("too big"), OcrOptions())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (OcrOptions(lang="xxx"), "'xxx' is not installed"),
        (OcrOptions(lang="eng+zzz"), "'zzz' is not installed"),
        (OcrOptions(lang="../etc/passwd"), "malformed"),
        # Each code loads a model: at most three, each once; osd is no language.
        (OcrOptions(lang="eng+deu+eng+deu"), "malformed: use 1 to 3"),
        (OcrOptions(lang="eng+deu+eng"), "names a language twice"),
        (OcrOptions(lang="osd"), "'osd' is Tesseract's orientation and script data"),
        (OcrOptions(psm=99), "psm 99 is out of range"),
        (OcrOptions(psm=-1), "psm -1 is out of range"),
        (OcrOptions(oem=7), "oem 7 is out of range"),
    ],
)
def test_bad_options_are_refused(engine: OcrEngine, options: OcrOptions, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        engine.recognize(line_png("options"), options)


def test_engine_keeps_working_after_errors(engine: OcrEngine) -> None:
    with pytest.raises(InvalidImageError):
        engine.recognize(b"garbage", OcrOptions())
    assert engine.recognize(line_png("Still alive 99"), OcrOptions(psm=7)).text.strip() == (
        "Still alive 99"
    )


def test_stage_timings_are_measured(engine: OcrEngine) -> None:
    result = engine.recognize(line_png("Timing 1"), OcrOptions(psm=7))
    assert result.timings.decode_s > 0
    assert result.timings.recognize_s > result.timings.preprocess_s >= 0
    assert (result.width, result.height) == (800, 80)


@pytest.fixture
def pool(engine: OcrEngine) -> Iterator[EnginePool]:
    pool = EnginePool(engine, workers=2, warm_options=OcrOptions())
    pool.warm()
    yield pool
    pool.close()


def test_pool_runs_concurrent_requests_off_the_event_loop(pool: EnginePool) -> None:
    texts = [f"Parallel line {w}" for w in ("alpha", "bravo", "charlie", "delta", "echo", "golf")]

    async def run() -> list[str]:
        results = await asyncio.gather(
            *(pool.recognize(line_png(t), OcrOptions(psm=7)) for t in texts)
        )
        return [r.text.strip() for r in results]

    assert asyncio.run(run()) == texts


def test_pytesseract_backend_matches_the_cli(tmp_path: Path) -> None:
    engine = OcrEngine(PytesseractBackend(TESSDATA), max_pixels=40_000_000)
    path = tmp_path / "line.png"
    render_line("Command line parity 5").save(path)
    cli = subprocess.run(
        ["tesseract", str(path), "-", "--psm", "7"], capture_output=True, check=True, text=True
    ).stdout
    result = engine.recognize(path.read_bytes(), OcrOptions(psm=7))
    assert result.text == cli
    assert [w.text for w in result.words] == ["Command", "line", "parity", "5"]
    with pytest.raises(InvalidOptionError):
        engine.recognize(path.read_bytes(), OcrOptions(lang="zzz"))
