"""DeadlineInterceptor: a real grpc.aio server on loopback hands each call's deadline to code
that reads `time_left()`, and the context variable it sets never outlives the call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import grpc
import grpc.aio
import orjson
import pytest

from model.deadlines import DeadlineInterceptor, time_left

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

SERVICE = "ocr.test.Deadlines"
METHOD = f"/{SERVICE}/TimeLeft"

_Context = grpc.aio.ServicerContext[bytes, bytes]

#: A deadline crosses the wire as a `grpc-timeout` the client rounds up (to 10 ms for 1-10 s)
#: from gRPC's coarse cached clock, so the server may see up to ~10 ms more than was asked for.
WIRE_SLACK_S = 0.05


async def report_time_left(request: bytes, context: _Context) -> bytes:
    """The handler under the interceptor: answers what `time_left()` says, as JSON."""
    return orjson.dumps(time_left())


@asynccontextmanager
async def deadline_server() -> AsyncIterator[str]:
    """A grpc.aio server with only the DeadlineInterceptor, on a free loopback port."""
    server = grpc.aio.server(interceptors=[DeadlineInterceptor()])
    # No serializers: request and response stay bytes.
    handler = grpc.unary_unary_rpc_method_handler(report_time_left)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"TimeLeft": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


async def call_time_left(target: str, timeout_s: float | None) -> float | None:
    """What the handler saw, called with a deadline of `timeout_s` (None: no deadline)."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        answer = await call(b"", timeout=timeout_s)
    assert isinstance(answer, bytes)
    seen = orjson.loads(answer)
    assert seen is None or isinstance(seen, float)
    return seen


def test_the_handler_sees_the_time_left_of_the_clients_deadline() -> None:
    async def scenario() -> float | None:
        async with deadline_server() as target:
            return await call_time_left(target, 5.0)

    left = asyncio.run(scenario())
    assert left is not None
    assert 0 < left <= 5.0 + WIRE_SLACK_S


def test_without_a_deadline_the_handler_sees_none() -> None:
    async def scenario() -> tuple[float | None, float | None]:
        async with deadline_server() as target:
            # A call with a deadline first: nothing of it may leak into the next call.
            with_deadline = await call_time_left(target, 5.0)
            return with_deadline, await call_time_left(target, None)

    with_deadline, without = asyncio.run(scenario())
    assert with_deadline is not None
    assert without is None


class _Details(grpc.HandlerCallDetails):
    method = METHOD
    invocation_metadata = ()


class _FakeContext:
    """The one thing the interceptor asks of a servicer context."""

    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining

    def time_remaining(self) -> float | None:
        return self.remaining


async def intercepted(
    inner: Callable[[bytes, _Context], Awaitable[Any]],
) -> Callable[[bytes, _Context], Awaitable[Any]]:
    """The interceptor's wrapper around `inner`, as the server would get it."""

    async def continuation(details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any]:
        return grpc.unary_unary_rpc_method_handler(inner)

    handler = await DeadlineInterceptor().intercept_service(continuation, _Details())
    assert handler.unary_unary is not None
    # grpc-stubs types the handler's function as synchronous; the aio server awaits it.
    return cast(Callable[[bytes, _Context], Awaitable[Any]], handler.unary_unary)


def test_the_deadline_is_reset_after_the_call_in_the_same_context() -> None:
    """Run the wrapped handler in this task's own context, where a leak would be visible."""

    async def scenario() -> tuple[float | None, float | None]:
        wrapped = await intercepted(report_time_left)
        context = cast(_Context, _FakeContext(5.0))
        during = orjson.loads(await wrapped(b"", context))
        return during, time_left()

    during, after = asyncio.run(scenario())
    assert during is not None
    assert 0 < during <= 5.0
    assert after is None


def test_the_deadline_is_reset_when_the_handler_fails() -> None:
    seen: list[float | None] = []

    async def failing(request: bytes, context: _Context) -> bytes:
        seen.append(time_left())
        raise RuntimeError("handler failed")

    async def scenario() -> float | None:
        wrapped = await intercepted(failing)
        with pytest.raises(RuntimeError, match="handler failed"):
            await wrapped(b"", cast(_Context, _FakeContext(2.0)))
        return time_left()

    assert asyncio.run(scenario()) is None
    (during,) = seen
    assert during is not None
    assert 0 < during <= 2.0
