"""The real model server answers exactly the outputs a request lists, over gRPC and REST.

Independent clients: KServe's `InferenceGRPCClient`, NVIDIA's tritonclient (in a child
process, see `tests/support/triton_infer.py`), grpcurl and plain HTTP. Pages are sent turned
and skewed with `rotate=auto` and `deskew`, and the `page` output says what was done.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pikepdf
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.infer_type import RequestedOutput
from PIL import Image

import contract
from gateway.protocol import pb, pb_grpc
from tests.conftest import ModelServer
from tests.support.images import TESTDATA, encode
from tests.support.text import cer

pytestmark = pytest.mark.integration

GRPCURL = Path(sys.executable).parent / "grpcurl"
TRUTH = (TESTDATA / "phototest.txt").read_text()
#: phototest.tif turned 90 degrees counter-clockwise (Tesseract's own test file).
TURNED = (TESTDATA / "phototest-rotated-L.png").read_bytes()


def skewed_turned_page() -> bytes:
    """phototest turned 90 degrees counter-clockwise, then skewed 8 degrees."""
    page = Image.open(TESTDATA / "phototest-rotated-L.png").convert("L")
    return encode(page.rotate(8, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC))


def kserve_outputs(
    server: ModelServer, data: bytes, outputs: list[str], **params: Any
) -> list[tuple[str, Any]]:
    """One ModelInfer with KServe's client listing `outputs`: (name, element) in answer order."""

    async def call() -> list[tuple[str, Any]]:
        client = InferenceGRPCClient(server.grpc_target, timeout=60)
        try:
            tensor = InferInput("image", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([data], dtype=np.object_), binary_data=True)
            request = InferRequest(
                model_name="ocr-model",
                infer_inputs=[tensor],
                request_id="outputs-1",
                parameters=params,
                request_outputs=[RequestedOutput(name) for name in outputs],
            )
            response = await client.infer(request)
            return [(o.name, o.as_numpy()[0]) for o in response.outputs]
        finally:
            await client.close()

    return asyncio.run(call())


def rest_infer(server: ModelServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.rest_url}/v2/models/ocr-model/infer", json=body, timeout=60)


def image_input(data: bytes) -> dict[str, Any]:
    return {
        "name": "image",
        "shape": [1],
        "datatype": "BYTES",
        "data": [base64.b64encode(data).decode()],
    }


def test_kserve_client_gets_exactly_the_listed_outputs(model_server: ModelServer) -> None:
    answered = kserve_outputs(
        model_server, skewed_turned_page(), ["page", "hocr", "alto"], rotate="auto", deskew=True
    )
    assert [name for name, _ in answered] == ["hocr", "alto", "page"]
    outputs = dict(answered)
    assert b"ocr_page" in outputs["hocr"]
    assert b"<alto" in outputs["alto"]
    page = contract.PageFacts.model_validate_json(outputs["page"])
    assert page.rotation == 90
    assert page.rotation_confidence is not None
    assert page.skew == pytest.approx(-8, abs=0.15)
    assert cer(TRUTH, page.text) <= 0.03
    assert page.words
    assert page.timings.preprocess_s > 0  # orientation detection and deskew ran there
    assert all(w.left + w.width <= page.width for w in page.words)


def test_tritonclient_gets_exactly_the_listed_outputs(
    model_server: ModelServer, tmp_path: Path
) -> None:
    image = tmp_path / "phototest.tif"
    image.write_bytes((TESTDATA / "phototest.tif").read_bytes())
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.triton_infer",
            model_server.grpc_target,
            str(image),
            "hocr,alto,page",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    assert found["outputs"] == ["hocr", "alto", "page"]
    assert "ocr_carea" in found["hocr"]
    assert "<alto" in found["alto"]
    page = contract.PageFacts.model_validate_json(found["page"])
    assert (page.width, page.height, page.dpi) == (640, 480, 200.0)
    assert cer(TRUTH, page.text) <= 0.01


def test_pdf_over_grpc_raw_outputs(model_server: ModelServer) -> None:
    answered = kserve_outputs(model_server, TURNED, ["pdf", "text"], rotate="auto")
    assert [name for name, _ in answered] == ["text", "pdf"]
    pdf = bytes(dict(answered)["pdf"])
    assert pdf.startswith(b"%PDF-")
    with pikepdf.open(io.BytesIO(pdf)) as document:
        assert len(document.pages) == 1
        (image,) = document.pages[0].get_images().values()
        # The upright page that was read: phototest-rotated-L.png (480x640) turned back.
        assert (int(image.Width), int(image.Height)) == (640, 480)


