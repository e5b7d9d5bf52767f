"""The `ocr` command line against the real platform (scripts/run-local.sh on free ports).

Every test runs the installed console script (`.venv/bin/ocr`) as a person would: a folder with
a bad file in it, every format, one file to stdout, stdin, resuming with --skip-existing, the
refusals and usage errors (exit 2), an unreachable server (one line, within seconds), the live
bar only on a terminal (a pseudo-terminal here) and plain lines otherwise, `--grpc` straight to
the model giving the gateway's answers, a refused API key stopping the batch, and a 429 from a
rate-limited gateway waited out.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.e2e.conftest import Platform, start_platform
from tests.support.images import encode, line_png, render_line
from tests.support.model_documents import line_pages, multipage, scanned_pdf
from tests.support.processes import free_port, http_ok, start, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

OCR = Path(sys.executable).with_name("ocr")
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
#: The rate-limited gateway allows this many uploads a minute (the 429 test's), with this key.
LIMIT_PER_MINUTE = 1
API_KEY = "cli-test-key-0123456789"


@dataclass(frozen=True)
class Run:
    """How one `ocr` run ended."""

    code: int
    stdout: bytes
    stderr: str
    seconds: float


def cli_env(**extra: str) -> dict[str, str]:
    """Our environment without `ocr`'s own variables (a developer's OCR_URL), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in {"OCR_URL", "OCR_API_KEY"}}
    return {**env, **extra}


def ocr(*args: str | Path, stdin: bytes | None = None, env: dict[str, str] | None = None) -> Run:
    """Run the installed `ocr` with `args`, standard streams piped (no terminal)."""
    assert OCR.exists(), f"{OCR} is missing: `make venv` installs the console script"
    started = time.monotonic()
    done = subprocess.run(
        [str(OCR), *map(str, args)],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=cli_env(**(env or {})),
        timeout=180,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr.decode(), time.monotonic() - started)


