"""Pure conversions between OCR calls and KServe v2 protobuf messages.

The names, datatypes and parameters come from :mod:`contract`. Request: the ``image`` input
whose element (the untouched file bytes) travels in ``raw_input_contents``; parameters ``lang``
and optionally ``psm`` and ``tenant``. Response: the default outputs, read either from
``raw_output_contents`` or from each output's ``contents``, whichever the server chose.
"""

import math
import struct
from dataclasses import dataclass
from typing import Final

from pydantic import TypeAdapter, ValidationError

import contract
from contract import Word
from gateway.errors import MalformedResponseError
from gateway.protocol import pb

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
    return contract.encode_bytes_element(element)


def decode_bytes_elements(raw: bytes) -> list[bytes]:
    """Split raw BYTES tensor contents into elements; raise on a truncated prefix or element."""
    try:
        return contract.decode_bytes_elements(raw)
    except contract.MalformedBytesError as err:
        raise MalformedResponseError(str(err)) from None


def build_infer_request(
    image: bytes,
    *,
    model_name: str,
    request_id: str,
    lang: str,
    psm: int | None = None,
    tenant: str | None = None,
) -> pb.ModelInferRequest:
    """The ``ModelInfer`` request OCR-ing ``image`` (sent as-is) with ``lang`` and ``psm``, for
    ``tenant`` (the caller's opaque id: the model caches results per tenant)."""
    parameters = {contract.LANG.name: pb.InferParameter(string_param=lang)}
    if psm is not None:
        parameters[contract.PSM.name] = pb.InferParameter(int64_param=psm)
    if tenant is not None:
        parameters[contract.TENANT.name] = pb.InferParameter(string_param=tenant)
    return pb.ModelInferRequest(
        model_name=model_name,
        id=request_id,
        parameters=parameters,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name=contract.IMAGE.name,
                datatype=contract.IMAGE.datatype,
                shape=list(contract.IMAGE.shape),
            )
        ],
        raw_input_contents=[encode_bytes_element(image)],
    )


def decode_infer_response(response: pb.ModelInferResponse) -> OcrResult:
    """The :class:`OcrResult` in ``response``; :class:`MalformedResponseError` if off-contract."""
    outputs = _OutputReader(response)
    text_bytes = outputs.single_bytes(contract.TEXT)
    words_bytes = outputs.single_bytes(contract.WORDS)
    confidence = outputs.single_fp32(contract.CONFIDENCE)
    try:
        text = text_bytes.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MalformedResponseError(f"output {contract.TEXT.name!r} is not UTF-8: {err}") from None
    try:
        words = _WORDS.validate_json(words_bytes)
    except ValidationError as err:
        raise MalformedResponseError(
            f"output {contract.WORDS.name!r} is not a JSON list of words: {err}"
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
        self, spec: contract.TensorSpec, datatype: str
    ) -> tuple[pb.ModelInferResponse.InferOutputTensor, bytes | None]:
        name = spec.name
        if spec.datatype != datatype:  # a contract change this reader does not follow
            raise TypeError(f"output {name!r} is {spec.datatype}, not {datatype}")
        index = self._index.get(name)
        if index is None:
            raise MalformedResponseError(f"output {name!r} is missing")
        output = self._response.outputs[index]
        if output.datatype != datatype:
            raise MalformedResponseError(
                f"output {name!r} has datatype {output.datatype!r}, expected {datatype!r}"
            )
        return output, (self._raw[index] if self._raw else None)

    def single_bytes(self, spec: contract.TensorSpec) -> bytes:
        name = spec.name
        output, raw = self._output(spec, "BYTES")
        elements = (
            decode_bytes_elements(raw) if raw is not None else list(output.contents.bytes_contents)
        )
        if len(elements) != 1:
            raise MalformedResponseError(f"output {name!r} has {len(elements)} elements, not 1")
        return elements[0]

    def single_fp32(self, spec: contract.TensorSpec) -> float:
        name = spec.name
        output, raw = self._output(spec, "FP32")
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
