"""Test doubles for the gateway: a scriptable in-process KServe v2 gRPC server and sample data."""

import asyncio
import io
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import orjson
from PIL import Image, ImageDraw

import contract
from contract.metadata import LANGUAGES
from gateway.codec import encode_bytes_element
from gateway.protocol import pb, pb_grpc

MODEL_NAME = "ocr-model"
MODEL_VERSION = "7"
SAMPLE_TEXT = "Hello world"
SAMPLE_CONFIDENCE = 91.25  # exact in FP32
SAMPLE_WORDS: list[dict[str, Any]] = [
    {"text": "Hello", "confidence": 95.5, "left": 4, "top": 5, "width": 40, "height": 12,
     "page": 1, "block": 1, "paragraph": 1, "line": 1},
    {"text": "world", "confidence": 87.0, "left": 50, "top": 5, "width": 42, "height": 12,
     "page": 1, "block": 1, "paragraph": 1, "line": 1},
]  # fmt: skip
SAMPLE_PAGE: dict[str, Any] = {
    "page": 1, "page_count": 1, "source": "ocr", "width": 64, "height": 24, "dpi": 300.0,
    "rotation": 90,
    "rotation_confidence": 12.5, "skew": -1.5, "text": SAMPLE_TEXT,
    "confidence": SAMPLE_CONFIDENCE, "words": SAMPLE_WORDS,
    "timings": {"queue_s": 0.001, "decode_s": 0.002, "preprocess_s": 0.003, "recognize_s": 0.04},
}  # fmt: skip
#: Placeholders of the document outputs: only their bytes matter to the gateway, which hands
#: them on untouched (the real documents are tested against the real model).
SAMPLE_DOCUMENTS: dict[str, bytes] = {
    "hocr": b'<html xmlns="http://www.w3.org/1999/xhtml"><body><div class="ocr_page">'
    b'<span class="ocrx_word">Hello</span> <span class="ocrx_word">w\xc3\xb6rld</span>'
    b"</div></body></html>\n",
    "tsv": b"level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth"
    b"\theight\tconf\ttext\n5\t1\t1\t1\t1\t1\t4\t5\t40\t12\t95.5\tHello\n",
    "alto": b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Layout/></alto>\n',
    # Not UTF-8, with CR LF and NUL: bytes no text codec would leave alone.
    "pdf": b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\r\n\x00\xff binary stream\r\n%%EOF\n",
}
#: What a request that lists no outputs receives.
DEFAULT_OUTPUTS: tuple[str, ...] = contract.DEFAULT_OUTPUTS
#: The languages the fake model names in its `ModelMetadata` answer.
SAMPLE_LANGUAGES: tuple[str, ...] = ("deu", "eng", "fra")
#: What the gateway asks for to answer JSON.
JSON_OUTPUTS: tuple[str, ...] = ("text", "confidence", "words", "page")


