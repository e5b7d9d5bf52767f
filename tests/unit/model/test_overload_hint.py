"""The admission's retry hint on the wire: gRPC trailing metadata `retry-after-ms` (through the
server's real exception interceptor) and REST `Retry-After` in whole seconds, rounded up."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio
import httpx
import pytest
from fastapi import FastAPI

from contract.metadata import RETRY_AFTER_MS
from gateway.protocol import pb, pb_grpc
from model.engine import AdmissionRefusedError, EngineBusyError
from model.errors import (
    ClientSafeExceptionInterceptor,
    ModelOverloaded,
    rest_error_handler,
    to_protocol_error,
)

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

REFUSED = AdmissionRefusedError("the OCR engine is busy", "deadline", 2.3401)


async def _call(error: Exception) -> grpc.aio.AioRpcError:
    async def model_infer(request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        raise to_protocol_error(error)  # as the predictor does

    server = grpc.aio.server(interceptors=[ClientSafeExceptionInterceptor()])
    handler = grpc.unary_unary_rpc_method_handler(
        model_infer,
        request_deserializer=pb.ModelInferRequest.FromString,
        response_serializer=pb.ModelInferResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "inference.GRPCInferenceService", {"ModelInfer": handler}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ModelInfer(pb.ModelInferRequest(), timeout=10)
            return caught.value
    finally:
        await server.stop(grace=None)


def trailing(error: grpc.aio.AioRpcError) -> dict[str, str]:
    # A grpc.aio.Metadata of (key, value) pairs; grpc-stubs type it as RpcError's.
    metadata: Any = error.trailing_metadata()
    return dict(metadata or ())


def test_a_refusal_carries_its_hint_in_the_trailing_metadata() -> None:
    error = asyncio.run(_call(REFUSED))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == str(REFUSED)
    assert trailing(error)[RETRY_AFTER_MS] == "2341"  # milliseconds, rounded up


def test_a_refusal_without_a_hint_sends_none() -> None:
    error = asyncio.run(_call(EngineBusyError("all workers are busy")))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert RETRY_AFTER_MS not in trailing(error)


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [(REFUSED, "3"), (AdmissionRefusedError("busy", "memory", 0.1), "1"), (EngineBusyError(), "1")],
    ids=["hint rounded up", "at least 1", "no hint"],
)
def test_rest_answers_429_with_the_hint_in_whole_seconds(
    error: Exception, retry_after: str
) -> None:
    app = FastAPI()
    app.add_exception_handler(ModelOverloaded, rest_error_handler)

    @app.get("/fail")
    async def fail() -> None:
        raise to_protocol_error(error)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://model.test") as client:
            return await client.get("/fail")

    response = asyncio.run(call())
    assert response.status_code == 429
    assert response.headers["retry-after"] == retry_after
