"""Errors the model server answers beyond KServe's own, with their gRPC and HTTP statuses.

KServe maps its `InvalidInput` to INVALID_ARGUMENT / 400. Overload and timeouts are ours: they
subclass grpc-interceptor's exceptions, which KServe's gRPC interceptor turns into their status,
and `HTTP_STATUS` gives the REST answer for the same error.
"""

from __future__ import annotations

from typing import Final

from fastapi import Request
from fastapi.responses import JSONResponse
from grpc import StatusCode
from grpc_interceptor.exceptions import DeadlineExceeded, GrpcException, ResourceExhausted

#: The REST status for each gRPC status our errors carry.
HTTP_STATUS: Final = {
    StatusCode.RESOURCE_EXHAUSTED: 429,
    StatusCode.DEADLINE_EXCEEDED: 504,
}
#: Seconds a refused client should wait before retrying an overloaded server.
RETRY_AFTER_S: Final = 1


class ModelOverloaded(ResourceExhausted):
    """The engine pool is full; the request was refused without queueing."""


class ModelTimeout(DeadlineExceeded):
    """The request's deadline passed before OCR finished; the work was stopped."""


async def rest_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """KServe-style JSON error body (`{"error": message}`) with the mapped HTTP status."""
    assert isinstance(exc, GrpcException)
    status = HTTP_STATUS.get(exc.status_code, 500)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 429 else None
    return JSONResponse({"error": exc.details}, status_code=status, headers=headers)
