"""Convert between KServe v2 tensors and the engine's domain types.

Names, datatypes and parameter limits come from :mod:`contract`. The image is the one BYTES
input of the request, whatever its name: over gRPC its element arrives in `raw_input_contents`
(4-byte little-endian length prefix) or in `contents.bytes_contents`; over REST JSON it is a
base64 string. Each output of `contract.OUTPUTS` has its encoder in `OUTPUT_ENCODERS`; a
request gets the outputs it lists (`parse_outputs`), or `contract.DEFAULT_OUTPUTS`, shaped by
the request's output options (`parse_output_options`: `pdf_text_only`).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from kserve.errors import InvalidInput
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
)
from PIL import Image

import contract

from .engine import OcrOptions, OcrResult, Word
from .errors import MAX_ECHO_CHARS, echo
from .formats import FormatPage
from .formats.alto import alto_document
from .formats.hocr import hocr_document
from .formats.pdf import DEFAULT_FONT, pdf_document
from .formats.tsv import tsv_document

INPUT_TYPES: Final = [contract.IMAGE.metadata()]
OUTPUT_TYPES: Final = [spec.metadata() for spec in contract.OUTPUTS]


#: Most outputs a request may ask for: each of the contract's once.
MAX_REQUESTED_OUTPUTS: Final = len(contract.OUTPUTS)
#: Outputs that are binary files (REST JSON cannot carry them: see `parse_outputs`).
BINARY_OUTPUTS: Final = (contract.PDF.name, contract.PREVIEW.name)
#: JPEG quality of the preview: words stay legible, a 1600 px page weighs 100-300 kB.
PREVIEW_QUALITY: Final = 80
_LENGTH_PREFIX: Final = struct.Struct("<I")
#: An integer parameter sent as text: at most 18 digits (int64), ASCII only.
_INT_TEXT: Final = re.compile(r"\s*-?[0-9]{1,18}\s*")
#: A boolean parameter sent as text.
_BOOL_TEXT: Final = {"true": True, "false": False}


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
        for spec in (contract.LANG, contract.PSM, contract.OEM, contract.PAGE_NUMBER, contract.DPI)
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
    rotate = _choice_option(parameters, contract.ROTATE, defaults.rotate)
    deskew = _bool_option(parameters, contract.DESKEW, defaults.deskew)
    page = _int_option(values, contract.PAGE_NUMBER.name, defaults.page)
    dpi = _int_option(values, contract.DPI.name, defaults.dpi)
    pdf_text = _choice_option(parameters, contract.PDF_TEXT, defaults.pdf_text)
    return OcrOptions(
        lang=lang,
        psm=psm,
        oem=oem,
        rotate=rotate,
        deskew=deskew,
        page=page,
        dpi=dpi,
        pdf_text=pdf_text,
    )


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """How a request wants its outputs written (not how its page is read: see `OcrOptions`)."""

    pdf_text_only: bool = contract.PDF_TEXT_ONLY.default
    """The `pdf` output holds the invisible text layer alone, no page image."""
    pdf_font: Path = DEFAULT_FONT
    """Tesseract's glyphless font the text layer is drawn in (the server's, not the request's:
    the predictor sets it from the tessdata directory)."""


def parse_output_options(parameters: Mapping[str, Any] | None) -> OutputOptions:
    """The output options of v2 request parameters; InvalidInput when malformed."""
    parameters = parameters or {}
    return OutputOptions(
        pdf_text_only=_bool_option(
            parameters, contract.PDF_TEXT_ONLY, contract.PDF_TEXT_ONLY.default
        )
    )


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


def _choice_option(
    parameters: Mapping[str, Any], spec: contract.ChoiceParameter, default: str
) -> str:
    if spec.name not in parameters:
        return default
    value = _parameter_value(parameters[spec.name])
    if not isinstance(value, str) or value not in spec.choices:
        got = (
            f"not {echo(value)}"
            if isinstance(value, str)
            else f"got a value of type {type(value).__name__}"
        )
        raise InvalidInput(
            f"parameter {spec.name!r} must be one of "
            + ", ".join(repr(choice) for choice in spec.choices)
            + f", {got}"
        )
    return value


def _bool_option(
    parameters: Mapping[str, Any], spec: contract.BoolParameter, default: bool
) -> bool:
    if spec.name not in parameters:
        return default
    value = _parameter_value(parameters[spec.name])
    # REST clients that send every parameter as text say "true" or "false".
    if isinstance(value, str) and value in _BOOL_TEXT:
        return _BOOL_TEXT[value]
    if not isinstance(value, bool):
        raise InvalidInput(
            f"parameter {spec.name!r} must be a boolean: true or false (or the strings "
            "'true' or 'false')"
        )
    return value


def _int_option(values: Mapping[str, Any], name: str, default: int) -> int:
    value = values.get(name, default)
    # Text is parsed only when it is a plain int64 (int() of 5000 digits raises ValueError).
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"parameter {name!r} must be an integer")
    return value


def parse_outputs(request: InferRequest) -> tuple[str, ...]:
    """Names of the outputs `request` asks for, in the contract's order; the contract's
    defaults when it lists none. InvalidInput for an unknown or repeated name, and for a
    binary output (`pdf`, `preview`) asked for as JSON text over REST (see `binary_outputs`)."""
    listed = request.request_outputs or []
    if len(listed) > MAX_REQUESTED_OUTPUTS:
        raise InvalidInput(
            f"at most {MAX_REQUESTED_OUTPUTS} outputs may be requested, got {len(listed)}"
        )
    if not listed:
        return contract.DEFAULT_OUTPUTS
    names = [output.name for output in listed]
    for name in names:
        if name not in contract.OUTPUTS_BY_NAME:
            raise InvalidInput(
                f"unknown output {echo(name)}: this model's outputs are "
                + ", ".join(spec.name for spec in contract.OUTPUTS)
            )
    if len(set(names)) < len(names):
        repeated = next(name for name in names if names.count(name) > 1)
        raise InvalidInput(f"output {echo(repeated)} is requested twice")
    wanted = tuple(spec.name for spec in contract.OUTPUTS if spec.name in names)
    binary = [name for name in BINARY_OUTPUTS if name in wanted]
    if binary and not request.from_grpc:
        in_binary = binary_outputs(request)
        for name in binary:
            if name not in in_binary:
                raise InvalidInput(
                    f"output {name!r} is a binary file, which REST JSON cannot carry "
                    "(its BYTES are UTF-8 text): ask for it in binary, with "
                    '`"parameters": {"binary_data": true}` on the output or '
                    '`"binary_data_output": true` in the request parameters, or over gRPC'
                )
    return wanted


def binary_outputs(request: InferRequest) -> frozenset[str]:
    """The listed outputs a REST answer carries in binary (the binary tensor extension): those
    with `binary_data: true`, and with the request's `binary_data_output: true` those saying
    nothing. KServe reads only the former once a request lists outputs; `build_response`
    passes the latter on to it."""
    default = _binary_data_output(request)
    found = set()
    for output in request.request_outputs or []:
        binary = output.binary_data
        if binary is True or (binary is None and default):
            found.add(output.name)
    return frozenset(found)


def _binary_data_output(request: InferRequest) -> bool:
    parameters = request.parameters
    if request.from_grpc or not isinstance(parameters, Mapping):
        return False
    return parameters.get("binary_data_output") is True


def word_fields(word: Word, page: int = 1) -> dict[str, Any]:
    """A word of page `page` as the contract names its fields, in the contract's order."""
    return {
        field: page if field == "page" else getattr(word, field) for field in contract.WORD_FIELDS
    }


