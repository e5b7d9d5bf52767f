"""Outputs are `<stem>.<ext>` in --out or beside the input, never over an input, written whole."""

from __future__ import annotations

from pathlib import Path, PurePath

import pytest

from cli.args import UsageError
from cli.formats import FORMATS, FORMATS_BY_NAME, parse_formats
from cli.inputs import InputFile
from cli.outputs import output_name, plan_outputs, write_atomic

pytestmark = pytest.mark.unit


def png(path: Path, folder: str = "") -> InputFile:
    return InputFile(str(path), path, "image", "image/png", PurePath(folder))


def test_extensions() -> None:
    names = [output_name("scan", f) for f in FORMATS]
    assert names == [
        "scan.txt",
        "scan.json",
        "scan.hocr",
        "scan.tsv",
        "scan.alto.xml",
        "scan.pdf",
    ]


def test_in_out_keeping_sub_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = [png(tmp_path / "in" / "a.png"), png(tmp_path / "in" / "sub" / "b.png", "sub")]
    planned = plan_outputs(files, parse_formats("txt,alto"), out)
    assert planned[0].targets == {"txt": out / "a.txt", "alto": out / "a.alto.xml"}
    assert planned[1].targets == {"txt": out / "sub" / "b.txt", "alto": out / "sub" / "b.alto.xml"}


def test_beside_the_input_without_out(tmp_path: Path) -> None:
    planned = plan_outputs([png(tmp_path / "scan.png")], parse_formats("json"), None)
    assert planned[0].targets == {"json": tmp_path / "scan.json"}


def test_same_stem_in_one_place_keeps_the_whole_name(tmp_path: Path) -> None:
    files = [png(tmp_path / "scan.png"), png(tmp_path / "scan.jpg"), png(tmp_path / "other.png")]
    planned = plan_outputs(files, parse_formats("txt"), tmp_path / "out")
    names = [p.targets["txt"].name for p in planned]
    assert names == ["scan.png.txt", "scan.jpg.txt", "other.txt"]


def test_two_inputs_that_cannot_be_told_apart_are_refused(tmp_path: Path) -> None:
    files = [png(tmp_path / "a" / "x.png"), png(tmp_path / "b" / "x.png")]
    with pytest.raises(UsageError, match="would both be written"):
        plan_outputs(files, parse_formats("txt"), tmp_path / "out")


def test_never_overwrites_an_input(tmp_path: Path) -> None:
    document = InputFile("doc.pdf", tmp_path / "doc.pdf", "pdf", "application/pdf")
    with pytest.raises(UsageError, match=r"refusing to overwrite the input doc\.pdf"):
        plan_outputs([document], parse_formats("pdf"), None)
    with pytest.raises(UsageError, match="refusing to overwrite"):
        plan_outputs([document], parse_formats("txt,pdf"), tmp_path)
    # Elsewhere it is fine.
    plan_outputs([document], parse_formats("pdf"), tmp_path / "out")


def test_stdin_needs_out_unless_it_goes_to_stdout(tmp_path: Path) -> None:
    stdin = InputFile("-", None, "image", "image/png", data=b"\x89PNG")
    with pytest.raises(UsageError, match="needs --out"):
        plan_outputs([stdin], parse_formats("txt"), None)
    planned = plan_outputs([stdin], parse_formats("txt"), tmp_path)
    assert planned[0].targets == {"txt": tmp_path / "stdin.txt"}


def test_done_already_needs_every_output_non_empty(tmp_path: Path) -> None:
    planned = plan_outputs([png(tmp_path / "a.png")], parse_formats("txt,json"), tmp_path / "o")
    (only,) = planned
    assert not only.done_already()
    write_atomic(only.targets["txt"], b"text")
    assert not only.done_already()
    write_atomic(only.targets["json"], b"")
    assert not only.done_already()
    write_atomic(only.targets["json"], b"{}")
    assert only.done_already()


def test_write_atomic_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "a.pdf"
    write_atomic(target, b"%PDF-1.7")
    assert target.read_bytes() == b"%PDF-1.7"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.pdf"]
    assert FORMATS_BY_NAME["pdf"].extension == "pdf"
