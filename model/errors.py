"""Every engine failure the model server answers, with its gRPC and HTTP status, in one table.

The engine raises its own errors (`model.engine.types`); `to_protocol_error` turns each into
the protocol error of `ERROR_TABLE`, and the answer's status follows from that one row on both
ports. `InvalidInput` is KServe's: its interceptor answers INVALID_ARGUMENT and its REST handler
400 (a test pins both). Overload and timeouts are ours: they subclass grpc-interceptor's
exceptions, which KServe's gRPC interceptor turns into their status, and `rest_error_handler`
gives the REST answer from the same row. An overload refusal carries the engine's retry hint:
over gRPC in the trailing metadata `contract.metadata.RETRY_AFTER_MS` (milliseconds), over REST
as `Retry-After` (whole seconds, rounded up).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NoReturn

import grpc.aio
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from grpc import StatusCode
from grpc_interceptor.exceptions import DeadlineExceeded, GrpcException, ResourceExhausted
from kserve.errors import InvalidInput, ModelNotReady, ServerNotLive, ServerNotReady
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor

from contract.metadata import RETRY_AFTER_MS

from .engine import AdmissionRefusedError, EngineBusyError, EngineInputError, EngineTimeoutError

logger = logging.getLogger(__name__)

#: Seconds a refused client should wait before retrying an overloaded server that gave no hint.
RETRY_AFTER_S: Final = 1
#: Longest piece of a request (an input's name, a model name, a value) quoted in a message.
MAX_ECHO_CHARS: Final = 64
#: The whole answer to an unexpected failure: its class, message and traceback go to the log.
INTERNAL_ERROR: Final = "internal error"


def echo(value: object) -> str:
    """`value` quoted for an error message, cut to `MAX_ECHO_CHARS` characters: a client may
    send a 1 MiB name, and the answer must not carry it back."""
    text = str(value)
    if len(text) <= MAX_ECHO_CHARS:
        return repr(text)
    return f"{text[:MAX_ECHO_CHARS]!r}... ({len(text)} characters)"


class ModelOverloaded(ResourceExhausted):
    """The engine cannot take the request now; it was refused without queueing.

    `retry_after_s` is when capacity is expected (None: no hint, `RETRY_AFTER_S` applies)."""

    def __init__(self, details: str, retry_after_s: float | None = None) -> None:
        super().__init__(details)
        self.retry_after_s = retry_after_s

    @property
    def retry_after_ms(self) -> int | None:
        """The hint in whole milliseconds, rounded up; None without one."""
        if self.retry_after_s is None:
            return None
        return max(1, math.ceil(self.retry_after_s * 1000))

    @property
    def retry_after_header(self) -> str:
        """`Retry-After` in whole seconds, rounded up, at least 1."""
        seconds = RETRY_AFTER_S if self.retry_after_s is None else self.retry_after_s
        return str(max(1, math.ceil(seconds)))


def _overloaded(error: Exception) -> ModelOverloaded:
    hint = error.retry_after_s if isinstance(error, AdmissionRefusedError) else None
    return ModelOverloaded(str(error), hint)


class ModelTimeout(DeadlineExceeded):
    """The request's deadline passed before OCR finished; the work was stopped."""


@dataclass(frozen=True, slots=True)
class ErrorMapping:
    """How one engine error is answered."""

    engine_error: type[Exception]
    protocol_error: Callable[[Exception], Exception]
    """Builds the exception KServe's servers answer from the engine's (its message is
    client-safe)."""
    grpc_status: StatusCode
    http_status: int
    retry_after_s: int | None = None
    """`Retry-After` of the REST answer, unless the error carries its own hint."""


ERROR_TABLE: Final[tuple[ErrorMapping, ...]] = (
    ErrorMapping(
        EngineInputError, lambda error: InvalidInput(str(error)), StatusCode.INVALID_ARGUMENT, 400
    ),
    ErrorMapping(EngineBusyError, _overloaded, StatusCode.RESOURCE_EXHAUSTED, 429, RETRY_AFTER_S),
    ErrorMapping(
        EngineTimeoutError,
        lambda error: ModelTimeout(f"OCR stopped: {error}"),
        StatusCode.DEADLINE_EXCEEDED,
        504,
    ),
)
#: The row of each gRPC status our own errors carry, for the REST answer.
_BY_GRPC_STATUS: Final[Mapping[StatusCode, ErrorMapping]] = MappingProxyType(
    {row.grpc_status: row for row in ERROR_TABLE}
)
#: Our own protocol errors, which KServe's REST app must learn (it knows `InvalidInput`).
REST_HANDLED: Final = (ModelOverloaded, ModelTimeout)


