"""Carry each gRPC call's deadline to the predictor, which hands the time left to the engine.

KServe passes only headers to `predict()`; the deadline lives on the servicer context. This
interceptor wraps unary handlers and records the absolute deadline in a context variable that
the call's task (and the engine work it starts) can read.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
import grpc.aio

_deadline: ContextVar[float | None] = ContextVar("ocr_call_deadline", default=None)


def time_left() -> float | None:
    """Seconds until the current call's deadline; None when the caller set none."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

if TYPE_CHECKING:  # generic only in grpc-stubs, not at run time
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor


class DeadlineInterceptor(_ServerInterceptor):
    """Records `context.time_remaining()` of every unary call as an absolute deadline."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner: Any = handler.unary_unary

        async def with_deadline(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            remaining = context.time_remaining()
            token = _deadline.set(None if remaining is None else time.monotonic() + remaining)
            try:
                return await inner(request, context)
            finally:
                _deadline.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            with_deadline,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