def words_json(result: OcrResult) -> str:
    """The words of a result as the JSON list carried by the `words` output."""
    return orjson.dumps([word_fields(word, result.page) for word in result.words]).decode()


def page_json(page: FormatPage) -> bytes:
    """The `page` output: `contract.PageFacts` of one page, as UTF-8 JSON."""
    result = page.result
    timings = result.timings
    facts = contract.PageFacts(
        page=page.number,
        page_count=result.page_count,
        source=result.source,
        width=result.width,
        height=result.height,
        dpi=result.dpi,
        rotation=result.rotation,
        rotation_confidence=result.rotation_confidence,
        skew=result.skew,
        text=result.text,
        confidence=result.confidence,
        words=[contract.Word(**word_fields(word, page.number)) for word in result.words],
        timings=contract.PageTimings(
            queue_s=timings.queue_s,
            decode_s=timings.decode_s,
            preprocess_s=timings.preprocess_s,
            recognize_s=timings.recognize_s,
        ),
    )
    return facts.model_dump_json().encode()


def preview_jpeg(page: FormatPage) -> bytes:
    """The `preview` output: the page image that was read as a JPEG, scaled (never enlarged) so
    its longest side is at most `contract.PREVIEW_MAX_SIDE`, keeping its aspect."""
    image = page.image
    if image is None:
        # The predictor keeps the image whenever `preview` is wanted: a bug if it is missing.
        raise ValueError("the preview needs the page image that was read")
    # A 1-bit page is scaled in 8-bit gray, so the strokes' edges stay smooth.
    preview = image.copy() if image.mode in ("L", "RGB") else image.convert("L")
    side = contract.PREVIEW_MAX_SIDE
    preview.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    preview.save(out, "JPEG", quality=PREVIEW_QUALITY)
    return out.getvalue()