def to_protocol_error(exc: Exception) -> Exception:
    """The protocol error for an engine failure; anything unexpected is returned as it is."""
    for row in ERROR_TABLE:
        if isinstance(exc, row.engine_error):
            return row.protocol_error(exc)
    return exc


async def rest_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """KServe-style JSON error body (`{"error": message}`) with the table's HTTP status."""
    assert isinstance(exc, ModelOverloaded | ModelTimeout)
    row = _BY_GRPC_STATUS.get(exc.status_code)
    status = 500 if row is None else row.http_status
    headers = None
    if isinstance(exc, ModelOverloaded):
        headers = {"Retry-After": exc.retry_after_header}
    elif row is not None and row.retry_after_s is not None:
        headers = {"Retry-After": str(row.retry_after_s)}
    return JSONResponse({"error": exc.details}, status_code=status, headers=headers)


async def rest_validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """400 for a body that is no v2 request, naming the first problem without echoing input
    (FastAPI's own 422 body carries every offending value back whole)."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    problem = "expected a JSON v2 inference request"
    if errors:
        # The location names fields, indexes, and the client's own keys (cut), but not the
        # schema's classes (capitalised, e.g. KServe's `InferenceRequest`) nor "body".
        where = ".".join(
            str(part)[:MAX_ECHO_CHARS]
            for part in errors[0].get("loc", ())
            if part != "body" and not str(part)[:1].isupper()
        )
        problem = f"{where or 'body'}: {str(errors[0].get('msg', 'invalid'))[:MAX_ECHO_CHARS]}"
    return JSONResponse({"error": f"malformed request body: {problem}"}, status_code=400)


#: Exceptions that are answers (a status and a client-safe message), not failures to log.
_ANSWERS: Final = (GrpcException, InvalidInput, ModelNotReady, ServerNotReady, ServerNotLive)


def forget_where(error: BaseException) -> None:
    """Drop `error`'s traceback and the exceptions it was raised from, once it is only an answer.

    gRPC's abort keeps its AbortError on the call's state, which the frames of its traceback
    reach again: a reference cycle, freed only by the cyclic garbage collector. Through the
    AbortError's context (this error) and its traceback, that cycle would reach every frame the
    error passed through, and what they held: the upload, its parsed message, KServe's copy, the
    image (~5 times the upload). Refused 18.5 MiB uploads piled up to 775 MiB that way."""
    error.__traceback__ = None
    error.__context__ = None
    error.__cause__ = None


class ClientSafeExceptionInterceptor(ExceptionToStatusInterceptor):  # type: ignore[misc]
    """KServe's gRPC exception-to-status mapping, fixed where it fails: it reads a `reason`
    that `ModelNotReady`, `ServerNotReady`, `ServerNotLive` and `NotImplementedError` lack, and
    the resulting AttributeError left as UNKNOWN naming its class. Those get UNAVAILABLE and
    UNIMPLEMENTED here; anything KServe's mapping still cannot answer gets INTERNAL with
    `INTERNAL_ERROR`, the detail going to the log."""

    async def handle_exception(
        self, ex: Exception, request_or_iterator: Any, context: Any, method_name: str
    ) -> NoReturn:
        if isinstance(ex, _ANSWERS):
            forget_where(ex)
        if isinstance(ex, ModelNotReady | ServerNotReady | ServerNotLive):
            await context.abort(StatusCode.UNAVAILABLE, str(ex))
        if isinstance(ex, NotImplementedError):
            await context.abort(StatusCode.UNIMPLEMENTED, "not implemented by this server")
        if isinstance(ex, ModelOverloaded) and ex.retry_after_ms is not None:
            # Sent with the status (abort keeps the trailing metadata set before it).
            context.set_trailing_metadata(((RETRY_AFTER_MS, str(ex.retry_after_ms)),))
        try:
            await super().handle_exception(ex, request_or_iterator, context, method_name)
        except grpc.aio.AbortError:
            raise
        except Exception:
            logger.exception("unexpected error answering %s", method_name)
        await context.abort(StatusCode.INTERNAL, INTERNAL_ERROR)
        raise AssertionError("context.abort() returned")  # pragma: no cover
