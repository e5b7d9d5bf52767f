"""The searchable PDF's glyphless font comes from the configured tessdata directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.assembly import pdf_font
from model.formats.pdf import DEFAULT_FONT
from model.settings import ModelSettings

pytestmark = pytest.mark.unit


def tessdata(tmp_path: Path, with_font: bool) -> Path:
    installed = ModelSettings().tessdata_dir
    directory = tmp_path / "tessdata"
    directory.mkdir()
    (directory / "eng.traineddata").symlink_to(installed / "eng.traineddata")
    if with_font:
        (directory / "pdf.ttf").write_bytes(DEFAULT_FONT.read_bytes())
    return directory


def test_the_configured_tessdata_font_is_used(tmp_path: Path) -> None:
    directory = tessdata(tmp_path, with_font=True)
    assert pdf_font(ModelSettings(tessdata_dir=directory)) == directory / "pdf.ttf"


def test_without_one_the_installed_font_is_used(tmp_path: Path) -> None:
    directory = tessdata(tmp_path, with_font=False)
    assert pdf_font(ModelSettings(tessdata_dir=directory)) == DEFAULT_FONT
