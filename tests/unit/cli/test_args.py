"""The command line is checked before anything is read: a bad argument is a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.args import (
    DEFAULT_JOBS,
    DEFAULT_URL,
    UsageError,
    checked_grpc_target,
    normalise_url,
    parse_args,
    parse_page_ranges,
)
from cli.formats import FORMATS_BY_NAME, parse_formats

pytestmark = pytest.mark.unit


def test_defaults() -> None:
    invocation = parse_args(["scan.png"], environ={})
    assert invocation.paths == ("scan.png",)
    assert [f.name for f in invocation.formats] == ["txt"]
    assert invocation.url == DEFAULT_URL
    assert invocation.ocr_url == f"{DEFAULT_URL}/gateway/ocr"
    assert invocation.jobs == DEFAULT_JOBS
    assert invocation.grpc is None
    assert invocation.api_key is None
    assert invocation.out is None
    assert not invocation.skip_existing
    # Nothing the person did not ask for is sent: the server's defaults apply.
    assert invocation.options.form_fields() == {}


def test_every_option_reaches_the_form_fields(tmp_path: Path) -> None:
    argv = [
        *("a.png", "folder", "--out", str(tmp_path), "--format", "txt,json,pdf"),
        *("--lang", "eng+deu", "--psm", "6", "--rotate", "auto", "--deskew"),
        *("--pages", "1-3,7", "--dpi", "200", "--pdf-text", "keep", "--jobs", "8"),
        "--skip-existing",
    ]
    invocation = parse_args(argv, environ={})
    assert invocation.paths == ("a.png", "folder")
    assert invocation.out == tmp_path
    assert [f.name for f in invocation.formats] == ["txt", "json", "pdf"]
    assert invocation.jobs == 8
    assert invocation.skip_existing
    assert invocation.options.form_fields() == {
        "lang": "eng+deu",
        "psm": "6",
        "rotate": "auto",
        "deskew": "true",
        "pages": "1-3,7",
        "dpi": "200",
        "pdf_text": "keep",
    }


def test_environment_supplies_url_key_and_token() -> None:
    token = "t" * 20
    env = {"OCR_URL": "http://ocr.example:9000/", "OCR_API_KEY": "k" * 20, "OCR_MODEL_TOKEN": token}
    invocation = parse_args(["a.png"], environ=env)
    assert invocation.url == "http://ocr.example:9000"
    assert invocation.api_key == "k" * 20
    assert invocation.model_token == token
    # The command line wins over the environment.
    flagged = parse_args(["a.png", "--url", "http://other:1", "--api-key", "x"], environ=env)
    assert flagged.url == "http://other:1"
    assert flagged.api_key == "x"


def test_grpc_target() -> None:
    invocation = parse_args(["a.png", "--grpc", "localhost:8081"], environ={})
    assert invocation.grpc == "localhost:8081"
    assert invocation.server == "the model server at localhost:8081"
    assert checked_grpc_target("[::1]:8081") == "[::1]:8081"


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no PATH
        ["a.png", "--format", "docx"],
        ["a.png", "--format", "txt,,json"],
        ["a.png", "--psm", "14"],
        ["a.png", "--psm", "six"],
        ["a.png", "--dpi", "50"],
        ["a.png", "--lang", "eng+"],
        ["a.png", "--lang", "a+b+c+d"],
        ["a.png", "--rotate", "left"],
        ["a.png", "--pages", "3-1"],
        ["a.png", "--pages", "0"],
        ["a.png", "--pages", "one"],
        ["a.png", "--jobs", "0"],
        ["a.png", "--timeout", "0"],
        ["a.png", "--url", "ftp://host"],
        ["a.png", "--url", "localhost:8001"],
        ["a.png", "--grpc", "localhost"],
        ["a.png", "--grpc", "localhost:0"],
        ["a.png", "--url", "http://a:1", "--grpc", "b:2"],  # one way in at a time
        ["a.png", "--no-such-flag"],
        ["-", "-", "--out", "x"],
        ["-", "a.png"],  # stdin among others needs --out
    ],
)
def test_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_args(argv, environ={})


def test_out_must_be_a_folder(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        parse_args(["a.png", "--out", str(file)], environ={})


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://localhost:8001", "http://localhost:8001"),
        ("http://localhost:8001/", "http://localhost:8001"),
        ("http://localhost:8001/gateway/ocr", "http://localhost:8001"),
        ("https://ocr.example/prefix/", "https://ocr.example/prefix"),
    ],
)
def test_url_normalised(given: str, base: str) -> None:
    assert normalise_url(given) == base


@pytest.mark.parametrize(
    ("value", "pages"),
    [
        ("1", (1,)),
        ("1-3,7", (1, 2, 3, 7)),
        (" 2 - 3 , 1 ", (1, 2, 3)),
        ("3,3,1-2", (1, 2, 3)),
    ],
)
def test_page_ranges(value: str, pages: tuple[int, ...]) -> None:
    assert parse_page_ranges(value) == pages


@pytest.mark.parametrize("value", ["", "1,", "a", "0-2", "5-4", "1-2-3", "\u0661"])
def test_bad_page_ranges(value: str) -> None:
    # ASCII digits only, as the gateway reads them: not an Arabic-Indic one (U+0661).
    with pytest.raises(ValueError, match=r"\S"):
        parse_page_ranges(value)


def test_formats_parse_in_order_once() -> None:
    chosen = parse_formats("json, TXT,json,alto,text")
    assert [f.name for f in chosen] == ["json", "txt", "alto"]
    assert [f.extension for f in chosen] == ["json", "txt", "alto.xml"]
    assert [f.api_name for f in chosen] == ["json", "text", "alto"]
    assert FORMATS_BY_NAME["pdf"].binary
    assert not FORMATS_BY_NAME["json"].binary
