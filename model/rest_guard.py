"""What the REST side (KServe's FastAPI app) refuses before any work, and how it fails.

`RestGuardMiddleware`, an ASGI middleware on KServe's app:

- answers 404 to the model repository extension (`/v2/repository/...`: load, unload, index),
  so no client can unload the model (KServe registers those routes unconditionally);
- answers 413 to a body over `max_body_bytes`: from `Content-Length` before the body is read,
  and as soon as a chunked body passes the limit (the connection is then closed);
- with an `intake`, holds the bytes of a body from its `Content-Length` before reading it, and
  answers 429 with `Retry-After` when the engine holds too many already (see `model.intake`);
- answers an unexpected exception with a fixed 500 `{"error": "internal error"}` and logs it
  (KServe's own handler answers `"<ExceptionClass> : <message>"`).
"""

from __future__ import annotations

import json
import logging
from typing import Final

from .auth import ASGIApp, Message, Receive, Scope, Send
from .errors import INTERNAL_ERROR, ModelOverloaded
from .intake import Intake

logger = logging.getLogger(__name__)

#: Where KServe serves the model repository extension.
REPOSITORY_PREFIX: Final = "/v2/repository"


class _BodyTooLarge(Exception):
    """Raised to the app reading a chunked body that passed the limit."""


def _json_response(
    status: int, message: str, *, close: bool = False, retry_after: str | None = None
) -> tuple[Message, Message]:
    body = json.dumps({"error": message}, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    if retry_after is not None:
        headers.append((b"retry-after", retry_after.encode()))
    start: Message = {"type": "http.response.start", "status": status, "headers": headers}
    return start, {"type": "http.response.body", "body": body}


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class RestGuardMiddleware:
    """See the module docstring; `max_body_bytes` is `OCR_MODEL_MAX_REST_BODY_BYTES`."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, intake: Intake | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.intake = intake
        self._too_large = _json_response(
            413, f"request body over the limit of {max_body_bytes} bytes", close=True
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == REPOSITORY_PREFIX or path.startswith(REPOSITORY_PREFIX + "/"):
            for message in _json_response(404, "not found"):
                await send(message)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            for message in self._too_large:
                await send(message)
            return
        if self.intake is None or not length:
            await self._guarded(scope, receive, send)
            return
        try:
            hold = self.intake.hold(length)
        except ModelOverloaded as refusal:
            busy = _json_response(429, refusal.details, retry_after=refusal.retry_after_header)
            for message in busy:
                await send(message)
            return
        with self.intake.holding(hold):
            await self._guarded(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        too_large = False  # the body passed the limit: reads fail from then on
        started = False  # a response has started
        answered = False  # ours (413 or 500) has been sent: the app's is dropped

        async def counting_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def answer(response: tuple[Message, Message]) -> None:
            nonlocal started, answered
            started = answered = True
            for message in response:
                await send(message)

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                # The app answers the read it could not finish (FastAPI: 400); ours goes instead.
                if message["type"] == "http.response.start":
                    await answer(self._too_large)
                return
            if not answered:
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if started:
                raise
            await answer(self._too_large)
        except Exception:
            logger.exception(
                "unexpected error answering %s %s", scope["method"], scope["path"][:256]
            )
            if started:
                raise
            await answer(_json_response(500, INTERNAL_ERROR))