def test_pdf_over_grpc_typed_contents(model_server: ModelServer) -> None:
    request = pb.ModelInferRequest(
        model_name="ocr-model",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="image",
                datatype="BYTES",
                shape=[1],
                contents=pb.InferTensorContents(bytes_contents=[TURNED]),
            )
        ],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="pdf")],
    )
    with grpc.insecure_channel(model_server.grpc_target) as channel:
        response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=60)
    assert [o.name for o in response.outputs] == ["pdf"]
    assert not response.raw_output_contents
    assert response.outputs[0].contents.bytes_contents[0].startswith(b"%PDF-")


def test_unknown_output_over_grpc_is_invalid_argument(model_server: ModelServer) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        kserve_outputs(model_server, TURNED, ["text", "docx"])
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown output 'docx'" in error.details()
    assert "text, confidence, words, hocr, tsv, alto, pdf, page" in error.details()


def test_rest_json_with_an_outputs_list(model_server: ModelServer) -> None:
    response = rest_infer(
        model_server,
        {
            "inputs": [image_input(TURNED)],
            "outputs": [{"name": "page"}, {"name": "tsv"}, {"name": "text"}],
            "parameters": {"rotate": "auto", "deskew": "true"},
        },
    )
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o["data"][0] for o in response.json()["outputs"]}
    assert list(outputs) == ["text", "tsv", "page"]
    assert cer(TRUTH, outputs["text"]) <= 0.03
    assert outputs["tsv"].startswith("level\tpage_num\tblock_num\tpar_num\tline_num\tword_num")
    page = contract.PageFacts.model_validate_json(outputs["page"])
    assert (page.rotation, page.skew) == (90, 0.0)


def test_rest_json_without_outputs_gets_the_defaults(model_server: ModelServer) -> None:
    response = rest_infer(model_server, {"inputs": [image_input(TURNED)]})
    assert response.status_code == 200, response.text
    assert [o["name"] for o in response.json()["outputs"]] == list(contract.DEFAULT_OUTPUTS)


def test_pdf_over_rest_json_is_a_clear_400(model_server: ModelServer) -> None:
    response = rest_infer(
        model_server, {"inputs": [image_input(TURNED)], "outputs": [{"name": "pdf"}]}
    )
    assert response.status_code == 400
    message = response.json()["error"]
    assert "output 'pdf' is a binary file" in message
    assert '"binary_data": true' in message


def test_pdf_over_rest_with_the_binary_extension(model_server: ModelServer) -> None:
    response = rest_infer(
        model_server,
        {
            "inputs": [image_input(TURNED)],
            "outputs": [{"name": "pdf", "parameters": {"binary_data": True}}, {"name": "text"}],
            "parameters": {"rotate": "auto"},
        },
    )
    assert response.status_code == 200, response.text
    json_length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:json_length])
    text, pdf = header["outputs"]
    assert (text["name"], pdf["name"]) == ("text", "pdf")
    assert cer(TRUTH, text["data"][0]) <= 0.03
    raw = response.content[json_length:]
    assert len(raw) == pdf["parameters"]["binary_data_size"]
    (length,) = struct.unpack_from("<I", raw)
    assert raw[4 : 4 + length].startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"outputs": [{"name": "docx"}]}, "unknown output 'docx'"),
        ({"outputs": [{"name": "hocr"}, {"name": "hocr"}]}, "output 'hocr' is requested twice"),
        ({"parameters": {"rotate": "left"}}, "parameter 'rotate' must be one of 'none', 'auto'"),
        ({"parameters": {"deskew": "maybe"}}, "parameter 'deskew' must be a boolean"),
    ],
)
def test_bad_outputs_and_parameters_over_rest_are_400(
    model_server: ModelServer, body: dict[str, Any], message: str
) -> None:
    response = rest_infer(model_server, {"inputs": [image_input(TURNED)], **body})
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_grpcurl_requests_the_hocr_output(model_server: ModelServer) -> None:
    """The README's grpcurl example: grpcurl's JSON carries bytes as base64."""
    data = base64.b64encode((TESTDATA / "phototest.tif").read_bytes()).decode()
    request = {
        "model_name": "ocr-model",
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [1],
                "contents": {"bytes_contents": [data]},
            }
        ],
        "outputs": [{"name": "hocr"}],
        "parameters": {"rotate": {"string_param": "auto"}},
    }
    run = subprocess.run(
        [
            str(GRPCURL),
            "-plaintext",
            "-d",
            "@",
            model_server.grpc_target,
            "inference.GRPCInferenceService/ModelInfer",
        ],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    (output,) = json.loads(run.stdout)["outputs"]
    assert output["name"] == "hocr"
    hocr = base64.b64decode(output["contents"]["bytes_contents"][0])
    assert b"ocrx_word" in hocr
