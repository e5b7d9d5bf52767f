"""Tesseract gets the decoded pixels themselves: nothing is re-encoded on the way.

tesserocr's own `SetImage` saves the image again in its format (a JPEG upload re-encoded
lossily, a turned page as a 96 dpi BMP); `backends.set_image` hands over raw rows instead.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from model.engine import OcrEngine, OcrOptions, TesserocrBackend
from model.engine.backends import set_image
from model.settings import ModelSettings
from tests.support.images import render_line

pytestmark = pytest.mark.unit

TEXT = "Nothing is encoded twice"


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def test_a_jpeg_upload_is_read_without_saving_any_image(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = OcrEngine(TesserocrBackend(ModelSettings().tessdata_dir), max_pixels=40_000_000)
    data = jpeg(render_line(TEXT).convert("RGB"))

    def no_save(self: Image.Image, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("an image was encoded on its way to Tesseract")

    monkeypatch.setattr(Image.Image, "save", no_save)
    for options in (OcrOptions(psm=7), OcrOptions(psm=7, deskew=True)):
        assert engine.recognize(data, options).text.strip() == TEXT


class Recorder:
    """Stands in for the tesserocr API: records what SetImageBytes was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, int, int, int, int]] = []

    def SetImageBytes(  # tesserocr's name
        self, data: bytes, width: int, height: int, depth: int, stride: int
    ) -> None:
        self.calls.append((data, width, height, depth, stride))


@pytest.mark.parametrize(("mode", "depth"), [("L", 1), ("RGB", 3), ("1", 1), ("CMYK", 3)], ids=str)
def test_the_rows_handed_over_are_the_pixels(mode: str, depth: int) -> None:
    image = render_line("rows", (64, 20), 16).convert(mode)
    api = Recorder()
    set_image(api, image)
    ((data, width, height, got_depth, stride),) = api.calls
    assert (width, height, got_depth, stride) == (64, 20, depth, 64 * depth)
    expected = image if mode in ("L", "RGB") else image.convert("L" if mode == "1" else "RGB")
    assert data == expected.tobytes()
