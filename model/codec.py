"""Convert between KServe v2 tensors and the engine's domain types.

Names, datatypes and parameter limits come from :mod:`contract`. The image is the one BYTES
input of the request, whatever its name: over gRPC its element arrives in `raw_input_contents`
(4-byte little-endian length prefix) or in `contents.bytes_contents`; over REST JSON it is a
base64 string. Each output of `contract.OUTPUTS` has its encoder in `OUTPUT_ENCODERS`.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson
from kserve.errors import InvalidInput
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse

import contract

from .engine import OcrOptions, OcrResult
from .errors import MAX_ECHO_CHARS, echo

INPUT_TYPES: Final = [contract.IMAGE.metadata()]
OUTPUT_TYPES: Final = [spec.metadata() for spec in contract.OUTPUTS]


#: Most outputs a request may ask for: each of the contract's once.
MAX_REQUESTED_OUTPUTS: Final = len(contract.OUTPUTS)
_LENGTH_PREFIX: Final = struct.Struct("<I")
#: An integer parameter sent as text: at most 18 digits (int64), ASCII only.
_INT_TEXT: Final = re.compile(r"\s*-?[0-9]{1,18}\s*")


def parse_request(request: InferRequest, defaults: OcrOptions) -> tuple[bytes, OcrOptions]:
    """The image bytes and OCR options of a v2 request; InvalidInput when malformed.

    The image is the request's only input, whatever its name, so clients that call it
    `input-0` (KServe's and Triton's generic clients) are served like those that say `image`.
    Element counts are checked before anything is decoded: a 32 MiB tensor of millions of
    empty elements costs no more than a well-formed one.
    """
    _check_input_count(len(request.inputs))
    tensor = request.inputs[0]
    name = tensor.name
    _check_image_tensor(name, tensor.datatype, tensor.shape)
    image = _element_bytes(name, _single_element(name, tensor))
    return image, parse_options(request.parameters, defaults)


def check_grpc_request(request: pb.ModelInferRequest) -> None:
    """Refuse a gRPC request that cannot be one image before KServe converts it (which copies
    every `contents` element and requested output into Python objects and quotes names whole
    in its own messages); the same checks as `parse_request`, on counts only."""
    _check_input_count(len(request.inputs))
    if len(request.outputs) > MAX_REQUESTED_OUTPUTS:
        raise InvalidInput(
            f"at most {MAX_REQUESTED_OUTPUTS} outputs may be requested, got {len(request.outputs)}"
        )
    tensor = request.inputs[0]
    _check_image_tensor(tensor.name, tensor.datatype, tensor.shape)
    raw = request.raw_input_contents
    if len(raw) > 1:
        raise InvalidInput(f"expected one raw_input_contents entry, the image, got {len(raw)}")
    if raw and tensor.HasField("contents"):
        raise InvalidInput(
            f"input {echo(tensor.name)} has both contents and raw_input_contents: send one"
        )
    # Raw contents are read by parse_request (one length prefix): reading them here would copy
    # them out of the message once more.
    if not raw and len(tensor.contents.bytes_contents) != 1:
        raise _element_count_error(tensor.name, len(tensor.contents.bytes_contents))


def check_binary_request(body: bytes, json_length: str | None) -> None:
    """Refuse a REST request of the binary tensor extension (a JSON header, then raw tensor
    bytes; `json_length` is its `inference-header-content-length`) before KServe decodes it.

    KServe splits every raw BYTES element into a Python object (seconds for millions of empty
    ones) and then re-encodes each as UTF-8 text, which no image survives: its error answer
    (500) quotes the bytes whole. An image therefore cannot travel this way; the JSON header's
    counts are checked as `check_grpc_request` does, then a binary image is refused.
    """
    if json_length is None or not (json_length.isascii() and json_length.isdigit()):
        raise InvalidInput(
            "a binary request needs the header inference-header-content-length: the length "
            "of its JSON part in bytes"
        )
    try:
        header = orjson.loads(memoryview(body)[: int(json_length)])
    except orjson.JSONDecodeError:
        raise InvalidInput("the JSON part of a binary request is not JSON") from None
    inputs = header.get("inputs") if isinstance(header, dict) else None
    if not isinstance(inputs, list):
        raise InvalidInput("the JSON part of a binary request must be an object with 'inputs'")
    _check_input_count(len(inputs))
    tensor = inputs[0]
    if not isinstance(tensor, dict) or not isinstance(tensor.get("shape"), list):
        raise InvalidInput("an input must be an object with a name, a datatype and a shape")
    name = str(tensor.get("name", ""))
    _check_image_tensor(name, str(tensor.get("datatype", "")), tensor["shape"])
    if "data" not in tensor:
        raise InvalidInput(
            f"input {echo(name)}: the binary tensor extension cannot carry an image here "
            "(BYTES are read as UTF-8 text); send it base64 in JSON `data`, or over gRPC"
        )


def _check_input_count(count: int) -> None:
    if count != 1:
        raise InvalidInput(
            f"expected exactly one input, the image ({contract.IMAGE.datatype}, shape "
            f"{list(contract.IMAGE.shape)}, usually named {contract.IMAGE.name!r}), got {count}"
        )


def _check_image_tensor(name: str, datatype: str, shape: Any) -> None:
    if datatype != contract.IMAGE.datatype:
        raise InvalidInput(
            f"input {echo(name)} must have datatype {contract.IMAGE.datatype}, not {echo(datatype)}"
        )
    if len(shape) != len(contract.IMAGE.shape) or list(shape) != list(contract.IMAGE.shape):
        got = str(list(shape)) if len(shape) <= 8 else f"{len(shape)} dimensions"
        got = got if len(got) <= MAX_ECHO_CHARS else echo(got)
        raise InvalidInput(
            f"input {echo(name)} must have shape {list(contract.IMAGE.shape)}, not {got}"
        )


def _element_count_error(name: str, count: int) -> InvalidInput:
    return InvalidInput(
        f"input {echo(name)} must hold exactly one element, the encoded image, got {count}"
    )


def _single_element(name: str, tensor: InferInput) -> object:
    """The one element of `tensor`, found without decoding more than one."""
    # KServe keeps gRPC `raw_input_contents` undecoded here (pinned in
    # tests/unit/model/test_kserve_internals.py); `as_numpy()` would split every element.
    raw = getattr(tensor, "_raw_data", None)
    if raw is not None:
        start, end = _raw_element_span(name, raw)
        return bytes(raw[start:end])
    data = tensor.data
    count = len(data) if isinstance(data, list) else 0
    if count != 1:
        raise _element_count_error(name, count)
    return data[0]


def _raw_element_span(name: str, raw: bytes) -> tuple[int, int]:
    """Where the element of raw BYTES contents holding exactly one lies; reads one length
    prefix only, whatever follows it."""
    if len(raw) >= _LENGTH_PREFIX.size:
        (length,) = _LENGTH_PREFIX.unpack_from(raw)
        end = _LENGTH_PREFIX.size + length
        if end == len(raw):
            return _LENGTH_PREFIX.size, end
        if end < len(raw):
            raise InvalidInput(
                f"input {echo(name)} holds more than one element: expected exactly one element, "
                "the encoded image"
            )
    raise InvalidInput(
        f"input {echo(name)} holds malformed BYTES data: expected exactly one element, "
        "preceded by its 4-byte little-endian length when sent as raw contents"
    )


def _element_bytes(name: str, element: object) -> bytes:
    if isinstance(element, bytes):
        return element
    if isinstance(element, str):
        # REST JSON carries BYTES elements as base64 text, as KServe's clients send them.
        try:
            return base64.b64decode(element, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(
                f"input {echo(name)} must be base64 text in a JSON request"
            ) from None
    raise InvalidInput(f"input {echo(name)} must hold bytes")


def parse_options(parameters: Mapping[str, Any] | None, defaults: OcrOptions) -> OcrOptions:
    """OCR options from v2 request parameters (a gRPC InferParameter map or a JSON dict).

    Types are checked here; ranges and installed languages by the engine (`OcrOptions.validate`).
    """
    # Only the options are read: a request with a million other parameters costs no more.
    parameters = parameters or {}
    values = {
        spec.name: _parameter_value(parameters[spec.name])
        for spec in (contract.LANG, contract.PSM, contract.OEM)
        if spec.name in parameters
    }
    lang = values.get(contract.LANG.name, defaults.lang)
    if not isinstance(lang, str):
        raise InvalidInput(
            f"parameter {contract.LANG.name!r} must be a string such as 'eng' or 'eng+deu'"
        )
    if len(lang) > contract.LANG.max_length:
        raise InvalidInput(
            f"parameter {contract.LANG.name!r} must be at most {contract.LANG.max_length} "
            f"characters, got {len(lang)}"
        )
    psm = _int_option(values, contract.PSM.name, defaults.psm)
    oem = _int_option(values, contract.OEM.name, defaults.oem)
    return OcrOptions(lang=lang, psm=psm, oem=oem)


def parse_tenant(parameters: Mapping[str, Any] | None) -> str:
    """The caller's opaque `tenant` parameter (see `contract.TENANT`); "" when absent.

    Not an OCR option: the predictor keeps cached results apart per tenant.
    """
    raw = (parameters or {}).get(contract.TENANT.name)
    tenant = contract.TENANT.default if raw is None else _parameter_value(raw)
    if not isinstance(tenant, str) or not re.fullmatch(contract.TENANT.pattern, tenant):
        raise InvalidInput(
            f"parameter {contract.TENANT.name!r} must be a string of at most "
            f"{contract.TENANT.max_length} letters, digits and ':._-'"
        )
    return tenant


def _parameter_value(raw: Any) -> Any:
    which = getattr(raw, "WhichOneof", None)
    if which is None:
        return raw
    field = which("parameter_choice")
    return None if field is None else getattr(raw, field)


def _int_option(values: Mapping[str, Any], name: str, default: int) -> int:
    value = values.get(name, default)
    # Text is parsed only when it is a plain int64 (int() of 5000 digits raises ValueError).
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"parameter {name!r} must be an integer")
    return value


def words_json(result: OcrResult) -> str:
    """The words of a result as the JSON list carried by the `words` output."""
    return orjson.dumps(
        [{field: getattr(word, field) for field in contract.WORD_FIELDS} for word in result.words]
    ).decode()


# Lists, not arrays: KServe sends a numpy array as raw output even when the other outputs go
# in `contents`, and the protocol forbids mixing the two in one response.
OUTPUT_ENCODERS: Final[Mapping[str, Callable[[OcrResult], list[Any]]]] = {
    contract.TEXT.name: lambda result: [result.text],
    contract.CONFIDENCE.name: lambda result: [result.confidence],
    contract.WORDS.name: lambda result: [words_json(result)],
}
"""The encoder of each output of `contract.OUTPUTS`: a result in, the tensor's elements out."""


def build_response(request: InferRequest, result: OcrResult, model_name: str) -> InferResponse:
    """A v2 response; binary outputs when the request came with raw (binary) inputs."""
    outputs = [
        InferOutput(
            name=spec.name,
            shape=list(spec.shape),
            datatype=spec.datatype,
            data=OUTPUT_ENCODERS[spec.name](result),
        )
        for spec in contract.OUTPUTS
    ]
    return InferResponse(
        # REST clients may omit the id; the v2 response always carries one.
        response_id=request.id or uuid.uuid4().hex,
        model_name=model_name,
        infer_outputs=outputs,
        use_binary_outputs=request.use_binary_outputs,
        requested_outputs=request.request_outputs,
    )
