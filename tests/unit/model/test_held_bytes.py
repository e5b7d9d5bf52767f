"""Bytes held from a request's receipt (`model.intake`): the admission's `hold`, the gRPC message
guard holding a `ModelInfer` message before protobuf parses it (a real server on loopback), and
the REST guard holding a body's Content-Length before reading it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpc.aio
import httpx
import pytest
from fastapi import FastAPI, Request

from contract.metadata import RETRY_AFTER_MS
from gateway.protocol import pb, pb_grpc
from model.engine import Admission, AdmissionRefusedError
from model.errors import ClientSafeExceptionInterceptor
from model.grpc_guard import MessageGuardInterceptor, request_types
from model.intake import Intake
from model.rest_guard import RestGuardMiddleware
from tests.support.memory import frames_in_cycles

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

KIB = 1024
BUDGET = 1024 * KIB
INFERENCE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
MODEL_INFER = f"/{INFERENCE.full_name}/ModelInfer"


def admission(max_bytes: int = BUDGET) -> Admission:
    return Admission(1, max_bytes=max_bytes, max_requests=64, clock=lambda: 0.0)


# --- the admission's holds ------------------------------------------------------------------


def test_holds_count_until_released_once() -> None:
    pool = admission()
    first = pool.hold(600 * KIB)
    assert pool.queued_bytes == 600 * KIB
    with pytest.raises(AdmissionRefusedError) as refused:
        pool.hold(600 * KIB)
    assert refused.value.reason == "memory"
    assert refused.value.retry_after_s > 0
    assert pool.queued_bytes == 600 * KIB  # the refused hold took nothing
    pool.release(first)
    pool.release(first)  # a second release gives nothing back twice
    assert pool.queued_bytes == 0


def test_a_lone_request_larger_than_the_budget_is_held() -> None:
    pool = admission()
    hold = pool.hold(3 * BUDGET)
    assert pool.queued_bytes == 3 * BUDGET
    pool.release(hold)


def test_a_held_request_is_neither_checked_nor_counted_again_by_its_ticket() -> None:
    pool = admission()
    hold = pool.hold(900 * KIB)
    ticket = pool.admit(1.0, 900 * KIB, None, held=True)  # would pass the budget if counted
    assert pool.queued_bytes == 900 * KIB
    pool.finish(ticket, learn=False)
    assert pool.queued_bytes == 900 * KIB  # the hold keeps them until the call ends
    pool.release(hold)
    assert pool.queued_bytes == 0
    pool.hold(1)
    with pytest.raises(AdmissionRefusedError):  # unheld requests are still checked
        pool.admit(1.0, 2 * BUDGET, None)


# --- the gRPC message guard -----------------------------------------------------------------


class Model:
    """A `ModelInfer` behaviour that waits for `go` (so a call stays in flight) and counts the
    messages parsed."""

    def __init__(self) -> None:
        self.parsed = 0
        self.arrived = asyncio.Event()
        self.go = asyncio.Event()

    def parse(self, data: bytes) -> pb.ModelInferRequest:
        self.parsed += 1
        return pb.ModelInferRequest.FromString(data)

    async def infer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        self.arrived.set()
        await self.go.wait()
        return pb.ModelInferResponse(model_name=request.model_name)


@asynccontextmanager
async def served(model: Model, intake: Intake) -> AsyncIterator[Callable[..., Any]]:
    guard = MessageGuardInterceptor(
        request_types(INFERENCE), intake=intake, held=frozenset({MODEL_INFER})
    )
    server = grpc.aio.server(
        interceptors=[ClientSafeExceptionInterceptor(), guard],
        options=[("grpc.max_receive_message_length", 8 * BUDGET)],
    )
    handler = grpc.unary_unary_rpc_method_handler(
        model.infer,
        request_deserializer=model.parse,
        response_serializer=pb.ModelInferResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(INFERENCE.full_name, {"ModelInfer": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 8 * BUDGET)]
        ) as channel:
            yield pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer
    finally:
        await server.stop(grace=None)


def upload(size: int) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(model_name="ocr-model", raw_input_contents=[b"x" * size])


def test_a_message_past_the_budget_is_refused_unparsed_with_a_hint() -> None:
    pool = admission()
    refusals: list[str] = []
    model = Model()

    async def run() -> None:
        async with served(model, Intake(pool, refusals.append)) as infer:
            first = asyncio.ensure_future(infer(upload(700 * KIB), timeout=30))
            await model.arrived.wait()
            assert 700 * KIB < pool.queued_bytes < 710 * KIB  # the whole message, held
            assert model.parsed == 1
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await infer(upload(700 * KIB), timeout=30)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "MiB of uploads" in (refused.value.details() or "")
            trailing: Any = refused.value.trailing_metadata()
            assert int(dict(trailing)[RETRY_AFTER_MS]) >= 1
            assert model.parsed == 1  # never parsed
            assert refusals == ["memory"]
            model.go.set()
            assert (await first).model_name == "ocr-model"
            assert pool.queued_bytes == 0  # released when the call ended
            assert (await infer(upload(700 * KIB), timeout=30)).model_name == "ocr-model"

    asyncio.run(run())


def big_bytes(value: object) -> bool:
    return isinstance(value, bytes) and len(value) >= 700 * KIB


def test_a_refused_message_is_freed_when_its_call_ends() -> None:
    """Not left for the garbage collector: a refusal raised beside the message would keep its
    frame in a cycle (24 refused 18 MiB uploads once held 440 MiB that way)."""
    pool = admission()
    model = Model()

    async def run() -> None:
        async with served(model, Intake(pool, lambda reason: None)) as infer:
            first = asyncio.ensure_future(infer(upload(700 * KIB), timeout=30))
            await model.arrived.wait()
            gc.collect()
            gc.disable()
            try:
                for _ in range(3):
                    with pytest.raises(grpc.aio.AioRpcError) as refused:
                        await infer(upload(700 * KIB), timeout=30)
                    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert frames_in_cycles(big_bytes) == []
            finally:
                gc.enable()
            model.go.set()
            await first

    asyncio.run(run())


def test_a_cancelled_call_gives_its_bytes_back() -> None:
    pool = admission()
    model = Model()

    async def run() -> None:
        async with served(model, Intake(pool, lambda reason: None)) as infer:
            call = infer(upload(300 * KIB), timeout=30)
            await model.arrived.wait()
            assert pool.queued_bytes > 300 * KIB
            call.cancel()
            for _ in range(200):  # the server learns of the cancellation asynchronously
                if pool.queued_bytes == 0:
                    break
                await asyncio.sleep(0.01)
            assert pool.queued_bytes == 0

    asyncio.run(run())


def test_a_malformed_message_holds_nothing() -> None:
    pool = admission()
    guard = MessageGuardInterceptor(
        request_types(INFERENCE),
        intake=Intake(pool, lambda reason: None),
        held=frozenset({MODEL_INFER}),
    )

    async def behaviour(request: Any, context: Any) -> None:
        raise AssertionError("not reached")

    async def continuation(details: grpc.HandlerCallDetails) -> Any:
        return grpc.unary_unary_rpc_method_handler(
            behaviour, request_deserializer=pb.ModelInferRequest.FromString
        )

    class Details(grpc.HandlerCallDetails):
        method = MODEL_INFER
        invocation_metadata = ()

    handler = asyncio.run(guard.intercept_service(continuation, Details()))
    assert handler.request_deserializer is not None
    handler.request_deserializer(b"\xff\xff\xff garbage")
    assert pool.queued_bytes == 0


# --- the REST guard -------------------------------------------------------------------------


def rest_call(pool: Admission, body: bytes) -> tuple[httpx.Response, list[int]]:
    seen: list[int] = []
    app = FastAPI()

    @app.post("/v2/models/ocr-model/infer")
    async def infer(request: Request) -> dict[str, int]:
        seen.append(pool.queued_bytes)
        return {"length": len(await request.body())}

    app.add_middleware(
        RestGuardMiddleware, max_body_bytes=8 * BUDGET, intake=Intake(pool, lambda reason: None)
    )

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://model") as client:
            return await client.post("/v2/models/ocr-model/infer", content=body)

    return asyncio.run(run()), seen


def test_a_rest_body_is_held_from_its_length_before_it_is_read() -> None:
    pool = admission()
    response, seen = rest_call(pool, b"x" * 500 * KIB)
    assert response.status_code == 200
    assert seen == [500 * KIB]  # held while the app ran
    assert pool.queued_bytes == 0


def test_a_rest_body_past_the_budget_is_429_unread() -> None:
    pool = admission()
    pool.hold(800 * KIB)
    response, seen = rest_call(pool, b"x" * 500 * KIB)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert "MiB of uploads" in response.json()["error"]
    assert seen == []  # the app never ran
    assert pool.queued_bytes == 800 * KIB
