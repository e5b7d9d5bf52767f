"""Without a terminal, progress is plain lines (no escape codes) and a summary at the end."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cli.batch import FileResult, Summary
from cli.progress import PlainReporter, reporter_for, summary_lines

pytestmark = pytest.mark.unit


def test_plain_lines_per_file_and_a_summary() -> None:
    stream = io.StringIO()
    reporter = PlainReporter(stream)
    reporter.start(2, 3, "via the gateway at http://x, 4 at a time")
    reporter.file_done(FileResult("a.png", "read", 1, (Path("out/a.txt"),), 0.25))
    reporter.note("b.pdf: busy; trying again in 2 s (attempt 2 of 6)")
    reporter.file_done(FileResult("b.pdf", "failed", 2, message="corrupt [422 x]"))
    summary = Summary(read=1, pages_read=1, seconds=0.5, failed=[("b.pdf", "corrupt [422 x]")])
    reporter.finish(summary)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "ocr: 2 files (3 pages) via the gateway at http://x, 4 at a time",
        "ocr: [1/2] a.png: 1 page -> out/a.txt (0.25 s)",
        "ocr: b.pdf: busy; trying again in 2 s (attempt 2 of 6)",
        "ocr: [2/2] b.pdf: FAILED: corrupt [422 x]",
        "ocr: 1 file read (1 page) in 0.50 s, 2.0 pages/s; 1 failed",
        "ocr:   failed: b.pdf: corrupt [422 x]",
    ]
    assert "\x1b" not in stream.getvalue()


def test_summary_says_what_was_left_and_how_to_resume() -> None:
    summary = Summary(
        read=3,
        pages_read=5,
        seconds=2.0,
        skipped_existing=2,
        not_images=["n.txt"],
        not_started=4,
        stopped="lost the gateway at http://x: connection refused",
    )
    lines = summary_lines(summary)
    assert lines[0] == (
        "3 files read (5 pages) in 2.00 s, 2.5 pages/s; 2 skipped (outputs exist), "
        "1 not images or PDFs (left alone), 4 not started"
    )
    assert "  left alone: n.txt" in lines
    assert lines[-2] == "stopped: lost the gateway at http://x: connection refused"
    assert "--skip-existing" in lines[-1]
    assert not summary.ok


def test_quiet_and_single_answers_show_failures_only() -> None:
    stream = io.StringIO()
    reporter = reporter_for(stream, quiet=True, single=False)
    reporter.start(1, 1, "via x")
    reporter.note("retrying")
    reporter.file_done(FileResult("a.png", "read", 1))
    reporter.file_done(FileResult("b.png", "failed", 1, message="corrupt"))
    reporter.finish(Summary(read=1, pages_read=1, seconds=1.0))
    assert stream.getvalue() == "ocr: [2/1] b.png: FAILED: corrupt\n"


def test_no_terminal_no_live_bar() -> None:
    assert isinstance(reporter_for(io.StringIO(), quiet=False, single=False), PlainReporter)
