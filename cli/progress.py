"""How a batch shows itself on standard error: a live bar on a terminal, plain lines elsewhere.

On a terminal (:func:`reporter_for` asks `isatty`), :mod:`cli.live` draws a bar with rich.
Anywhere else (a log, CI, a pipe) each file's end is one plain line with no escape codes, so
logs stay readable. Standard output is left to the answers.
"""

from __future__ import annotations

from typing import TextIO

from cli.batch import FileResult, Reporter, Summary

#: Failures listed in full by the summary; beyond them only their count.
MAX_LISTED_FAILURES = 20
#: Names of skipped files (not images) listed by the summary.
MAX_LISTED_SKIPPED = 5


def pages_phrase(count: int) -> str:
    """`1 page`, `3 pages`."""
    return f"{count} page" if count == 1 else f"{count} pages"


def files_phrase(count: int) -> str:
    """`1 file`, `3 files`."""
    return f"{count} file" if count == 1 else f"{count} files"


def summary_lines(summary: Summary) -> list[str]:
    """The batch's last words: what was read, how fast, and everything that went wrong."""
    rate = summary.pages_read / summary.seconds if summary.seconds > 0 else 0.0
    head = (
        f"{files_phrase(summary.read)} read ({pages_phrase(summary.pages_read)}) in "
        f"{summary.seconds:.2f} s, {rate:.1f} pages/s"
    )
    extras = []
    if summary.failed:
        extras.append(f"{len(summary.failed)} failed")
    if summary.skipped_existing:
        extras.append(f"{summary.skipped_existing} skipped (outputs exist)")
    if summary.not_images:
        extras.append(f"{len(summary.not_images)} not images or PDFs (left alone)")
    if summary.not_started:
        extras.append(f"{summary.not_started} not started")
    lines = [head + ("; " + ", ".join(extras) if extras else "")]
    for name, why in summary.failed[:MAX_LISTED_FAILURES]:
        lines.append(f"  failed: {name}: {why}")
    if len(summary.failed) > MAX_LISTED_FAILURES:
        lines.append(f"  ... and {len(summary.failed) - MAX_LISTED_FAILURES} more failed")
    if summary.not_images:
        shown = ", ".join(summary.not_images[:MAX_LISTED_SKIPPED])
        more = " ..." if len(summary.not_images) > MAX_LISTED_SKIPPED else ""
        lines.append(f"  left alone: {shown}{more}")
    if summary.stopped:
        lines.append(f"stopped: {summary.stopped}")
        lines.append("  run the same command with --skip-existing to resume")
    return lines


def result_line(result: FileResult, done: int, total: int) -> str:
    """One file's end as a plain line."""
    where = f"[{done}/{total}] {result.name}"
    if result.status == "skipped":
        return f"{where}: skipped, its outputs exist"
    if result.status == "failed":
        return f"{where}: FAILED: {result.message}"
    outputs = ", ".join(str(path) for path in result.outputs) or "stdout"
    return f"{where}: {pages_phrase(result.pages)} -> {outputs} ({result.seconds:.2f} s)"


class PlainReporter:
    """Plain lines on `stream`: `lines` a line per file, `notes` retries and warnings,
    `summary` the summary; failures are always shown."""

    def __init__(
        self, stream: TextIO, *, lines: bool = True, notes: bool = True, summary: bool = True
    ) -> None:
        self._stream = stream
        self._lines = lines
        self._notes = notes
        self._summary = summary
        self._done = 0
        self._total = 0

    def _print(self, text: str) -> None:
        print(f"ocr: {text}", file=self._stream, flush=True)

    def start(self, files: int, pages: int, description: str) -> None:
        self._total = files
        if self._lines:
            self._print(f"{files_phrase(files)} ({pages_phrase(pages)}) {description}")

    def file_done(self, result: FileResult) -> None:
        self._done += 1
        if self._lines or result.status == "failed":
            self._print(result_line(result, self._done, self._total))

    def note(self, message: str) -> None:
        if self._notes:
            self._print(message)

    def finish(self, summary: Summary) -> None:
        if self._summary:
            for line in summary_lines(summary):
                self._print(line)
        elif summary.stopped:
            self._print(f"stopped: {summary.stopped}")


def reporter_for(stream: TextIO, *, quiet: bool, single: bool) -> Reporter:
    """The reporter for `stream` (standard error): live on a terminal, plain lines otherwise.

    `quiet` shows failures only; `single` (one answer to stdout) shows no summary when all
    went well, so `ocr scan.png` prints the text and nothing else."""
    if quiet:
        return PlainReporter(stream, lines=False, notes=False, summary=False)
    if stream.isatty():
        from cli.live import RichReporter, terminal_console  # rich only where it draws

        console = terminal_console(stream)
        if console is not None:
            return RichReporter(console, transient=single, summary=not single)
    if single:
        return PlainReporter(stream, lines=False, notes=True, summary=False)
    return PlainReporter(stream)
