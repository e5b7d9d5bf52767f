"""The live progress bar on a terminal, drawn by rich on standard error.

The bar shows the percent of pages done, files and pages done, pages per second and the time
left; each failure and retry is printed above it as it happens. Imported only when standard
error is a terminal, so a batch in a log or CI never loads rich.
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from cli.batch import FileResult, Summary
from cli.progress import files_phrase, pages_phrase, result_line, summary_lines


def terminal_console(stream: TextIO) -> Console | None:
    """A rich console drawing on `stream`, or None when it is no terminal that can redraw a
    line (`TERM=dumb`, say): plain lines then."""
    console = Console(file=stream, stderr=True)
    if console.is_terminal and not console.is_dumb_terminal:
        return console
    return None


class _PagesPerSecond(ProgressColumn):
    """Pages read per second (rich's estimate over the last half minute)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- pages/s" if speed is None else f"{speed:.1f} pages/s")


class RichReporter:
    """A live bar on the terminal `console`; failures and retries printed above it.

    `transient` clears the bar at the end (one file to stdout); `summary` prints the summary."""

    def __init__(self, console: Console, *, transient: bool = False, summary: bool = True) -> None:
        self._console = console
        self._summary = summary
        self._progress = Progress(
            TextColumn("ocr"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[files]}"),
            TextColumn("{task.completed:.0f}/{task.total:.0f} pages"),
            _PagesPerSecond(),
            TimeRemainingColumn(),
            console=console,
            transient=transient,
            refresh_per_second=8,
        )
        self._task = self._progress.add_task("ocr", total=None, files="", start=False)
        self._done = 0
        self._total = 0

    def _files_field(self) -> str:
        return f"{self._done}/{self._total} files"

    def start(self, files: int, pages: int, description: str) -> None:
        self._total = files
        if self._summary:  # a batch, not one answer on stdout
            line = f"ocr: {files_phrase(files)} ({pages_phrase(pages)}) {description}"
            self._console.print(line, markup=False, highlight=False)
        self._progress.update(self._task, total=max(pages, 1), files=self._files_field())
        self._progress.start_task(self._task)
        self._progress.start()

    def file_done(self, result: FileResult) -> None:
        self._done += 1
        if result.status == "failed":
            line = f"ocr: {result_line(result, self._done, self._total)}"
            self._console.print(Text(line, style="red"), highlight=False)
        self._progress.update(self._task, advance=result.pages, files=self._files_field())

    def note(self, message: str) -> None:
        self._console.print(Text(f"ocr: {message}", style="yellow"), highlight=False)

    def finish(self, summary: Summary) -> None:
        self._progress.refresh()
        self._progress.stop()
        if self._summary:
            for line in summary_lines(summary):
                self._console.print(f"ocr: {line}", markup=False, highlight=False)
        elif summary.stopped:
            self._console.print(f"ocr: stopped: {summary.stopped}", markup=False, highlight=False)
