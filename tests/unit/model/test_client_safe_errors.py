"""The gRPC exception-to-status mapping the server uses: KServe's, fixed where it answered
UNKNOWN naming an AttributeError, and never a class name, path or repr."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_interceptor.exceptions import InvalidArgument
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady, ServerNotLive, ServerNotReady

from model.errors import INTERNAL_ERROR, ClientSafeExceptionInterceptor, ModelOverloaded

pytestmark = pytest.mark.unit


class Context:
    """Records the first abort and raises as grpc.aio does."""

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        if self.aborted is None:
            self.aborted = (code, details)
        raise grpc.aio.AbortError()

    def code(self) -> None:
        return None


def status_of(error: Exception) -> tuple[grpc.StatusCode, str]:
    context = Context()
    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(ClientSafeExceptionInterceptor().handle_exception(error, None, context, "/s/M"))
    assert context.aborted is not None
    return context.aborted


def invalid_input_without_reason() -> Exception:
    error: Any = InvalidInput.__new__(InvalidInput)  # KServe's mapping reads .reason: it fails
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("error", "code", "details"),
    [
        (
            ModelNotReady("ocr-model"),
            grpc.StatusCode.UNAVAILABLE,
            "Model with name ocr-model is not ready.",
        ),
        (ServerNotReady(), grpc.StatusCode.UNAVAILABLE, "Server is not ready."),
        (ServerNotLive(), grpc.StatusCode.UNAVAILABLE, "Server is not live."),
        (NotImplementedError("x"), grpc.StatusCode.UNIMPLEMENTED, "not implemented by this server"),
        (InvalidInput("psm 99 is out of range"), grpc.StatusCode.INVALID_ARGUMENT, "psm 99"),
        (InvalidArgument("malformed"), grpc.StatusCode.INVALID_ARGUMENT, "malformed"),
        (ModelOverloaded("busy"), grpc.StatusCode.RESOURCE_EXHAUSTED, "busy"),
        (ModelNotFound("'x'"), grpc.StatusCode.NOT_FOUND, "Model with name 'x' does not exist."),
        (
            KeyError("/srv/secret/path.py"),
            grpc.StatusCode.INTERNAL,
            "Internal server error",
        ),
        (invalid_input_without_reason(), grpc.StatusCode.INTERNAL, INTERNAL_ERROR),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_each_error_has_a_status_and_a_plain_message(
    error: Exception, code: grpc.StatusCode, details: str
) -> None:
    got_code, got_details = status_of(error)
    assert got_code == code
    assert got_details == details or details in got_details
    for leak in ("Error", "<class", "/srv", ".py"):
        assert leak not in got_details
