"""What `ocr` needs of a server, whichever way it talks to it (the gateway over HTTP, or the
model server over KServe v2 gRPC): one answer per file and format, or an error that says
whether asking again may help.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cli.args import ReadOptions
from cli.formats import CliFormat


@dataclass(frozen=True, slots=True)
class Answer:
    """One file read in one format."""

    content: bytes
    """The answer as the gateway serves it: text, JSON, hOCR, TSV, ALTO or PDF bytes."""
    failed_pages: tuple[int, ...] = ()
    """Pages of a document that could not be read (the rest of it is in `content`)."""


class ServerError(Exception):
    """The server answered with an error (the gateway's error table, or its gRPC twin)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        """The HTTP status (for gRPC, the status the gateway would have answered)."""
        self.code = code
        """The stable error code, e.g. `rate_limited`."""
        self.message = message
        self.request_id = request_id
        self.retry_after_s = retry_after_s
        """What the server's `Retry-After` asked for, in seconds; None without one."""

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.message} [{self.status} {self.code}]{where}"


class TransportError(Exception):
    """The request never got an answer: connection refused, reset or lost."""


class Unreachable(Exception):
    """The server cannot be reached at all: the batch stops with this one-line message."""


class Backend(Protocol):
    """A server `ocr` reads files with."""

    async def check(self) -> None:
        """Return once the server answers; :class:`Unreachable` within seconds if it does not."""

    async def read(
        self, data: bytes, filename: str, output_format: CliFormat, options: ReadOptions
    ) -> Answer:
        """`data` (a whole file) read with `options`, answered in `output_format`.

        Raises :class:`ServerError` for an error answer and :class:`TransportError` when no
        answer came."""

    async def aclose(self) -> None:
        """Release connections."""
