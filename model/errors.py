"""Every engine failure the model server answers, with its gRPC and HTTP status, in one table.

The engine raises its own errors (`model.engine.types`); `to_protocol_error` turns each into
the protocol error of `ERROR_TABLE`, and the answer's status follows from that one row on both
ports. `InvalidInput` is KServe's: its interceptor answers INVALID_ARGUMENT and its REST handler
400 (a test pins both). Overload and timeouts are ours: they subclass grpc-interceptor's
exceptions, which KServe's gRPC interceptor turns into their status, and `rest_error_handler`
gives the REST answer from the same row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from fastapi import Request
from fastapi.responses import JSONResponse
from grpc import StatusCode
from grpc_interceptor.exceptions import DeadlineExceeded, ResourceExhausted
from kserve.errors import InvalidInput

from .engine import EngineBusyError, EngineInputError, EngineTimeoutError

#: Seconds a refused client should wait before retrying an overloaded server.
RETRY_AFTER_S: Final = 1


class ModelOverloaded(ResourceExhausted):
    """The engine pool is full; the request was refused without queueing."""


class ModelTimeout(DeadlineExceeded):
    """The request's deadline passed before OCR finished; the work was stopped."""


@dataclass(frozen=True, slots=True)
class ErrorMapping:
    """How one engine error is answered."""

    engine_error: type[Exception]
    protocol_error: Callable[[str], Exception]
    """Builds the exception KServe's servers answer, from the engine's (client-safe) message."""
    grpc_status: StatusCode
    http_status: int
    retry_after_s: int | None = None
    """`Retry-After` of the REST answer."""


ERROR_TABLE: Final[tuple[ErrorMapping, ...]] = (
    ErrorMapping(EngineInputError, InvalidInput, StatusCode.INVALID_ARGUMENT, 400),
    ErrorMapping(
        EngineBusyError, ModelOverloaded, StatusCode.RESOURCE_EXHAUSTED, 429, RETRY_AFTER_S
    ),
    ErrorMapping(
        EngineTimeoutError,
        lambda message: ModelTimeout(f"OCR stopped: {message}"),
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
            return row.protocol_error(str(exc))
    return exc


async def rest_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """KServe-style JSON error body (`{"error": message}`) with the table's HTTP status."""
    assert isinstance(exc, ModelOverloaded | ModelTimeout)
    row = _BY_GRPC_STATUS.get(exc.status_code)
    status = 500 if row is None else row.http_status
    headers = None
    if row is not None and row.retry_after_s is not None:
        headers = {"Retry-After": str(row.retry_after_s)}
    return JSONResponse({"error": exc.details}, status_code=status, headers=headers)
