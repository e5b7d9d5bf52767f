"""Pure conversions between OCR calls and KServe v2 protobuf messages.

The names, datatypes and parameters come from :mod:`contract`. Request: the ``image`` input
whose element (the untouched file bytes) travels in ``raw_input_contents``; parameters ``lang``
and optionally ``psm``, ``tenant``, ``rotate`` and ``deskew``; the outputs wanted, by name (none:
the model's default outputs). Response: the outputs asked for, read either from
``raw_output_contents`` or from each output's ``contents``, whichever the server chose, each
checked against what the contract says it holds.
"""

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from pydantic import TypeAdapter, ValidationError

import contract
from contract import PageFacts, Word
from gateway.errors import MalformedResponseError
from gateway.protocol import pb

_FP32: Final = struct.Struct("<f")
_WORDS: Final = TypeAdapter(list[Word])

#: Outputs that are a whole document in another format, handed to the client as they come.
DOCUMENT_OUTPUTS: Final[frozenset[str]] = frozenset(
    f.output.name for f in contract.OUTPUT_FORMATS if f.output is not None
)
#: The documents served as UTF-8 text (a charset in their media type): checked to be UTF-8, so
#: the charset the answer declares is true. The others (the PDF) are binary, never looked into.
_UTF8_DOCUMENTS: Final[frozenset[str]] = frozenset(
    f.output.name
    for f in contract.OUTPUT_FORMATS
    if f.output is not None and "charset=utf-8" in f.media_type.replace(" ", "").lower()
)
#: Every output this module decodes; a test holds it to `contract.OUTPUTS`.
DECODED_OUTPUTS: Final[frozenset[str]] = frozenset(
    {
        contract.TEXT.name,
        contract.CONFIDENCE.name,
        contract.WORDS.name,
        contract.PAGE.name,
        contract.PREVIEW.name,
    }
    | DOCUMENT_OUTPUTS
)
#: How every JPEG starts: the start-of-image marker, then another marker.
_JPEG_MAGIC: Final = b"\xff\xd8\xff"


@dataclass(frozen=True, slots=True, kw_only=True)
class OcrResult:
    """What the model answered for one image: each output asked for, None for the others."""

    model_name: str
    model_version: str | None
    text: str | None = None
    confidence: float | None = None
    words: list[Word] | None = None
    page: PageFacts | None = None
    documents: Mapping[str, bytes] = field(default_factory=dict)
    """The document outputs asked for (hOCR, TSV, ALTO, PDF) by name: their bytes, untouched."""
    preview: bytes | None = None
    """The JPEG of the page as read, when asked for."""


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
    rotate: str | None = None,
    deskew: bool | None = None,
    outputs: Sequence[str] | None = None,
    dpi: int | None = None,
    pdf_text: str | None = None,
    pdf_text_only: bool = False,
) -> pb.ModelInferRequest:
    """The ``ModelInfer`` request OCR-ing ``image`` (sent as-is) with ``lang`` and ``psm``, for
    ``tenant`` (the caller's opaque id: the model caches results per tenant).

    ``rotate``, ``deskew``, ``dpi`` (a PDF page's render resolution) and ``pdf_text`` (``keep``:
    a PDF page's own text instead of OCR) are sent only when given (the model's defaults apply
    otherwise); ``pdf_text_only`` asks for the ``pdf`` output as a
    text layer without the page image, to lay over an original PDF page;
    ``outputs`` names the outputs wanted, in the v2 ``outputs`` field (None: the model's
    default outputs, ``contract.DEFAULT_OUTPUTS``).
    """
    parameters = {contract.LANG.name: pb.InferParameter(string_param=lang)}
    if psm is not None:
        parameters[contract.PSM.name] = pb.InferParameter(int64_param=psm)
    if tenant is not None:
        parameters[contract.TENANT.name] = pb.InferParameter(string_param=tenant)
    if rotate is not None:
        if rotate not in contract.ROTATE.choices:
            raise ValueError(f"rotate must be one of {contract.ROTATE.choices}, not {rotate!r}")
        parameters[contract.ROTATE.name] = pb.InferParameter(string_param=rotate)
    if deskew is not None:
        parameters[contract.DESKEW.name] = pb.InferParameter(bool_param=deskew)
    if dpi is not None:
        if dpi not in contract.DPI.values:
            raise ValueError(f"dpi must be within {contract.DPI.minimum}..{contract.DPI.maximum}")
        parameters[contract.DPI.name] = pb.InferParameter(int64_param=dpi)
    if pdf_text is not None:
        if pdf_text not in contract.PDF_TEXT.choices:
            raise ValueError(f"pdf_text must be one of {contract.PDF_TEXT.choices}")
        parameters[contract.PDF_TEXT.name] = pb.InferParameter(string_param=pdf_text)
    if pdf_text_only:
        parameters[contract.PDF_TEXT_ONLY.name] = pb.InferParameter(bool_param=True)
    requested = [] if outputs is None else _checked_output_names(outputs)
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
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=name) for name in requested],
        raw_input_contents=[encode_bytes_element(image)],
    )


