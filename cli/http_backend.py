"""Files read through the gateway: `POST /gateway/ocr`, one multipart upload per file and format.

One aiohttp session holds a connection per job, kept alive across files. aiohttp rather than
httpx: the CLI usually shares the machine's cores with the platform it feeds, and aiohttp spends
about a third of httpx's CPU on an upload (0.55 vs 1.5-1.9 ms measured here on a one-line
image), which is what keeps `ocr --jobs 8` at the platform's own benchmark throughput
(`python -m bench.cli`). Connecting is given a few seconds, an answer `timeout_s` (documents
take a while). An error answer is the gateway's `{"error": {"code", "message", "request_id"}}`
with its status and `Retry-After`.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Mapping
from typing import Any, Final

import aiohttp

from cli.args import OCR_PATH, ReadOptions
from cli.backend import Answer, ServerError, TransportError, Unreachable
from cli.formats import CliFormat
from cli.inputs import SNIFF_BYTES, sniff
from cli.retry import parse_retry_after

#: Seconds to open a connection: a server that is up accepts at once.
CONNECT_TIMEOUT_S: Final = 5.0
#: Seconds `check` waits for the gateway's liveness answer.
CHECK_TIMEOUT_S: Final = 5.0
#: Names the pages of a file answer that could not be read, e.g. `2,5`.
FAILED_PAGES_HEADER: Final = "X-OCR-Failed-Pages"
_USER_AGENT: Final = "ocr-cli"


class HttpBackend:
    """The gateway at `base_url`, `jobs` uploads at a time. Build it inside the event loop
    that uses it (an aiohttp session belongs to one loop)."""

    def __init__(self, base_url: str, *, api_key: str | None, jobs: int, timeout_s: float) -> None:
        self._base_url = base_url
        self._ocr_url = base_url + OCR_PATH
        headers = {"User-Agent": _USER_AGENT}
        if api_key:
            headers["X-API-Key"] = api_key
        self._timeout_s = timeout_s
        self._session = aiohttp.ClientSession(
            headers=headers,
            connector=aiohttp.TCPConnector(limit=jobs),
            timeout=aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT_S, sock_read=timeout_s),
        )

    async def check(self) -> None:
        try:
            async with self._session.get(
                self._base_url + "/healthz", timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S)
            ) as response:
                status = response.status
        except TimeoutError:
            raise Unreachable(
                f"the gateway at {self._base_url} did not answer within {CHECK_TIMEOUT_S:.0f} s"
            ) from None
        except aiohttp.ClientError as err:
            why = _why(err)
            raise Unreachable(f"cannot reach the gateway at {self._base_url}: {why}") from None
        if status != 200:
            raise Unreachable(
                f"{self._base_url} does not look like the OCR gateway: GET /healthz answered "
                f"{status}"
            )

    async def read(
        self, data: bytes, filename: str, output_format: CliFormat, options: ReadOptions
    ) -> Answer:
        sniffed = sniff(data[:SNIFF_BYTES])
        media_type = sniffed[1] if sniffed else "application/octet-stream"
        fields = {**options.form_fields(), "format": output_format.api_name}
        body, content_type = multipart_body(fields, filename, data, media_type)
        request_id = f"ocr-cli-{uuid.uuid4().hex[:16]}"
        headers = {"Content-Type": content_type, "X-Request-ID": request_id}
        try:
            async with self._session.post(self._ocr_url, data=body, headers=headers) as response:
                content = await response.read()
                status, reason = response.status, response.reason
                answer_headers: Mapping[str, str] = response.headers
        except aiohttp.ConnectionTimeoutError:
            raise TransportError("connecting timed out") from None
        except TimeoutError:
            raise ServerError(
                504,
                "client_timeout",
                f"no answer within {self._timeout_s:.0f} s (see --timeout)",
                request_id=request_id,
            ) from None
        except aiohttp.ClientError as err:
            raise TransportError(_why(err)) from None
        if status != 200:
            raise _server_error(status, reason, content, answer_headers, request_id)
        return Answer(content, _failed_pages(content, answer_headers, output_format))

    async def aclose(self) -> None:
        await self._session.close()


def multipart_body(
    fields: Mapping[str, str], filename: str, data: bytes, media_type: str
) -> tuple[bytes, str]:
    """A `multipart/form-data` body of `fields` and the file `data` as `image_file`, and its
    Content-Type, built in one piece so that it leaves in one write."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    # As browsers write a file name: quotes and line breaks percent-encoded.
    quoted = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    head = (
        "".join(parts) + f'--{boundary}\r\nContent-Disposition: form-data; name="image_file"; '
        f'filename="{quoted}"\r\nContent-Type: {media_type}\r\n\r\n'
    )
    tail = f"\r\n--{boundary}--\r\n"
    return head.encode() + data + tail.encode(), f"multipart/form-data; boundary={boundary}"


def _server_error(
    status: int, reason: str | None, content: bytes, headers: Mapping[str, str], request_id: str
) -> ServerError:
    """The gateway's error answer; a non-gateway answer (a proxy's page) by its status."""
    code, message = "http_error", reason or "error"
    try:
        error: Any = json.loads(content)["error"]
        code, message = str(error["code"]), str(error["message"])
        request_id = str(error.get("request_id") or request_id)
    except (ValueError, KeyError, TypeError):
        pass
    return ServerError(
        status,
        code,
        message,
        request_id=request_id,
        retry_after_s=parse_retry_after(headers.get("Retry-After")),
    )


def _failed_pages(
    content: bytes, headers: Mapping[str, str], output_format: CliFormat
) -> tuple[int, ...]:
    """The pages the gateway could not read: its header on a file answer, the `error`
    entries of `pages` in JSON."""
    header = headers.get(FAILED_PAGES_HEADER)
    if header:
        return tuple(int(n) for n in header.split(",") if n.strip().isdigit())
    if output_format.api_name != "json":
        return ()
    try:
        pages = json.loads(content).get("pages") or []
    except (ValueError, AttributeError):
        return ()
    return tuple(
        int(page["page"])
        for page in pages
        if isinstance(page, dict) and page.get("error") and isinstance(page.get("page"), int)
    )


def _why(err: BaseException) -> str:
    """A short reason for a transport failure (`connection refused`), from the OS error that
    caused it when there is one."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror | aiohttp.ClientConnectorDNSError):
            return "unknown host"
        if isinstance(seen, ConnectionResetError | aiohttp.ServerDisconnectedError):
            return "connection closed by the server"
        if isinstance(seen, aiohttp.ClientConnectorError):
            seen = seen.os_error
            continue
        seen = seen.__cause__ or seen.__context__
    text = str(err) or type(err).__name__
    return text.splitlines()[0]
