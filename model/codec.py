"""Convert between KServe v2 tensors and the engine's domain types.

Names, datatypes and parameter limits come from :mod:`contract`. The image is the one BYTES
input of the request, whatever its name: over gRPC its element arrives in `raw_input_contents`
(4-byte little-endian length prefix) or in `contents.bytes_contents`; over REST JSON it is a
base64 string. Each output of `contract.OUTPUTS` has its encoder in `OUTPUT_ENCODERS`.
"""

from __future__ import annotations

import base64
import binascii
import struct
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

import contract

from .engine import OcrOptions, OcrResult

INPUT_TYPES: Final = [contract.IMAGE.metadata()]
OUTPUT_TYPES: Final = [spec.metadata() for spec in contract.OUTPUTS]


def parse_request(request: InferRequest, defaults: OcrOptions) -> tuple[bytes, OcrOptions]:
    """The image bytes and OCR options of a v2 request; InvalidInput when malformed.

    The image is the request's only input, whatever its name, so clients that call it
    `input-0` (KServe's and Triton's generic clients) are served like those that say `image`.
    """
    if len(request.inputs) != 1:
        raise InvalidInput(
            f"expected exactly one input, the image ({contract.IMAGE.datatype}, shape "
            f"{list(contract.IMAGE.shape)}, usually named {contract.IMAGE.name!r}), "
            f"got {len(request.inputs)}"
        )
    tensor = request.inputs[0]
    name = tensor.name
    if tensor.datatype != contract.IMAGE.datatype:
        raise InvalidInput(
            f"input {name!r} must have datatype {contract.IMAGE.datatype}, not {tensor.datatype}"
        )
    if list(tensor.shape) != list(contract.IMAGE.shape):
        raise InvalidInput(
            f"input {name!r} must have shape {list(contract.IMAGE.shape)}, not {list(tensor.shape)}"
        )
    try:
        elements = tensor.as_numpy()
    except (struct.error, ValueError, TypeError, IndexError):
        raise InvalidInput(
            f"input {name!r} holds malformed BYTES data: expected exactly one element, "
            "preceded by its 4-byte little-endian length when sent as raw contents"
        ) from None
    if elements.size != 1:
        raise InvalidInput(f"input {name!r} must hold exactly 1 element, got {elements.size}")
    image = _element_bytes(name, elements.reshape(-1)[0])
    return image, parse_options(request.parameters, defaults)


def _element_bytes(name: str, element: object) -> bytes:
    if isinstance(element, bytes):
        return element
    if isinstance(element, str):
        # REST JSON carries BYTES elements as base64 text, as KServe's clients send them.
        try:
            return base64.b64decode(element, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"input {name!r} must be base64 text in a JSON request") from None
    raise InvalidInput(f"input {name!r} must hold bytes")


def parse_options(parameters: Mapping[str, Any] | None, defaults: OcrOptions) -> OcrOptions:
    """OCR options from v2 request parameters (a gRPC InferParameter map or a JSON dict).

    Types are checked here; ranges and installed languages by the engine (`OcrOptions.validate`).
    """
    values: dict[str, Any] = {}
    for key, raw in (parameters or {}).items():
        values[key] = _parameter_value(raw)
    lang = values.get(contract.LANG.name, defaults.lang)
    if not isinstance(lang, str):
        raise InvalidInput(
            f"parameter {contract.LANG.name!r} must be a string such as 'eng' or 'eng+deu'"
        )
    psm = _int_option(values, contract.PSM.name, defaults.psm)
    oem = _int_option(values, contract.OEM.name, defaults.oem)
    return OcrOptions(lang=lang, psm=psm, oem=oem)


def _parameter_value(raw: Any) -> Any:
    which = getattr(raw, "WhichOneof", None)
    if which is None:
        return raw
    field = which("parameter_choice")
    return None if field is None else getattr(raw, field)


def _int_option(values: Mapping[str, Any], name: str, default: int) -> int:
    value = values.get(name, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
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
