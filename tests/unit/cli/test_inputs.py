"""Inputs are found by walking folders and recognised by their bytes, not their names."""

from __future__ import annotations

import io
from pathlib import Path, PurePath

import pytest
from PIL import Image

from cli.args import UsageError
from cli.inputs import InputFile, count_pages, discover, sniff
from tests.support.images import encode, line_png, render_line

pytestmark = pytest.mark.unit


def test_sniff_by_bytes() -> None:
    assert sniff(line_png("x")) == ("image", "image/png")
    assert sniff(b"II*\x00\x08\x00\x00\x00") == ("tiff", "image/tiff")
    assert sniff(b"junk" * 10 + b"%PDF-1.7") == ("pdf", "application/pdf")
    assert sniff(b"hello") is None
    assert sniff(b"") is None


def test_folders_are_walked_in_order_and_other_files_left_alone(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    (scans / "sub").mkdir(parents=True)
    (scans / "b.png").write_bytes(line_png("b"))
    (scans / "a.dat").write_bytes(line_png("a"))  # a PNG, whatever its name
    (scans / "sub" / "c.png").write_bytes(line_png("c"))
    (scans / "notes.txt").write_text("not an image")
    (scans / "fake.png").write_text("not an image either")
    found = discover([str(scans)])
    assert [f.name for f in found.files] == [
        str(scans / "a.dat"),
        str(scans / "b.png"),
        str(scans / "sub" / "c.png"),
    ]
    assert [f.folder for f in found.files] == [PurePath(), PurePath(), PurePath("sub")]
    assert found.skipped == [str(scans / "fake.png"), str(scans / "notes.txt")]
    assert found.rejected == []


def test_a_named_file_that_is_no_image_fails(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    found = discover([str(text), str(empty)])
    assert found.files == []
    assert [name for name, _ in found.rejected] == [str(text), str(empty)]
    assert "not an accepted format" in found.rejected[0][1]
    assert found.rejected[1][1] == "empty file"


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        discover([str(tmp_path / "nope.png")])


def test_the_output_folder_is_not_read_again(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "a.png").write_bytes(line_png("a"))
    (tmp_path / "out" / "a.pdf").write_bytes(b"%PDF-1.7 an earlier output")
    found = discover([str(tmp_path)], exclude=tmp_path / "out")
    assert [f.name for f in found.files] == [str(tmp_path / "a.png")]


def test_the_same_file_twice_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(line_png("a"))
    found = discover([str(tmp_path / "a.png"), str(tmp_path)])
    assert len(found.files) == 1


def test_stdin() -> None:
    found = discover(["-"], stdin=io.BytesIO(line_png("x")))
    (item,) = found.files
    assert item.path is None
    assert item.stem == "stdin"
    assert item.read().startswith(b"\x89PNG")


def test_pages_counted_for_the_progress_bar(tmp_path: Path) -> None:
    frames = [render_line(f"page {n}") for n in range(3)]
    tiff = tmp_path / "three.tif"
    frames[0].save(tiff, "TIFF", save_all=True, append_images=frames[1:])
    item = InputFile(str(tiff), tiff, "tiff", "image/tiff")
    assert count_pages(item) == 3
    assert count_pages(item, (2, 3, 7)) == 2
    image = InputFile("-", None, "image", "image/png", data=encode(Image.new("L", (4, 4))))
    assert count_pages(image) == 1
    broken = InputFile("-", None, "pdf", "application/pdf", data=b"%PDF-1.7 broken")
    assert count_pages(broken) == 1  # the server says what is wrong with it
