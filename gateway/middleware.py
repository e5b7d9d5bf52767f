"""Pure-ASGI middleware: request context (id, unhandled errors) and the guard of request bodies."""

import asyncio
import logging
from collections.abc import Callable
from typing import Final, NoReturn

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.context import REQUEST_ID_HEADER, begin_request, request_id_of
from gateway.errors import (
    GatewayBusyError,
    GatewayError,
    InternalError,
    PayloadTooLargeError,
    RequestTimeoutError,
)
from gateway.handlers import render_error

logger = logging.getLogger(__name__)

# Multipart framing (boundaries, part headers) and small form fields beside the image itself.
MULTIPART_OVERHEAD_BYTES: Final = 64 * 1024


class RequestContextMiddleware:
    """Gives each request an id (echoed as ``X-Request-ID``) and answers unhandled errors.

    An exception escaping the app is logged with its traceback and answered as a generic 500
    JSON error body; the client never sees the traceback.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = begin_request(scope, Headers(scope=scope).get(REQUEST_ID_HEADER))
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            logger.exception(
                "unhandled error in %s %s (request %s)", scope["method"], scope["path"], request_id
            )
            if response_started:
                raise  # Too late for an error body; the server drops the connection.
            response = render_error(InternalError(), request_id)
            await response(scope, receive, send_with_request_id)


class _BodyRefused(Exception):
    """Raised into the app's ``receive`` once the refusal (413, 408, 503) has been sent."""


class InflightUploads:
    """Request body bytes held by requests under way, against a cap shared by all of them.

    A request with a ``Content-Length`` reserves it whole when it arrives; a chunked body
    reserves its bytes as they arrive. Both give them back when the request ends. A request is
    always admitted while no other holds bytes, so a cap never refuses a lone upload. Used from
    the event loop only: no lock.
    """

    def __init__(self, cap: int | None, on_change: Callable[[int], None] | None = None) -> None:
        self.cap = cap
        self.held = 0
        self._on_change = on_change

    def reserve(self, size: int, already_held: int = 0) -> bool:
        """Hold ``size`` more bytes for a request holding ``already_held``; False when full."""
        if self.cap is not None and self.held > already_held and self.held + size > self.cap:
            return False
        self._change(size)
        return True

    def release(self, size: int) -> None:
        """Give back ``size`` bytes held by a request that ended."""
        self._change(-size)

    def _change(self, delta: int) -> None:
        self.held += delta
        if self._on_change is not None:
            self._on_change(self.held)


class UploadLimitMiddleware:
    """Guards the receipt of request bodies: their size, the bytes held at once and their pace.

    - 413 for a body over ``max_upload_bytes`` plus multipart overhead: a declared
      ``Content-Length`` over the limit is refused before any body byte is read; a body without
      one is counted as it streams through ``receive`` and refused as soon as it passes the limit,
      without buffering it first.
    - 503 ``gateway_busy`` when the body would take the bytes held by all requests under way
      past ``inflight``'s cap (see :class:`InflightUploads`).
    - 408 ``request_timeout`` when the whole body has not arrived ``body_timeout_s`` after the
      request did: a client sending headers and then nothing (or a trickle) holds a connection,
      memory and spooled temporary files only that long. The form parser deletes its
      temporary files when the refusal is raised into it.

    Each refusal closes the connection (the rest of the body is never read).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_upload_bytes: int,
        overhead_bytes: int = MULTIPART_OVERHEAD_BYTES,
        inflight: InflightUploads | None = None,
        body_timeout_s: float | None = None,
    ) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.max_body_bytes = max_upload_bytes + overhead_bytes
        self.inflight = inflight or InflightUploads(None)
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared_header = Headers(scope=scope).get("content-length")
        declared = (
            int(declared_header)
            if declared_header is not None and declared_header.isdigit()
            else None
        )
        if declared is not None and declared > self.max_body_bytes:
            await self._refuse(PayloadTooLargeError(self.max_upload_bytes), scope, receive, send)
            return
        if declared and not self.inflight.reserve(declared):
            await self._refuse(GatewayBusyError(), scope, receive, send)
            return
        held = declared or 0
        deadline = (
            None
            if self.body_timeout_s is None
            else asyncio.get_running_loop().time() + self.body_timeout_s
        )

        received = 0
        body_complete = False
        refused = False
        response_started = False

        async def refuse(error: GatewayError) -> NoReturn:
            nonlocal refused
            if not response_started:  # Otherwise too late for an answer: abort the request.
                refused = True
                await self._refuse(error, scope, receive, send)
            raise _BodyRefused

        async def guarded_receive() -> Message:
            nonlocal received, body_complete, held
            if refused:
                raise _BodyRefused
            if body_complete or deadline is None:
                message = await receive()
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    assert self.body_timeout_s is not None
                    await refuse(RequestTimeoutError(self.body_timeout_s))
            if message["type"] != "http.request":
                return message
            chunk = len(message.get("body", b""))
            received += chunk
            body_complete = not message.get("more_body", False)
            if received > self.max_body_bytes:
                await refuse(PayloadTooLargeError(self.max_upload_bytes))
            if declared is None and chunk:
                if not self.inflight.reserve(chunk, already_held=held):
                    await refuse(GatewayBusyError())
                held += chunk
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # The app's answer to the aborted body; the refusal is already sent.
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, send_unless_refused)
        except _BodyRefused:
            if not refused:
                raise
        finally:
            if held:
                self.inflight.release(held)

    async def _refuse(
        self, error: GatewayError, scope: Scope, receive: Receive, send: Send
    ) -> None:
        logger.info("request %s refused: %s", request_id_of(scope), error.message)
        # Each refusal leaves body bytes unread: the connection cannot serve another request.
        response = render_error(error, request_id_of(scope), {"Connection": "close"})
        await response(scope, receive, send)