def _checked_output_names(outputs: Sequence[str]) -> list[str]:
    """``outputs`` as a list, if each is a contract output named once (a caller's bug if not)."""
    names = list(outputs)
    unknown = [name for name in names if name not in contract.OUTPUTS_BY_NAME]
    if unknown:
        raise ValueError(f"not outputs of the contract: {unknown}")
    if len(set(names)) != len(names):
        raise ValueError(f"an output is named twice: {names}")
    if not names:
        raise ValueError("name at least one output, or None for the default outputs")
    return names


def decode_infer_response(
    response: pb.ModelInferResponse, outputs: Sequence[str] | None = None
) -> OcrResult:
    """The :class:`OcrResult` of ``outputs`` in ``response`` (None: the default outputs);
    :class:`MalformedResponseError` if one is missing or not what the contract says it holds.

    Outputs not asked for are not read, even when the server sends them.
    """
    asked = frozenset(
        contract.DEFAULT_OUTPUTS if outputs is None else _checked_output_names(outputs)
    )
    reader = _OutputReader(response)
    text: str | None = None
    confidence: float | None = None
    words: list[Word] | None = None
    page: PageFacts | None = None
    if contract.TEXT.name in asked:
        text = _utf8(contract.TEXT, reader.single_bytes(contract.TEXT))
    if contract.CONFIDENCE.name in asked:
        confidence = reader.single_fp32(contract.CONFIDENCE)
    if contract.WORDS.name in asked:
        words = _words(reader.single_bytes(contract.WORDS))
    if contract.PAGE.name in asked:
        page = _page(reader.single_bytes(contract.PAGE))
    preview: bytes | None = None
    if contract.PREVIEW.name in asked:
        preview = reader.single_bytes(contract.PREVIEW)
        if not preview.startswith(_JPEG_MAGIC):
            raise MalformedResponseError(f"output {contract.PREVIEW.name!r} is not a JPEG")
    documents: dict[str, bytes] = {}
    for name in sorted(asked & DOCUMENT_OUTPUTS):
        spec = contract.OUTPUTS_BY_NAME[name]
        document = reader.single_bytes(spec)
        if name in _UTF8_DOCUMENTS:
            _utf8(spec, document)
        documents[name] = document
    return OcrResult(
        model_name=response.model_name,
        model_version=response.model_version or None,
        text=text,
        confidence=confidence,
        words=words,
        page=page,
        documents=documents,
        preview=preview,
    )


def _utf8(spec: contract.TensorSpec, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MalformedResponseError(f"output {spec.name!r} is not UTF-8: {err}") from None


def _words(data: bytes) -> list[Word]:
    try:
        return _WORDS.validate_json(data)
    except ValidationError as err:
        raise MalformedResponseError(
            f"output {contract.WORDS.name!r} is not a JSON list of words: {err}"
        ) from None


def _page(data: bytes) -> PageFacts:
    try:
        return PageFacts.model_validate_json(data)
    except ValidationError as err:
        raise MalformedResponseError(
            f"output {contract.PAGE.name!r} is not a JSON page object: {err}"
        ) from None


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
