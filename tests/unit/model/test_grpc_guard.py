"""The gRPC guard: fields counted on the wire before parsing, malformed messages refused with a
plain sentence, the repository extension off, counts checked before KServe converts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_interceptor.exceptions import InvalidArgument, Unimplemented
from kserve.errors import InvalidInput, ModelNotFound
from kserve.model_repository import ModelRepository
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

import contract
from model.grpc_guard import (
    MAX_REQUEST_FIELDS,
    REPOSITORY_OFF,
    ClosedInferenceServicer,
    MalformedMessage,
    MessageGuardInterceptor,
    count_fields,
    request_types,
)
from model.server import OcrDataPlane
from tests.support import hostile_messages as hostile

pytestmark = pytest.mark.unit

REQUEST = pb.ModelInferRequest.DESCRIPTOR
INFERENCE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]


def gateway_request() -> pb.ModelInferRequest:
    """What the gateway sends: raw contents, the options and the tenant, every output."""
    return pb.ModelInferRequest(
        model_name="ocr-model",
        id="0123456789abcdef",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])],
        raw_input_contents=[b"\x04\x00\x00\x00\x89PNG" + b"x" * 100_000],
        parameters={
            "lang": pb.InferParameter(string_param="eng+deu"),
            "psm": pb.InferParameter(int64_param=6),
            "oem": pb.InferParameter(int64_param=1),
            "tenant": pb.InferParameter(string_param="t:0123456789abcdef"),
        },
        outputs=[
            pb.ModelInferRequest.InferRequestedOutputTensor(name=name)
            for name in ("text", "confidence", "words")
        ],
    )


def test_a_minimal_request_counts_each_field_once() -> None:
    request = pb.ModelInferRequest(
        model_name="m",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="i", datatype="BYTES", shape=[1])],
    )
    # model_name, inputs, name, datatype, shape (packed, one byte: 1 + 1)
    assert count_fields(request.SerializeToString(), REQUEST, MAX_REQUEST_FIELDS) == 6


def test_a_gateway_request_is_far_under_the_budget() -> None:
    assert count_fields(gateway_request().SerializeToString(), REQUEST, MAX_REQUEST_FIELDS) < 64


def test_an_empty_message_has_no_fields() -> None:
    assert count_fields(b"", REQUEST, MAX_REQUEST_FIELDS) == 0


@pytest.mark.parametrize("name", list(hostile.HOSTILE_REQUESTS))
def test_the_generated_hostile_requests_are_valid_messages(name: str) -> None:
    hostile.parses(hostile.HOSTILE_REQUESTS[name](64 * 1024))


@pytest.mark.parametrize(
    "name", [name for name in hostile.HOSTILE_REQUESTS if name != "zero-length raw elements"]
)
def test_hostile_requests_pass_the_budget_within_milliseconds(name: str) -> None:
    data = hostile.HOSTILE_REQUESTS[name](hostile.DEFAULT_SIZE)
    started = time.perf_counter()
    count = count_fields(data, REQUEST, MAX_REQUEST_FIELDS)
    elapsed = time.perf_counter() - started
    assert count > MAX_REQUEST_FIELDS
    assert elapsed < 0.05, f"{name}: {elapsed * 1000:.1f} ms"


def test_raw_contents_are_one_field_whatever_they_hold() -> None:
    # Their elements are the codec's to count (tests/unit/model/test_codec_limits.py).
    data = hostile.zero_length_raw_elements(hostile.DEFAULT_SIZE)
    assert count_fields(data, REQUEST, MAX_REQUEST_FIELDS) < 16


@pytest.mark.parametrize(
    "data",
    [
        b"\x08",  # varint field without its value
        b"\x0a\x05ab",  # string longer than what is left
        b"\x2a\x03\x0a\x05image",  # nested message overrunning its parent
        b"\x0b",  # wire type 3 (start group)
        b"\x0e",  # wire type 6
        b"\x00\x00",  # field number 0
        b"\x08" + b"\x80" * 11,  # varint of 11 bytes
        b"\x09\x00\x00",  # fixed64 cut short
    ],
)
def test_malformed_wire_bytes_are_named_malformed(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        count_fields(data, REQUEST, MAX_REQUEST_FIELDS)


# --- the interceptor ------------------------------------------------------------------------

MODEL_INFER = f"/{INFERENCE.full_name}/ModelInfer"


class Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def guarded(handler: grpc.RpcMethodHandler[Any, Any], method: str = MODEL_INFER) -> Any:
    async def continuation(details: grpc.HandlerCallDetails) -> Any:
        return handler

    interceptor = MessageGuardInterceptor(request_types(INFERENCE))
    return asyncio.run(interceptor.intercept_service(continuation, Details(method)))


def test_garbage_is_refused_with_a_plain_sentence_and_no_class_name() -> None:
    seen: list[Any] = []

    async def behaviour(request: Any, context: Any) -> str:
        seen.append(request)
        return "served"

    handler = guarded(
        grpc.unary_unary_rpc_method_handler(
            behaviour, request_deserializer=pb.ModelInferRequest.FromString
        )
    )
    refused = handler.request_deserializer(b"\xff\xff\xff garbage")
    with pytest.raises(InvalidArgument) as caught:
        asyncio.run(handler.unary_unary(refused, None))
    assert caught.value.details == "the request is not a valid inference.ModelInferRequest message"
    assert seen == []
    good = gateway_request()
    assert (
        asyncio.run(
            handler.unary_unary(handler.request_deserializer(good.SerializeToString()), None)
        )
        == "served"
    )
    assert seen == [good]


def test_a_request_over_the_budget_is_refused_unparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[bytes] = []

    def parse(data: bytes) -> pb.ModelInferRequest:
        parsed.append(data)
        return pb.ModelInferRequest.FromString(data)

    async def behaviour(request: Any, context: Any) -> None:
        raise AssertionError("not reached")

    handler = guarded(grpc.unary_unary_rpc_method_handler(behaviour, request_deserializer=parse))
    refused = handler.request_deserializer(hostile.empty_requested_outputs(1024 * 1024))
    assert parsed == []
    with pytest.raises(InvalidArgument, match=f"more than {MAX_REQUEST_FIELDS} protobuf fields"):
        asyncio.run(handler.unary_unary(refused, None))


def test_streaming_requests_are_checked_as_they_come() -> None:
    from grpc_health.v1 import health_pb2

    async def behaviour(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[str]:
        async for request in requests:
            yield request.service

    handler = guarded(
        grpc.stream_stream_rpc_method_handler(
            behaviour, request_deserializer=health_pb2.HealthCheckRequest.FromString
        ),
        method="/some.Stream/Method",
    )
    good = handler.request_deserializer(
        health_pb2.HealthCheckRequest(service="a").SerializeToString()
    )
    bad = handler.request_deserializer(b"\xff\xff")

    async def run(*requests: Any) -> list[str]:
        async def source() -> AsyncIterator[Any]:
            for request in requests:
                yield request

        return [response async for response in handler.stream_stream(source(), None)]

    assert asyncio.run(run(good)) == ["a"]
    with pytest.raises(InvalidArgument, match="the request message is malformed"):
        asyncio.run(run(good, bad))


# --- the servicer ---------------------------------------------------------------------------


def servicer() -> ClosedInferenceServicer:
    return ClosedInferenceServicer(OcrDataPlane(model_registry=ModelRepository()), None)


def test_the_repository_extension_is_unimplemented() -> None:
    with pytest.raises(Unimplemented, match=REPOSITORY_OFF):
        asyncio.run(
            servicer().RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="m"), None)
        )
    with pytest.raises(Unimplemented, match=REPOSITORY_OFF):
        asyncio.run(
            servicer().RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="m"), None)
        )


def test_model_infer_names_an_unknown_model_cut_short() -> None:
    with pytest.raises(ModelNotFound) as caught:
        asyncio.run(servicer().ModelInfer(pb.ModelInferRequest(model_name="m" * 1_000_000), None))
    assert len(str(caught.value)) < 150


def test_model_infer_checks_counts_before_kserve_converts(monkeypatch: pytest.MonkeyPatch) -> None:
    from kserve.protocol.infer_type import InferRequest

    registry = ModelRepository()
    registry.update(type("Stub", (), {"name": "ocr-model"})(), "ocr-model")
    closed = ClosedInferenceServicer(OcrDataPlane(model_registry=registry), None)
    converted: list[Any] = []
    monkeypatch.setattr(InferRequest, "from_grpc", classmethod(lambda cls, r: converted.append(r)))
    request = hostile.parses(hostile.empty_requested_outputs(4096))
    with pytest.raises(InvalidInput, match=f"at most {len(contract.OUTPUTS)} outputs"):
        asyncio.run(closed.ModelInfer(request, None))
    assert converted == []
