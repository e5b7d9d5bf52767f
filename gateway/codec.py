"""Pure conversions between OCR calls and KServe v2 protobuf messages (the model contract).

Request: one ``BYTES`` input ``image`` of shape ``[1]`` whose element (the untouched file bytes)
travels in ``raw_input_contents``; parameters ``lang`` (string) and optionally ``psm`` (int64).
Response: outputs ``text`` (BYTES [1], UTF-8), ``confidence`` (FP32 [1]) and ``words`` (BYTES
[1], a UTF-8 JSON list of word objects), either in ``raw_output_contents`` or in each output's
``contents``. A raw BYTES element is prefixed by its length as a 4-byte little-endian uint32.
"""

import math
import struct
from dataclasses import dataclass
from typing import Final

from pydantic import TypeAdapter, ValidationError

from gateway.errors import MalformedResponseError
from gateway.protocol import pb
from gateway.schemas import Word

IMAGE_INPUT: Final = "image"
TEXT_OUTPUT: Final = "text"
CONFIDENCE_OUTPUT: Final = "confidence"
WORDS_OUTPUT: Final = "words"

_LENGTH_PREFIX: Final = struct.Struct("<I")
_FP32: Final = struct.Struct("<f")
_WORDS: Final = TypeAdapter(list[Word])


@dataclass(frozen=True, slots=True)
class OcrResult:
    """What the model recognised in one image."""

    text: str
    confidence: float
    words: list[Word]
    model_name: str
    model_version: str | None


def encode_bytes_element(element: bytes) -> bytes:
    """One BYTES tensor element in raw form: its length (uint32 LE), then the bytes."""
    return _LENGTH_PREFIX.pack(len(element)) + element


def decode_bytes_elements(raw: bytes) -> list[bytes]:
    """Split raw BYTES tensor contents into elements; raise on a truncated prefix or element."""
    elements: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + _LENGTH_PREFIX.size > len(raw):
            raise MalformedResponseError(f"truncated length prefix at byte {offset}")
        (length,) = _LENGTH_PREFIX.unpack_from(raw, offset)
        offset += _LENGTH_PREFIX.size
        if offset + length > len(raw):
            raise MalformedResponseError(
                f"element of {length} bytes overruns the {len(raw)}-byte buffer"
            )
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def build_infer_request(
    image: bytes,
    *,
    model_name: str,
    request_id: str,
    lang: str,
    psm: int | None = None,
) -> pb.ModelInferRequest:
    """The ``ModelInfer`` request OCR-ing ``image`` (sent as-is) with ``lang`` and ``psm``."""
    parameters = {"lang": pb.InferParameter(string_param=lang)}
    if psm is not None:
        parameters["psm"] = pb.InferParameter(int64_param=psm)
    return pb.ModelInferRequest(
        model_name=model_name,
        id=request_id,
        parameters=parameters,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(name=IMAGE_INPUT, datatype="BYTES", shape=[1])
        ],
        raw_input_contents=[encode_bytes_element(image)],
    )


def decode_infer_response(response: pb.ModelInferResponse) -> OcrResult:
    """The :class:`OcrResult` in ``response``; :class:`MalformedResponseError` if off-contract."""
    outputs = _OutputReader(response)
    text_bytes = outputs.single_bytes(TEXT_OUTPUT)
    words_bytes = outputs.single_bytes(WORDS_OUTPUT)
    confidence = outputs.single_fp32(CONFIDENCE_OUTPUT)
    try:
        text = text_bytes.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MalformedResponseError(f"output {TEXT_OUTPUT!r} is not UTF-8: {err}") from None
    try:
        words = _WORDS.validate_json(words_bytes)
    except ValidationError as err:
        raise MalformedResponseError(
            f"output {WORDS_OUTPUT!r} is not a JSON list of words: {err}"
        ) from None
    return OcrResult(
        text=text,
        confidence=confidence,
        words=words,
        model_name=response.model_name,
        model_version=response.model_version or None,
    )


class _OutputReader:
    """Finds outputs by name, reading raw or typed contents as the server chose to send them."""

    def __init__(self, response: pb.ModelInferResponse) -> None:
        self._response = response
        self._raw = list(response.raw_output_contents)
        if self._raw and len(self._raw) != len(response.outputs):
            raise MalformedResponseError(
                f"{len(self._raw)} raw_output_contents for {len(response.outputs)} outputs"
            )
        self._index = {output.name: i for i, output in enumerate(response.outputs)}

    def _output(
        self, name: str, datatype: str
    ) -> tuple[pb.ModelInferResponse.InferOutputTensor, bytes | None]:
        index = self._index.get(name)
        if index is None:
            raise MalformedResponseError(f"output {name!r} is missing")
        output = self._response.outputs[index]
        if output.datatype != datatype:
            raise MalformedResponseError(
                f"output {name!r} has datatype {output.datatype!r}, expected {datatype!r}"
            )
        return output, (self._raw[index] if self._raw else None)

    def single_bytes(self, name: str) -> bytes:
        output, raw = self._output(name, "BYTES")
        elements = (
            decode_bytes_elements(raw) if raw is not None else list(output.contents.bytes_contents)
        )
        if len(elements) != 1:
            raise MalformedResponseError(f"output {name!r} has {len(elements)} elements, not 1")
        return elements[0]

    def single_fp32(self, name: str) -> float:
        output, raw = self._output(name, "FP32")
        if raw is not None:
            if len(raw) != _FP32.size:
                raise MalformedResponseError(
                    f"output {name!r} has {len(raw)} raw bytes, expected {_FP32.size}"
                )
            (value,) = _FP32.unpack(raw)
            values = [float(value)]
        else:
            values = list(output.contents.fp32_contents)
        if len(values) != 1:
            raise MalformedResponseError(f"output {name!r} has {len(values)} elements, not 1")
        if not math.isfinite(values[0]):
            raise MalformedResponseError(f"output {name!r} is not finite: {values[0]}")
        return values[0]