def in_terminal(*args: str | Path, timeout_s: float = 120) -> tuple[int, bytes]:
    """Run `ocr` with stdout and stderr on a pseudo-terminal; its exit status and output."""
    master, slave = os.openpty()
    # 30 rows of 120 columns: room for the whole bar on one line.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    process = subprocess.Popen(
        [str(OCR), *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=cli_env(TERM="xterm-256color"),
        start_new_session=True,
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed, the run is over
                break
            if not chunk:
                break
            output += chunk
        code = process.wait(timeout=10)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, output


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start_platform(tmp_path_factory.mktemp("cli"))
    yield running
    running.service.stop(signal.SIGINT)


@pytest.fixture(scope="module", autouse=True)
def limited(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second gateway in front of the same model, with an API key and one upload a minute.

    Started with the module and its one upload used at once, so the minute's window has mostly
    passed by the time the 429 test (the last) runs, and the wait it is told is short."""
    port = free_port()
    service = start(
        [sys.executable, "-m", "gateway"],
        {
            "OCR_GATEWAY_PORT": str(port),
            "OCR_GATEWAY_HOST": "127.0.0.1",
            "OCR_GATEWAY_MODEL_ADDRESS": f"127.0.0.1:{platform.model_grpc_port}",
            "OCR_GATEWAY_RATE_LIMIT_PER_MINUTE": str(LIMIT_PER_MINUTE),
            "OCR_GATEWAY_API_KEYS": API_KEY,
        },
        tmp_path_factory.mktemp("limited") / "gateway.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: not service.alive() or http_ok(f"{url}/readyz"), 60, "gateway")
        assert service.alive(), service.output()
        used = httpx.post(
            f"{url}/gateway/ocr",
            files={"image_file": ("x.png", line_png("used"))},
            headers={"X-API-Key": API_KEY},
            timeout=60,
        )
        assert used.status_code == 200, used.text
        yield url
    finally:
        service.stop(signal.SIGTERM)


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    """A folder: two readable images (one in a sub-folder), a broken PNG and a text file."""
    folder = tmp_path / "scans"
    (folder / "sub").mkdir(parents=True)
    (folder / "invoice.png").write_bytes(line_png("Invoice 4711 total"))
    (folder / "sub" / "letter.png").write_bytes(line_png("Dear customer"))
    (folder / "broken.png").write_bytes(line_png("cut short")[:80])
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_batch_of_a_folder_with_a_bad_file(platform: Platform, scans: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = ocr(scans, "--out", out, "--url", platform.url)
    assert run.code == 1, run.stderr
    assert "Invoice 4711" in (out / "invoice.txt").read_text()
    assert "customer" in (out / "sub" / "letter.txt").read_text()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "invoice.txt",
        "sub/letter.txt",
    ]
    # Plain lines (no terminal): a line per file, then the summary; no escape codes.
    assert "\x1b[" not in run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert lines[0].startswith("ocr: 3 files (3 pages) via the gateway at")
    assert any("broken.png: FAILED:" in line and "422" in line for line in lines)
    assert any(line.startswith("ocr: 2 files read (2 pages) in ") for line in lines)
    assert "1 failed" in run.stderr
    assert "1 not images or PDFs (left alone)" in run.stderr
    assert f"left alone: {scans / 'notes.txt'}" in run.stderr
    assert run.stdout == b""


def test_every_format_written_with_its_extension(platform: Platform, tmp_path: Path) -> None:
    image = tmp_path / "page.png"
    image.write_bytes(line_png("Formats written here"))
    out = tmp_path / "out"
    run = ocr(image, "--out", out, "--format", "txt,json,hocr,tsv,alto,pdf", "--url", platform.url)
    assert run.code == 0, run.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["page.alto.xml", "page.hocr", "page.json", "page.pdf", "page.tsv", "page.txt"]
    assert "Formats written" in (out / "page.txt").read_text()
    answer = json.loads((out / "page.json").read_text())
    assert "Formats written" in answer["text"]
    assert answer["page_count"] == 1
    assert answer["words"]
    assert "ocr_page" in (out / "page.hocr").read_text()
    assert (out / "page.tsv").read_text().startswith("level\tpage_num\t")
    alto = etree.fromstring((out / "page.alto.xml").read_bytes())
    assert alto.tag == f"{{{ALTO_NS}}}alto"
    strings = [s.get("CONTENT") for s in alto.iter(f"{{{ALTO_NS}}}String")]
    assert "Formats" in strings
    assert (out / "page.pdf").read_bytes().startswith(b"%PDF-")
    assert "1 file read (1 page)" in run.stderr


def test_one_file_goes_to_stdout(platform: Platform, tmp_path: Path) -> None:
    image = tmp_path / "scan.png"
    image.write_bytes(line_png("Straight to stdout"))
    run = ocr(image, "--url", platform.url)
    assert run.code == 0, run.stderr
    assert "Straight to stdout" in run.stdout.decode()
    assert run.stderr == ""  # nothing but the text when all went well
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.png"]
    as_json = ocr(image, "--format", "json", "--url", platform.url)
    assert "Straight to stdout" in json.loads(as_json.stdout)["text"]


def test_stdin(platform: Platform, tmp_path: Path) -> None:
    data = line_png("Read from stdin")
    run = ocr("-", "--url", platform.url, stdin=data)
    assert run.code == 0, run.stderr
    assert "Read from stdin" in run.stdout.decode()
    saved = ocr("-", "--out", tmp_path, "--format", "txt,pdf", "--url", platform.url, stdin=data)
    assert saved.code == 0, saved.stderr
    assert "Read from stdin" in (tmp_path / "stdin.txt").read_text()
    assert (tmp_path / "stdin.pdf").read_bytes().startswith(b"%PDF-")
    not_an_image = ocr("-", "--url", platform.url, stdin=b"hello")
    assert not_an_image.code == 1
    assert "not an accepted format" in not_an_image.stderr


def test_skip_existing_resumes(platform: Platform, scans: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (scans / "broken.png").unlink()
    (out / "sub").mkdir(parents=True)
    # As an interrupted batch leaves it: one file done, the other not yet.
    (out / "invoice.txt").write_text("written by the first run\n")
    run = ocr(scans, "--out", out, "--skip-existing", "--url", platform.url)
    assert run.code == 0, run.stderr
    assert (out / "invoice.txt").read_text() == "written by the first run\n"
    assert "customer" in (out / "sub" / "letter.txt").read_text()
    assert "invoice.png: skipped, its outputs exist" in run.stderr
    assert "1 file read (1 page)" in run.stderr
    assert "1 skipped (outputs exist)" in run.stderr
    # Without the flag, outputs are written again.
    again = ocr(scans, "--out", out, "--url", platform.url)
    assert again.code == 0, again.stderr
    assert "Invoice 4711" in (out / "invoice.txt").read_text()


def test_refuses_to_overwrite_an_input(platform: Platform, tmp_path: Path) -> None:
    document = tmp_path / "letter.pdf"
    original = scanned_pdf(line_pages("Keep me as I am"), dpi=150)
    document.write_bytes(original)
    run = ocr(document, "--format", "txt,pdf", "--url", platform.url)
    assert run.code == 2
    assert "refusing to overwrite the input" in run.stderr
    assert "Traceback" not in run.stderr
    assert document.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["letter.pdf"]  # nothing was read


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("{image}", "--format", "docx"),
        ("{image}", "--psm", "99"),
        ("{image}", "--pages", "3-1"),
        ("{image}", "--url", "localhost:8001"),
        ("{dir}/missing.png",),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(line_png("x"))
    argv = [a.format(image=image, dir=tmp_path) for a in args]
    run = ocr(*argv)
    assert run.code == 2, run.stderr
    assert "ocr: error:" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("way", ["--url", "--grpc"])
def test_unreachable_server_is_one_line_within_seconds(way: str, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(line_png("x"))
    port = free_port()  # nobody listens on it
    target = f"http://127.0.0.1:{port}" if way == "--url" else f"127.0.0.1:{port}"
    run = ocr(image, way, target)
    assert run.code == 1
    assert run.seconds < 10
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("ocr: cannot reach the ")
    assert str(port) in lines[0]
    assert "Traceback" not in run.stderr
    assert run.stdout == b""


def test_live_progress_only_on_a_terminal(platform: Platform, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for number in range(3):
        (folder / f"line-{number}.png").write_bytes(line_png(f"Progress line {number}"))
    code, output = in_terminal(folder, "--out", tmp_path / "out", "--url", platform.url)
    text = output.decode(errors="replace")
    assert code == 0, text
    assert "\x1b[" in text  # drawn and redrawn in place
    assert "100%" in text
    assert "3/3 files" in text
    assert "3/3 pages" in text
    assert "pages/s" in text
    assert "3 files read (3 pages)" in text
    # The same batch without a terminal: plain lines only.
    plain = ocr(folder, "--out", tmp_path / "plain", "--url", platform.url)
    assert plain.code == 0, plain.stderr
    assert "\x1b" not in plain.stderr
    assert "%" not in plain.stderr
    assert len([line for line in plain.stderr.splitlines() if "] " in line]) == 3


def test_grpc_gives_the_gateways_answers(platform: Platform, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "line.png").write_bytes(line_png("Same answer both ways"))
    (folder / "wide.png").write_bytes(encode(render_line("Another line", size=(900, 90))))
    pages = line_pages("First page read", "Second page read")
    (folder / "two.tif").write_bytes(multipage(pages, "TIFF"))
    (folder / "two.pdf").write_bytes(scanned_pdf(pages, dpi=150))
    grpc_target = f"127.0.0.1:{platform.model_grpc_port}"
    outs: dict[str, Path] = {}
    for way, target in (("--url", platform.url), ("--grpc", grpc_target)):
        outs[way] = tmp_path / way.strip("-")
        run = ocr(folder, "--out", outs[way], "--format", "txt,json,tsv", way, target)
        assert run.code == 0, run.stderr
    # two.tif and two.pdf share a stem: they are written under their whole names.
    for stem in ("line", "wide", "two.tif", "two.pdf"):
        for ext in ("txt", "tsv"):
            by_url = (outs["--url"] / f"{stem}.{ext}").read_bytes()
            assert by_url == (outs["--grpc"] / f"{stem}.{ext}").read_bytes(), (stem, ext)
        via_url = json.loads((outs["--url"] / f"{stem}.json").read_text())
        via_grpc = json.loads((outs["--grpc"] / f"{stem}.json").read_text())
        for field in ("text", "confidence", "words", "page_count"):
            assert via_url[field] == via_grpc[field], (stem, field)
        assert _untimed(via_url["pages"]) == _untimed(via_grpc["pages"]), stem
    two = (outs["--grpc"] / "two.pdf.txt").read_text()
    assert "First page" in two
    assert "Second page" in two
    assert "\f" in two  # pages joined as the gateway joins them


def _untimed(pages: list[dict[str, object]]) -> list[dict[str, object]]:
    """Page entries without their timings, which differ from one reading to the next."""
    return [{k: v for k, v in page.items() if k != "timings"} for page in pages]


def test_a_refused_api_key_stops_the_batch(limited: str, tmp_path: Path) -> None:
    # Refused before the rate limit is looked at: the limited gateway's minute is not used.
    folder = tmp_path / "in"
    folder.mkdir()
    for number in range(3):
        (folder / f"{number}.png").write_bytes(line_png(f"Key {number}"))
    for extra in ((), ("--api-key", "wrong-key-0123456789")):
        run = ocr(folder, "--out", tmp_path / "out", "--jobs", "1", "--url", limited, *extra)
        assert run.code == 1, run.stderr
        assert "refused the API key" in run.stderr
        assert "401 unauthorized" in run.stderr
        assert "2 not started" in run.stderr
        assert "--skip-existing" in run.stderr
        assert not (tmp_path / "out").exists()


def test_429_is_waited_out_and_the_file_read(limited: str, tmp_path: Path) -> None:
    """Last in the module: the limited gateway's minute has mostly passed since its one upload."""
    image = tmp_path / "busy.png"
    image.write_bytes(line_png("Read after waiting"))
    run = ocr(image, "--out", tmp_path / "out", "--url", limited, env={"OCR_API_KEY": API_KEY})
    assert run.code == 0, run.stderr
    assert "Read after waiting" in (tmp_path / "out" / "busy.txt").read_text()
    assert "[429 rate_limited]" in run.stderr
    assert "trying again in" in run.stderr
    assert "1 file read (1 page)" in run.stderr