def png_bytes(size: tuple[int, int] = (64, 24)) -> bytes:
    """A small real PNG with some dark pixels on it."""
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((2, 2, size[0] // 2, size[1] // 2), fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(size: tuple[int, int] = (64, 24)) -> bytes:
    """A small real JPEG, the size of `SAMPLE_PAGE` by default."""
    buffer = io.BytesIO()
    Image.new("L", size, 255).save(buffer, format="JPEG")
    return buffer.getvalue()


#: The `preview` output of the fake model: the sample page as a JPEG.
SAMPLE_PREVIEW: bytes = jpeg_bytes()


def ok_response(
    *,
    raw: bool = True,
    text: str = SAMPLE_TEXT,
    confidence: float = SAMPLE_CONFIDENCE,
    words: Sequence[dict[str, Any]] = tuple(SAMPLE_WORDS),
    page: dict[str, Any] | None = None,
    documents: dict[str, bytes] | None = None,
    outputs: Sequence[str] = JSON_OUTPUTS,
    model_name: str = MODEL_NAME,
    model_version: str = MODEL_VERSION,
    request_id: str = "",
) -> pb.ModelInferResponse:
    """A contract-abiding response holding ``outputs`` in that order, in
    ``raw_output_contents`` or in typed ``contents``.

    ``page`` defaults to `SAMPLE_PAGE` with ``text``, ``confidence`` and ``words``;
    ``documents`` to `SAMPLE_DOCUMENTS`.
    """
    if page is None:
        page = {**SAMPLE_PAGE, "text": text, "confidence": confidence, "words": list(words)}
    elements: dict[str, bytes | float] = {
        "text": text.encode(),
        "confidence": confidence,
        "words": orjson.dumps(list(words)),
        "page": orjson.dumps(page),
        "preview": SAMPLE_PREVIEW,
        **SAMPLE_DOCUMENTS,
        **(documents or {}),
    }
    tensor = pb.ModelInferResponse.InferOutputTensor
    contents = pb.InferTensorContents
    response = pb.ModelInferResponse(
        model_name=model_name, model_version=model_version, id=request_id
    )
    for name in outputs:
        spec = contract.OUTPUTS_BY_NAME[name]
        value = elements[name]
        if spec.datatype == "FP32":
            assert isinstance(value, float)
            if raw:
                response.outputs.append(tensor(name=name, datatype="FP32", shape=[1]))
                response.raw_output_contents.append(struct.pack("<f", value))
            else:
                response.outputs.append(
                    tensor(
                        name=name,
                        datatype="FP32",
                        shape=[1],
                        contents=contents(fp32_contents=[value]),
                    )
                )
            continue
        assert isinstance(value, bytes)
        if raw:
            response.outputs.append(tensor(name=name, datatype="BYTES", shape=[1]))
            response.raw_output_contents.append(encode_bytes_element(value))
        else:
            response.outputs.append(
                tensor(
                    name=name,
                    datatype="BYTES",
                    shape=[1],
                    contents=contents(bytes_contents=[value]),
                )
            )
    return response


@dataclass(frozen=True)
class Failure:
    """One scripted failed answer of the fake model."""

    code: grpc.StatusCode
    details: str = ""


_Context = grpc.aio.ServicerContext[Any, Any]


class FakeModelServicer(pb_grpc.GRPCInferenceServiceServicer):
    """Answers ModelInfer (and ModelMetadata) from a script: first the ``failures`` in order, then
    ``response`` (by default: the outputs the request asks for, or the default ones, from the
    samples; ModelMetadata names ``languages`` in its trailing metadata).

    With ``hang=True`` a call that gets past the failures never answers, so the caller's
    deadline has to end it.
    """

    def __init__(
        self,
        *,
        failures: Sequence[Failure] = (),
        response: pb.ModelInferResponse | None = None,
        hang: bool = False,
        ready: bool = True,
        languages: Sequence[str] | None = SAMPLE_LANGUAGES,
    ) -> None:
        self.requests: list[pb.ModelInferRequest] = []
        self.calls: list[tuple[str, dict[str, str]]] = []
        """(method, invocation metadata) of every ModelInfer, ServerReady, ModelReady and
        ModelMetadata call."""
        self.languages = languages
        """Named in the ModelMetadata answer's trailing metadata; None: not named at all."""
        self._failures = list(failures)
        self._response = response
        self._hang = hang
        self._ready = ready

    def _record(self, method: str, context: _Context) -> None:
        metadata = context.invocation_metadata() or ()
        self.calls.append((method, {str(key): str(value) for key, value in metadata}))

    async def ModelInfer(self, request: pb.ModelInferRequest, context: _Context) -> Any:
        self._record("ModelInfer", context)
        self.requests.append(request)
        if self._failures:
            failure = self._failures.pop(0)
            await context.abort(failure.code, failure.details)
        if self._hang:
            await asyncio.Event().wait()  # never set: ends when the deadline cancels the call
        if self._response is not None:
            return self._response
        # Like the model: the outputs asked for, in that order; none asked, the defaults.
        asked = tuple(output.name for output in request.outputs) or DEFAULT_OUTPUTS
        return ok_response(request_id=request.id, outputs=asked)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: _Context) -> Any:
        self._record("ServerReady", context)
        return pb.ServerReadyResponse(ready=self._ready)

    async def ModelReady(self, request: pb.ModelReadyRequest, context: _Context) -> Any:
        self._record("ModelReady", context)
        return pb.ModelReadyResponse(ready=self._ready and request.name == MODEL_NAME)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: _Context) -> Any:
        self._record("ModelMetadata", context)
        if self._failures:
            failure = self._failures.pop(0)
            await context.abort(failure.code, failure.details)
        if not self._ready:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "not ready")
        if request.name != MODEL_NAME:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"model {request.name} not found")
        if self.languages is not None:
            context.set_trailing_metadata(((LANGUAGES, ",".join(self.languages)),))
        return pb.ModelMetadataResponse(name=MODEL_NAME, platform="")

    # The gateway never calls these; they answer UNIMPLEMENTED like an absent RPC would.
    async def ServerLive(self, request: pb.ServerLiveRequest, context: _Context) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of the fake")

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: _Context) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of the fake")

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: _Context
    ) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of the fake")

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: _Context
    ) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of the fake")


@asynccontextmanager
async def serve_fake_model(servicer: FakeModelServicer) -> AsyncIterator[str]:
    """Serve ``servicer`` on a free loopback port; yield its ``host:port``."""
    server = grpc.aio.server()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)
