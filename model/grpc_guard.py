"""What the gRPC side refuses before any work: oversized structures, malformed messages and the
model repository extension.

A 32 MiB `ModelInferRequest` can hold 16 million empty requested outputs or `bytes_contents`
elements. Parsing it takes protobuf seconds and KServe's conversion (`InferRequest.from_grpc`,
which copies every element into a Python object) half a minute, all on the event loop, so
health probes time out meanwhile. `MessageGuardInterceptor` therefore counts the fields of each
inference request on the wire, with a budget, before protobuf parses it: a refusal costs the
same few milliseconds whatever the message holds. It also parses every request itself, so a
message that is no protobuf gets INVALID_ARGUMENT with a plain sentence (gRPC's own answer is
UNKNOWN naming the `DecodeError` class).

`ClosedInferenceServicer` is KServe's servicer with the model repository extension off (no
client may unload or load the model) and the counts of a request checked before KServe's
conversion (`codec.check_grpc_request`); its `ModelMetadata` answer names the model's languages
in trailing metadata (`contract.metadata.LANGUAGES`: the v2 message has no field for them).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import grpc
import grpc.aio
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from grpc_interceptor.exceptions import InvalidArgument, Unimplemented
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.servicer import InferenceServicer

from contract.metadata import LANGUAGES

from . import codec
from .engine import Hold
from .errors import ModelOverloaded

if TYPE_CHECKING:
    from .intake import Intake

#: Most protobuf fields an inference request may hold, nested ones and packed numbers (one per
#: byte) included. An OCR request needs a few dozen: one input with one element, at most three
#: requested outputs, a handful of parameters.
MAX_REQUEST_FIELDS: Final = 1024
#: What a call to the model repository extension gets.
REPOSITORY_OFF: Final = "the model repository extension is disabled on this server"

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5
_TEXT_TYPES: Final = frozenset({FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES})


class MalformedMessage(ValueError):
    """Bytes that are not a protobuf message (a truncated field, an impossible wire type)."""


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while shift < 64:
        if pos >= end:
            raise MalformedMessage("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise MalformedMessage("varint longer than 10 bytes")


def count_fields(data: bytes, descriptor: Descriptor, limit: int) -> int:
    """The fields of `data` read as `descriptor`, nested messages included and each element of a
    packed number field counted as one per byte; stops as soon as the count passes `limit`, so
    it costs at most `limit` steps whatever `data` holds. MalformedMessage on bytes that no
    protobuf parser would accept."""
    count = 0
    pending = [(0, len(data), descriptor)]
    while pending:
        pos, end, message = pending.pop()
        fields = message.fields_by_number
        while pos < end:
            key, pos = _varint(data, pos, end)
            number, wire_type = key >> 3, key & 7
            if number == 0:
                raise MalformedMessage("field number 0")
            count += 1
            if count > limit:
                return count
            if wire_type == _VARINT:
                _, pos = _varint(data, pos, end)
            elif wire_type == _FIXED64:
                pos += 8
            elif wire_type == _FIXED32:
                pos += 4
            elif wire_type == _LENGTH_DELIMITED:
                length, start = _varint(data, pos, end)
                pos = start + length
                field = fields.get(number)  # an unknown field is skipped whole
                if pos > end or field is None:
                    pass
                elif field.type == FieldDescriptor.TYPE_MESSAGE:
                    pending.append((start, pos, field.message_type))
                elif field.is_repeated and field.type not in _TEXT_TYPES:
                    count += length  # packed numbers: at most one per byte
            else:
                raise MalformedMessage(f"wire type {wire_type}")
            if pos > end:
                raise MalformedMessage("a field overruns its message")
    return count


class _Refused:
    """What the guarded deserializer returns instead of raising (gRPC would answer UNKNOWN
    with the exception's class): the behaviour then raises `error`."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Held:
    """A parsed request whose bytes `intake` holds: the behaviour answers it within
    `intake.holding(hold)`; should it never run (the call ended first), the bytes are given
    back when this wrapper is collected."""

    __slots__ = ("__weakref__", "hold", "intake", "request")

    def __init__(self, request: Any, intake: Intake, hold: Hold) -> None:
        self.request = request
        self.intake = intake
        self.hold = hold
        weakref.finalize(self, intake.release, hold)


def _accepted(request: Any) -> Any:
    if isinstance(request, _Refused):
        raise request.error
    return request


async def _accepted_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _accepted(request)


def request_types(*services: ServiceDescriptor) -> dict[str, Descriptor]:
    """`/package.Service/Method` → the request message type, for each method of `services`."""
    return {
        f"/{service.full_name}/{method.name}": method.input_type
        for service in services
        for method in service.methods
    }


if TYPE_CHECKING:  # generic only in grpc-stubs, not at run time
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor


class MessageGuardInterceptor(_ServerInterceptor):
    """Parses every request message itself, refusing with INVALID_ARGUMENT a message that is
    malformed or, for the methods of `counted` (`request_types()`), holds more than
    `max_fields` fields, counted before parsing. With an `intake`, the bytes of each message
    of the unary `held` methods are held as soon as it is received (see `model.intake`): past
    the budget the call is refused with RESOURCE_EXHAUSTED and a retry hint, the message
    unparsed; otherwise until the call ends.

    Place it inside KServe's ExceptionToStatusInterceptor, which answers its refusals.
    """

    def __init__(
        self,
        counted: Mapping[str, Descriptor],
        max_fields: int = MAX_REQUEST_FIELDS,
        *,
        intake: Intake | None = None,
        held: frozenset[str] = frozenset(),
    ) -> None:
        self._counted = dict(counted)
        self._max_fields = max_fields
        self._intake = intake
        self._held = held

    def _deserializer(self, method: str, parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        descriptor = self._counted.get(method)
        malformed = (
            "the request message is malformed"
            if descriptor is None
            else f"the request is not a valid {descriptor.full_name} message"
        )
        too_many = (
            f"the request holds more than {self._max_fields} protobuf fields: an OCR request "
            "carries one image, a few parameters and at most one of each output"
        )
        limit = self._max_fields
        intake = self._intake if method in self._held else None

        def guarded(data: bytes) -> Any:
            hold = None
            if intake is not None:
                held = intake.try_hold(len(data))
                if isinstance(held, ModelOverloaded):
                    return _Refused(held)  # not raised here: see Intake.try_hold
                hold = held
            try:
                if descriptor is not None and count_fields(data, descriptor, limit) > limit:
                    request: Any = _Refused(InvalidArgument(too_many))
                else:
                    request = parse(data)
            except Exception:  # DecodeError, MalformedMessage: the class stays out of the answer
                request = _Refused(InvalidArgument(malformed))
            if intake is None or hold is None:
                return request
            if isinstance(request, _Refused):
                intake.release(hold)
                return request
            return _Held(request, intake, hold)

        return guarded

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        method = handler_call_details.method
        deserializer = self._deserializer(method, handler.request_deserializer)
        serializer = handler.response_serializer
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _guarded(handler.unary_unary, _accepted), deserializer, serializer
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _guarded(handler.unary_stream, _accepted), deserializer, serializer
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _guarded(handler.stream_unary, _accepted_stream), deserializer, serializer
            )
        return grpc.stream_stream_rpc_method_handler(
            _guarded(handler.stream_stream, _accepted_stream), deserializer, serializer
        )


def _guarded(inner: Any, accept: Callable[[Any], Any]) -> Any:
    """`inner` (a coroutine or async generator function) called with `accept(request)`: the
    request checked (unary) or an iterator that refuses a malformed message when it comes."""
    if inspect.isasyncgenfunction(inner):

        async def streaming(request: Any, context: Any) -> Any:
            async for response in inner(accept(request), context):
                yield response

        return streaming

    async def unary(request: Any, context: Any) -> Any:
        accepted = accept(request)
        if isinstance(accepted, _Held):
            try:
                with accepted.intake.holding(accepted.hold):
                    return await inner(accepted.request, context)
            finally:
                # The interceptors' frames hold this wrapper until the call's state goes,
                # which may wait for the garbage collector (see model.errors.forget_where):
                # not the parsed message with it.
                accepted.request = None
        return await inner(accepted, context)

    return unary


class ClosedInferenceServicer(InferenceServicer):  # type: ignore[misc]  # kserve is untyped
    """KServe's v2 servicer without the model repository extension, whose ModelInfer checks a
    request's counts before KServe converts it."""

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: Any
    ) -> pb.RepositoryModelLoadResponse:
        raise Unimplemented(REPOSITORY_OFF)

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: Any
    ) -> pb.RepositoryModelUnloadResponse:
        raise Unimplemented(REPOSITORY_OFF)

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Any
    ) -> pb.ModelMetadataResponse:
        response: pb.ModelMetadataResponse = await super().ModelMetadata(request, context)
        languages = getattr(self._data_plane.get_model_from_registry(request.name), "languages", ())
        if languages:
            context.set_trailing_metadata(((LANGUAGES, ",".join(languages)),))
        return response

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Any
    ) -> pb.ModelInferResponse:
        # As KServe would: an unknown model is NOT_FOUND whatever the request holds.
        self._data_plane.get_model_from_registry(request.model_name)
        codec.check_grpc_request(request)
        response: pb.ModelInferResponse = await super().ModelInfer(request, context)
        return response