# Lists, not arrays: KServe sends a numpy array as raw output even when the other outputs go
# in `contents`, and the protocol forbids mixing the two in one response.
OUTPUT_ENCODERS: Final[Mapping[str, Callable[[FormatPage, OutputOptions], list[Any]]]] = {
    contract.TEXT.name: lambda page, _: [page.result.text],
    contract.CONFIDENCE.name: lambda page, _: [page.result.confidence],
    contract.WORDS.name: lambda page, _: [words_json(page.result)],
    contract.HOCR.name: lambda page, _: [hocr_document([page])],
    contract.TSV.name: lambda page, _: [tsv_document([page])],
    contract.ALTO.name: lambda page, _: [alto_document([page])],
    contract.PDF.name: lambda page, options: [
        pdf_document([page], font_path=options.pdf_font, text_only=options.pdf_text_only)
    ],
    contract.PAGE.name: lambda page, _: [page_json(page)],
    contract.PREVIEW.name: lambda page, _: [preview_jpeg(page)],
}
"""The encoder of each output of `contract.OUTPUTS`: one page and the request's output options
in, the tensor's elements out. Only the outputs a request wants are encoded."""


def build_response(
    request: InferRequest,
    result: OcrResult,
    model_name: str,
    outputs: Sequence[str] | None = None,
    image: Image.Image | None = None,
    options: OutputOptions | None = None,
) -> InferResponse:
    """A v2 response carrying `outputs` (default: those the request asks for, `parse_outputs`)
    in the contract's order, read from `result` and, for `pdf` and `preview`, the upright page
    `image`, written as `options` say (default: as the request's parameters say); binary
    outputs when the request came with raw (binary) inputs or asked for them."""
    wanted = parse_outputs(request) if outputs is None else outputs
    if options is None:
        options = parse_output_options(request.parameters)
    # Numbered as the page of the file that was read (page 3 of a TIFF is page 3 in hOCR too).
    page = FormatPage(number=result.page, result=result, image=image)
    infer_outputs = [
        InferOutput(
            name=spec.name,
            shape=list(spec.shape),
            datatype=spec.datatype,
            data=OUTPUT_ENCODERS[spec.name](page, options),
        )
        for spec in contract.OUTPUTS
        if spec.name in wanted
    ]
    return InferResponse(
        # REST clients may omit the id; the v2 response always carries one.
        response_id=request.id or uuid.uuid4().hex,
        model_name=model_name,
        infer_outputs=infer_outputs,
        use_binary_outputs=request.use_binary_outputs,
        requested_outputs=_requested_in_order(request, wanted),
    )


def _requested_in_order(
    request: InferRequest, wanted: Sequence[str]
) -> list[RequestedOutput] | None:
    """The request's listed outputs in the order of `wanted`, for KServe's REST encoder (which
    answers them in the order given), each saying whether it goes in binary; None when the
    request listed none."""
    if not request.request_outputs:
        return None
    binary = binary_outputs(request)
    return [RequestedOutput(name, {"binary_data": name in binary}) for name in wanted]
