"""A batch: every planned file read by `jobs` concurrent workers, each result reported as it ends.

A worker takes the next file, reads it from disk, asks the server once per format (with the
retries of :mod:`cli.retry`) and writes each answer, then takes the next. A file that fails is
reported and the batch goes on. What would fail every file alike stops the batch instead (no
connection to the server after retries, a refused API key, a server that stays unavailable):
the files in flight end, the rest are left for `--skip-existing` to resume.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from cli.args import Invocation
from cli.backend import Backend, ServerError, TransportError
from cli.outputs import Planned, write_atomic
from cli.retry import RETRY_STATUSES, RetryPolicy, whole_seconds, with_retries

Status = Literal["read", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class FileResult:
    """How one file ended."""

    name: str
    status: Status
    pages: int
    """The file's pages (as counted for the progress bar)."""
    outputs: tuple[Path, ...] = ()
    seconds: float = 0.0
    message: str = ""
    """Why it failed (or the pages that failed while the rest was written)."""


@dataclass
class Summary:
    """The whole batch, for the last lines."""

    read: int = 0
    pages_read: int = 0
    skipped_existing: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(file, why) of each file that failed, in the order they ended."""
    not_images: list[str] = field(default_factory=list)
    """Files in folders that are no accepted format, left alone."""
    not_started: int = 0
    stopped: str | None = None
    """Why the batch stopped early; None when it ran to its end."""
    seconds: float = 0.0
    """From the first request to the last answer."""

    @property
    def ok(self) -> bool:
        return not self.failed and self.stopped is None


class Reporter(Protocol):
    """Shows the batch as it goes: a live bar on a terminal, plain lines elsewhere."""

    def start(self, files: int, pages: int, description: str) -> None:
        """The batch begins: `files` to read holding `pages` pages."""

    def file_done(self, result: FileResult) -> None:
        """A file ended (read, failed or skipped)."""

    def note(self, message: str) -> None:
        """Something worth a line that is not a file's end (a retry, a stop)."""

    def finish(self, summary: Summary) -> None:
        """The batch ended; the reporter shows the summary and releases the terminal."""


@dataclass
class Batch:
    """One run over `planned`: the server, how to ask it, where results go."""

    planned: Sequence[Planned]
    pages: Sequence[int]
    """Each planned file's page count, in the same order."""
    backend: Backend
    invocation: Invocation
    reporter: Reporter
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    summary: Summary = field(default_factory=Summary)
    for_stdout: list[bytes] = field(default_factory=list)
    """The answers without targets (a single input, no --out), for the caller to write to
    stdout once the progress bar is gone: drawn on the same terminal, they would mix."""
    _ended: int = field(default=0, init=False, repr=False)

    async def run(self) -> Summary:
        """Read every file; the summary once all have ended or the batch stopped."""
        summary = self.summary
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(self.planned)):
            queue.put_nowait(index)
        started = time.perf_counter()
        workers = min(self.invocation.jobs, len(self.planned))
        try:
            await asyncio.gather(*(self._worker(queue) for _ in range(workers)))
        except asyncio.CancelledError:  # Ctrl-C: what was in flight is left unread
            summary.stopped = summary.stopped or "interrupted"
            raise
        finally:
            summary.not_started += len(self.planned) - self._ended
            summary.seconds = time.perf_counter() - started
        return summary

    async def _worker(self, queue: asyncio.Queue[int]) -> None:
        while self.summary.stopped is None:
            try:
                index = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            result = await self._one(self.planned[index], self.pages[index])
            self._ended += 1
            if result.status == "read":
                self.summary.read += 1
                self.summary.pages_read += result.pages
            elif result.status == "failed":
                self.summary.failed.append((result.name, result.message))
            else:
                self.summary.skipped_existing += 1
            self.reporter.file_done(result)

    async def _one(self, planned: Planned, pages: int) -> FileResult:
        item = planned.item
        if self.invocation.skip_existing and planned.done_already():
            return FileResult(item.name, "skipped", pages, tuple(planned.targets.values()))
        started = time.perf_counter()
        try:
            data = item.read()
        except OSError as err:
            return FileResult(item.name, "failed", pages, message=f"cannot be read: {err}")
        options = self.invocation.options
        written: list[Path] = []
        failed_pages: set[int] = set()
        for output_format in self.invocation.formats:
            try:
                answer = await with_retries(
                    functools.partial(
                        self.backend.read, data, item.filename, output_format, options
                    ),
                    self.policy,
                    on_retry=functools.partial(self._retrying, item.name),
                )
            except (ServerError, TransportError) as error:
                self._maybe_stop(error)
                return FileResult(
                    item.name, "failed", pages, tuple(written), _elapsed(started), str(error)
                )
            failed_pages.update(answer.failed_pages)
            target = planned.targets.get(output_format.name)
            if target is None:
                self.for_stdout.append(answer.content)
                continue
            try:
                write_atomic(target, answer.content)
            except OSError as err:
                why = f"cannot write {target}: {err.strerror or err}"
                return FileResult(
                    item.name, "failed", pages, tuple(written), _elapsed(started), why
                )
            written.append(target)
        if failed_pages:
            numbers = ",".join(map(str, sorted(failed_pages)))
            which = f"page {numbers}" if len(failed_pages) == 1 else f"pages {numbers}"
            message = f"{which} could not be read (the others are written)"
            return FileResult(
                item.name, "failed", pages, tuple(written), _elapsed(started), message
            )
        return FileResult(item.name, "read", pages, tuple(written), _elapsed(started))

    def _retrying(self, name: str, error: Exception, attempt: int, wait: float) -> None:
        limit = (
            self.policy.transport_attempts
            if isinstance(error, TransportError)
            else self.policy.max_attempts
        )
        self.reporter.note(
            f"{name}: {error}; trying again in {whole_seconds(wait)} "
            f"(attempt {attempt + 1} of {limit})"
        )

    def _maybe_stop(self, error: Exception) -> None:
        """Stop the batch when `error` is one every other file would meet too."""
        if self.summary.stopped is not None:
            return
        server = self.invocation.server
        if isinstance(error, TransportError):
            self.summary.stopped = f"lost {server}: {error}"
        elif isinstance(error, ServerError) and error.status == 401:
            self.summary.stopped = f"{server} refused the API key: {error.message}"
        elif isinstance(error, ServerError) and error.status in RETRY_STATUSES - {429}:
            self.summary.stopped = f"{server} stayed unavailable: {error}"


def _elapsed(started: float) -> float:
    return time.perf_counter() - started
