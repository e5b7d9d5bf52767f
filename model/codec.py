"""Convert between KServe v2 tensors and the engine's domain types.

The contract (also served as ModelMetadata): one input `image`, BYTES, shape [1], holding the
encoded file. Over gRPC the element arrives in `raw_input_contents` (4-byte little-endian length
prefix) or in `contents.bytes_contents`; over REST JSON it is a base64 string. Request parameters:
`lang` (string), `psm` and `oem` (integers). Outputs: `text` BYTES [1], `confidence` FP32 [1],
`words` BYTES [1] (a JSON list).
"""

from __future__ import annotations

import base64
import binascii
import struct
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from .engine import OcrOptions, OcrResult

INPUT_NAME = "image"
INPUT_TYPES: list[dict[str, Any]] = [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [1]}]
OUTPUT_TYPES: list[dict[str, Any]] = [
    {"name": "text", "datatype": "BYTES", "shape": [1]},
    {"name": "confidence", "datatype": "FP32", "shape": [1]},
    {"name": "words", "datatype": "BYTES", "shape": [1]},
]
_INT_OPTIONS = ("psm", "oem")


def parse_request(request: InferRequest, defaults: OcrOptions) -> tuple[bytes, OcrOptions]:
    """The image bytes and OCR options of a v2 request; InvalidInput when malformed."""
    if len(request.inputs) != 1:
        raise InvalidInput(
            f"expected exactly one input named {INPUT_NAME!r}, got {len(request.inputs)}"
        )
    tensor = request.inputs[0]
    if tensor.name != INPUT_NAME:
        raise InvalidInput(f"unknown input {tensor.name!r}: the input must be named {INPUT_NAME!r}")
    if tensor.datatype != "BYTES":
        raise InvalidInput(f"input {INPUT_NAME!r} must have datatype BYTES, not {tensor.datatype}")
    if list(tensor.shape) != [1]:
        raise InvalidInput(f"input {INPUT_NAME!r} must have shape [1], not {list(tensor.shape)}")
    try:
        elements = tensor.as_numpy()
    except (struct.error, ValueError, TypeError, IndexError):
        raise InvalidInput(
            f"input {INPUT_NAME!r} holds malformed BYTES data: expected exactly one element, "
            "preceded by its 4-byte little-endian length when sent as raw contents"
        ) from None
    if elements.size != 1:
        raise InvalidInput(f"input {INPUT_NAME!r} must hold exactly 1 element, got {elements.size}")
    return _element_bytes(elements.reshape(-1)[0]), parse_options(request.parameters, defaults)


def _element_bytes(element: object) -> bytes:
    if isinstance(element, bytes):
        return element
    if isinstance(element, str):
        # REST JSON carries BYTES elements as base64 text, as KServe's clients send them.
        try:
            return base64.b64decode(element, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(
                f"input {INPUT_NAME!r} must be base64 text in a JSON request"
            ) from None
    raise InvalidInput(f"input {INPUT_NAME!r} must hold bytes")


def parse_options(parameters: Mapping[str, Any] | None, defaults: OcrOptions) -> OcrOptions:
    """OCR options from v2 request parameters (a gRPC InferParameter map or a JSON dict)."""
    values: dict[str, Any] = {}
    for key, raw in (parameters or {}).items():
        values[key] = _parameter_value(raw)
    lang = values.get("lang", defaults.lang)
    if not isinstance(lang, str):
        raise InvalidInput("parameter 'lang' must be a string such as 'eng' or 'eng+deu'")
    psm, oem = (_int_option(values, name, getattr(defaults, name)) for name in _INT_OPTIONS)
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
        [
            {
                "text": w.text,
                "confidence": w.confidence,
                "left": w.left,
                "top": w.top,
                "width": w.width,
                "height": w.height,
                "block": w.block,
                "line": w.line,
            }
            for w in result.words
        ]
    ).decode()


def build_response(request: InferRequest, result: OcrResult, model_name: str) -> InferResponse:
    """A v2 response; binary outputs when the request came with raw (binary) inputs."""
    outputs = [
        InferOutput(name="text", shape=[1], datatype="BYTES", data=[result.text]),
        # Lists, not arrays: KServe sends a numpy array as raw output even when the other outputs
        # go in `contents`, and the protocol forbids mixing the two in one response.
        InferOutput(name="confidence", shape=[1], datatype="FP32", data=[result.confidence]),
        InferOutput(name="words", shape=[1], datatype="BYTES", data=[words_json(result)]),
    ]
    return InferResponse(
        # REST clients may omit the id; the v2 response always carries one.
        response_id=request.id or uuid.uuid4().hex,
        model_name=model_name,
        infer_outputs=outputs,
        use_binary_outputs=request.use_binary_outputs,
        requested_outputs=request.request_outputs,
    )
