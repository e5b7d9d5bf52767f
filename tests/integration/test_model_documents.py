"""The real model server reads PDF pages and a chosen page of a multi-page file, over gRPC and
REST, with `page`, `dpi` and `pdf_text_only`, and refuses unreadable documents clearly."""

from __future__ import annotations

import base64
import io
import json
import struct
import time
from typing import Any

import grpc
import httpx
import pikepdf
import pytest

import contract
from gateway.protocol import pb, pb_grpc
from tests.conftest import ModelServer
from tests.support import model_documents as docs
from tests.support.images import render_lines

pytestmark = pytest.mark.integration

PAGES = ("Alpha invoice one", "Bravo receipt two", "Charlie order three")
DOCUMENT = docs.vector_pdf([[text] for text in PAGES])


def _parameter(value: object) -> pb.InferParameter:
    if isinstance(value, bool):
        return pb.InferParameter(bool_param=value)
    if isinstance(value, int):
        return pb.InferParameter(int64_param=value)
    return pb.InferParameter(string_param=str(value))


def grpc_infer(
    server: ModelServer, data: bytes, outputs: list[str], **parameters: object
) -> pb.ModelInferResponse:
    """One ModelInfer with the raw image and typed parameters, as the gateway sends it."""
    request = pb.ModelInferRequest(
        model_name=server.model_name,
        inputs=[pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])],
        raw_input_contents=[struct.pack("<I", len(data)) + data],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=n) for n in outputs],
        parameters={name: _parameter(value) for name, value in parameters.items()},
    )
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        response: pb.ModelInferResponse = stub.ModelInfer(request, timeout=60)
        return response


def raw_outputs(response: pb.ModelInferResponse) -> dict[str, bytes]:
    """Each output's one BYTES element (the server answers raw contents to raw inputs)."""
    found = {}
    for output, raw in zip(response.outputs, response.raw_output_contents, strict=True):
        (length,) = struct.unpack_from("<I", raw)
        found[output.name] = raw[4 : 4 + length]
    return found


def rest_infer(server: ModelServer, data: bytes, body: dict[str, Any]) -> httpx.Response:
    image = {
        "name": "image",
        "shape": [1],
        "datatype": "BYTES",
        "data": [base64.b64encode(data).decode()],
    }
    return httpx.post(
        f"{server.rest_url}/v2/models/{server.model_name}/infer",
        json={"inputs": [image], **body},
        timeout=60,
    )


def test_a_pdf_page_at_a_dpi_over_grpc(model_server: ModelServer) -> None:
    outputs = raw_outputs(grpc_infer(model_server, DOCUMENT, ["text", "page"], page=2, dpi=150))
    assert outputs["text"].decode().strip() == PAGES[1]
    facts = contract.PageFacts.model_validate_json(outputs["page"])
    assert (facts.page, facts.page_count, facts.dpi, facts.source) == (2, 3, 150.0, "ocr")
    assert (facts.width, facts.height) == (1240, 1754)  # A4 at 150 dpi


def test_a_tiff_page_over_rest(model_server: ModelServer) -> None:
    tiff = docs.multipage([render_lines([text], width=1000) for text in PAGES], "TIFF")
    response = rest_infer(
        model_server,
        tiff,
        {"outputs": [{"name": "text"}, {"name": "page"}], "parameters": {"page": 3}},
    )
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o["data"][0] for o in response.json()["outputs"]}
    assert outputs["text"].strip() == PAGES[2]
    facts = contract.PageFacts.model_validate_json(outputs["page"])
    assert (facts.page, facts.page_count) == (3, 3)


def test_page_and_dpi_sent_as_text_over_rest(model_server: ModelServer) -> None:
    response = rest_infer(
        model_server,
        DOCUMENT,
        {"outputs": [{"name": "page"}], "parameters": {"page": "3", "dpi": "100"}},
    )
    assert response.status_code == 200, response.text
    facts = contract.PageFacts.model_validate_json(response.json()["outputs"][0]["data"][0])
    assert (facts.page, facts.dpi, facts.text.strip()) == (3, 100.0, PAGES[2])


def test_the_text_layer_alone_over_grpc(model_server: ModelServer) -> None:
    source = docs.vector_pdf([["Text layer only please"]], size_pt=(612, 792))
    outputs = raw_outputs(
        grpc_infer(model_server, source, ["pdf", "text"], dpi=200, pdf_text_only=True)
    )
    assert outputs["text"].decode().strip() == "Text layer only please"
    with pikepdf.open(io.BytesIO(outputs["pdf"])) as pdf:
        (page,) = pdf.pages
        assert list(page.get_images()) == []
        assert [float(v) for v in page.mediabox] == pytest.approx([0, 0, 612, 792], abs=0.01)
    with_image = raw_outputs(grpc_infer(model_server, source, ["pdf"], dpi=200))["pdf"]
    with pikepdf.open(io.BytesIO(with_image)) as pdf:
        (image,) = pdf.pages[0].get_images().values()
        assert (int(image.Width), int(image.Height)) == (1700, 2200)


def test_the_text_layer_alone_over_rest_binary(model_server: ModelServer) -> None:
    response = rest_infer(
        model_server,
        DOCUMENT,
        {
            "outputs": [{"name": "pdf", "parameters": {"binary_data": True}}],
            "parameters": {"pdf_text_only": "true", "page": 1},
        },
    )
    assert response.status_code == 200, response.text
    json_length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:json_length])
    assert header["outputs"][0]["name"] == "pdf"
    raw = response.content[json_length:]
    (length,) = struct.unpack_from("<I", raw)
    with pikepdf.open(io.BytesIO(raw[4 : 4 + length])) as pdf:
        assert list(pdf.pages[0].get_images()) == []


@pytest.mark.parametrize(
    ("data", "parameters", "message"),
    [
        (DOCUMENT, {"dpi": 601}, "dpi 601 is out of range: use 72..600"),
        (DOCUMENT, {"dpi": 71}, "dpi 71 is out of range: use 72..600"),
        (DOCUMENT, {"page": 0}, "page 0 is out of range: use 1..100000"),
        (DOCUMENT, {"page": 4}, "page 4 was asked for; the PDF has 3 pages"),
        (DOCUMENT, {"page": "two"}, "parameter 'page' must be an integer"),
        (DOCUMENT, {"pdf_text_only": "maybe"}, "parameter 'pdf_text_only' must be a boolean"),
        (docs.encrypted_pdf(), {}, "the PDF is password-protected"),
        (b"%PDF-1.7\n" + b"junk " * 200, {}, "the PDF is damaged, truncated or not a PDF"),
    ],
    ids=["dpi-high", "dpi-low", "page-0", "past-end", "page-text", "bool", "encrypted", "junk"],
)
def test_bad_pages_and_documents_are_invalid_argument_and_400(
    model_server: ModelServer, data: bytes, parameters: dict[str, object], message: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        grpc_infer(model_server, data, ["text"], **parameters)
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details()
    response = rest_infer(model_server, data, {"parameters": parameters})
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_200_inch_page_is_refused_at_once(model_server: ModelServer) -> None:
    huge = docs.blank_pdf((14_400, 14_400))
    started = time.perf_counter()
    with pytest.raises(grpc.RpcError) as caught:
        grpc_infer(model_server, huge, ["text"], dpi=600)
    elapsed = time.perf_counter() - started
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "120000x120000 pixels; the limit is 40000000 pixels" in error.details()
    assert elapsed < 3.0
    # The server keeps serving.
    assert raw_outputs(grpc_infer(model_server, DOCUMENT, ["text"]))["text"].strip()
