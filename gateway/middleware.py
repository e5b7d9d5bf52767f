"""Pure-ASGI middleware: request context (id, unhandled errors) and the upload size limit."""

import logging
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.context import REQUEST_ID_HEADER, begin_request, request_id_of
from gateway.errors import InternalError, PayloadTooLargeError
from gateway.handlers import error_response, render_error

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


class _BodyTooLarge(Exception):
    """Raised into the app's ``receive`` once the 413 answer has been sent."""


class UploadLimitMiddleware:
    """Answers 413 for request bodies over ``max_upload_bytes`` plus multipart overhead.

    A declared ``Content-Length`` over the limit is refused before any body byte is read; a body
    without one is counted as it streams through ``receive`` and refused as soon as it passes
    the limit, without buffering it first.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_upload_bytes: int,
        overhead_bytes: int = MULTIPART_OVERHEAD_BYTES,
    ) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.max_body_bytes = max_upload_bytes + overhead_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        refused = False
        response_started = False

        async def receive_with_limit() -> Message:
            nonlocal received, refused
            if refused:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    if response_started:
                        raise _BodyTooLarge  # Cannot answer 413 any more; abort the request.
                    refused = True
                    await self._refuse(scope, receive, send)
                    raise _BodyTooLarge
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # The app's answer to the aborted body; the 413 is already sent.
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive_with_limit, send_unless_refused)
        except _BodyTooLarge:
            if not refused:
                raise

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLargeError(self.max_upload_bytes)
        logger.info("request %s refused: %s", request_id_of(scope), error.message)
        response = error_response(
            error.status,
            error.code,
            error.message,
            request_id_of(scope),
            # The unread body makes the connection unusable for another request.
            {"Connection": "close"},
        )
        await response(scope, receive, send)
