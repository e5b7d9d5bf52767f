"""The real model server process over real gRPC and REST, with independent v2 clients."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kserve import InferenceGRPCClient, InferInput, InferRequest

import contract
from contract.metadata import LANGUAGES
from gateway.protocol import pb, pb_grpc
from tests.conftest import ModelServer, start_model_server
from tests.support import bad_inputs as bad
from tests.support.images import TESTDATA, line_png
from tests.support.text import cer

pytestmark = pytest.mark.integration

GRPCURL = Path(sys.executable).parent / "grpcurl"
GOOD = line_png("Model server works 77")
GOOD_TEXT = "Model server works 77"


def kserve_infer(server: ModelServer, data: bytes, **params: Any) -> dict[str, Any]:
    """One ModelInfer with KServe's own client, binary (raw_input_contents) input."""

    async def call() -> dict[str, Any]:
        client = InferenceGRPCClient(server.grpc_target, timeout=30)
        try:
            tensor = InferInput("image", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([data], dtype=np.object_), binary_data=True)
            request = InferRequest(
                model_name="ocr-model", infer_inputs=[tensor], request_id="it-1", parameters=params
            )
            response = await client.infer(request)
            return {o.name: o.as_numpy()[0] for o in response.outputs}
        finally:
            await client.close()

    return asyncio.run(call())


def stub_infer(server: ModelServer, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    with grpc.insecure_channel(server.grpc_target) as channel:
        response: pb.ModelInferResponse = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            request, timeout=30
        )
        return response


def image_tensor(**kwargs: Any) -> pb.ModelInferRequest.InferInputTensor:
    fields: dict[str, Any] = {"name": "image", "datatype": "BYTES", "shape": [1], **kwargs}
    return pb.ModelInferRequest.InferInputTensor(**fields)


def rest_infer(server: ModelServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.rest_url}/v2/models/ocr-model/infer", json=body, timeout=30)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_kserve_grpc_client_with_raw_input_contents(model_server: ModelServer) -> None:
    outputs = kserve_infer(model_server, GOOD, psm=7)
    assert outputs["text"].decode().strip() == GOOD_TEXT
    assert 80 < float(outputs["confidence"]) <= 100
    words = json.loads(outputs["words"])
    assert [w["text"] for w in words] == GOOD_TEXT.split()
    assert set(words[0]) == {
        "text",
        "confidence",
        "left",
        "top",
        "width",
        "height",
        "page",
        "block",
        "paragraph",
        "line",
    }


def test_bytes_contents_over_grpc(model_server: ModelServer) -> None:
    request = pb.ModelInferRequest(
        model_name="ocr-model",
        id="contents-1",
        inputs=[image_tensor(contents=pb.InferTensorContents(bytes_contents=[GOOD]))],
        parameters={"psm": pb.InferParameter(int64_param=7)},
    )
    response = stub_infer(model_server, request)
    assert response.id == "contents-1"
    # The protocol forbids mixing raw outputs with `contents`: a contents request gets contents.
    assert not response.raw_output_contents
    outputs = {o.name: o for o in response.outputs}
    assert outputs["text"].contents.bytes_contents[0].decode().strip() == GOOD_TEXT
    assert outputs["confidence"].contents.fp32_contents[0] > 80


def test_tritonclient_independent_client(model_server: ModelServer, tmp_path: Path) -> None:
    image = tmp_path / "line.png"
    image.write_bytes(GOOD)
    run = subprocess.run(
        [sys.executable, "-m", "tests.support.triton_infer", model_server.grpc_target, str(image)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["text"].strip() == GOOD_TEXT
    assert result["confidence_dtype"] == "float32"
    assert [w["text"] for w in result["words"]] == GOOD_TEXT.split()
    assert result["server_ready"] is True
    assert result["model_ready"] is True


def test_rest_v2_json_with_base64_the_seed_way(model_server: ModelServer) -> None:
    scan = (TESTDATA / "phototest.tif").read_bytes()
    response = rest_infer(
        model_server,
        {
            "id": "rest-1",
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [b64(scan)]}],
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "rest-1"
    outputs = {o["name"]: o["data"][0] for o in body["outputs"]}
    assert cer((TESTDATA / "phototest.txt").read_text(), outputs["text"]) <= 0.01
    assert isinstance(json.loads(outputs["words"]), list)


def test_the_prototype_request_shape_input_0_and_outputs_0(model_server: ModelServer) -> None:
    """The public prototype's gateway: one BYTES input named `input-0` over REST v2, and the
    text read from `outputs[0]`."""
    response = rest_infer(
        model_server,
        {"inputs": [{"name": "input-0", "shape": [1], "datatype": "BYTES", "data": [b64(GOOD)]}]},
    )
    assert response.status_code == 200, response.text
    first = response.json()["outputs"][0]
    assert first["name"] == "text"
    assert first["data"][0].strip() == GOOD_TEXT


def test_input_0_over_grpc_with_kserve_client(model_server: ModelServer) -> None:
    async def call() -> str:
        client = InferenceGRPCClient(model_server.grpc_target, timeout=30)
        try:
            tensor = InferInput("input-0", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([GOOD], dtype=np.object_), binary_data=True)
            response = await client.infer(
                InferRequest(model_name="ocr-model", infer_inputs=[tensor], request_id="p-1")
            )
            text: bytes = response.outputs[0].as_numpy()[0]
            return text.decode()
        finally:
            await client.close()

    assert asyncio.run(call()).strip() == GOOD_TEXT


def test_model_metadata_documents_the_contract(model_server: ModelServer) -> None:
    with grpc.insecure_channel(model_server.grpc_target) as channel:
        meta = pb_grpc.GRPCInferenceServiceStub(channel).ModelMetadata(
            pb.ModelMetadataRequest(name="ocr-model"), timeout=5
        )
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("image", "BYTES", [1])]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [
        ("text", "BYTES", [1]),
        ("confidence", "FP32", [1]),
        ("words", "BYTES", [1]),
        ("hocr", "BYTES", [1]),
        ("tsv", "BYTES", [1]),
        ("alto", "BYTES", [1]),
        ("pdf", "BYTES", [1]),
        ("page", "BYTES", [1]),
        ("preview", "BYTES", [1]),
    ]
    # The same list the contract module holds, in its order.
    assert [t.name for t in meta.outputs] == [spec.name for spec in contract.OUTPUTS]


def test_model_metadata_names_the_installed_languages(model_server: ModelServer) -> None:
    with grpc.insecure_channel(model_server.grpc_target) as channel:
        _, call = pb_grpc.GRPCInferenceServiceStub(channel).ModelMetadata.with_call(
            pb.ModelMetadataRequest(name="ocr-model"), timeout=5
        )
    trailing = dict(call.trailing_metadata() or ())
    languages = str(trailing[LANGUAGES]).split(",")
    # make test installs English and German; OSD data is no language a request may name.
    assert {"eng", "deu"} <= set(languages)
    assert "osd" not in languages
    assert languages == sorted(languages)


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GRPCURL), "-plaintext", *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_reflection_lists_services_without_a_proto_file(model_server: ModelServer) -> None:
    listed = grpcurl(model_server.grpc_target, "list")
    assert listed.returncode == 0, listed.stderr
    assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= set(listed.stdout.split())
    ready = grpcurl(model_server.grpc_target, "inference.GRPCInferenceService/ServerReady")
    assert ready.returncode == 0, ready.stderr
    assert json.loads(ready.stdout) == {"ready": True}
    described = grpcurl(model_server.grpc_target, "describe", "inference.ModelInferRequest")
    assert "raw_input_contents" in described.stdout


def test_grpc_health_service_reports_serving(model_server: ModelServer) -> None:
    with grpc.insecure_channel(model_server.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


BAD_GRPC: list[tuple[str, pb.ModelInferRequest, str]] = [
    (
        "garbage bytes",
        pb.ModelInferRequest(
            model_name="ocr-model",
            inputs=[image_tensor()],
            raw_input_contents=[struct.pack("<I", 4) + b"junk"],
        ),
        "not an image",
    ),
    (
        "empty image",
        pb.ModelInferRequest(
            model_name="ocr-model",
            inputs=[image_tensor()],
            raw_input_contents=[struct.pack("<I", 0)],
        ),
        "empty",
    ),
    (
        "truncated png",
        pb.ModelInferRequest(
            model_name="ocr-model",
            inputs=[image_tensor(contents=pb.InferTensorContents(bytes_contents=[GOOD[:300]]))],
        ),
        "corrupt or truncated",
    ),
    (
        "unknown language",
        pb.ModelInferRequest(
            model_name="ocr-model",
            inputs=[image_tensor(contents=pb.InferTensorContents(bytes_contents=[GOOD]))],
            parameters={"lang": pb.InferParameter(string_param="klingon")},
        ),
        "not installed",
    ),
    (
        "psm 99",
        pb.ModelInferRequest(
            model_name="ocr-model",
            inputs=[image_tensor(contents=pb.InferTensorContents(bytes_contents=[GOOD]))],
            parameters={"psm": pb.InferParameter(int64_param=99)},
        ),
        "psm 99",
    ),
    (
        "bad length prefix",
        pb.ModelInferRequest(
            model_name="ocr-model",
            inputs=[image_tensor()],
            raw_input_contents=[struct.pack("<I", 10**6) + b"x"],
        ),
        "malformed",
    ),
    (
        "wrong datatype",
        pb.ModelInferRequest(
            model_name="ocr-model",
            inputs=[image_tensor(datatype="FP32")],
            raw_input_contents=[b"\x00" * 4],
        ),
        "datatype BYTES",
    ),
    (
        "negative shape",
        pb.ModelInferRequest(
            model_name="ocr-model",
            inputs=[image_tensor(shape=[-3])],
            raw_input_contents=[struct.pack("<I", 1) + b"x"],
        ),
        "shape",
    ),
    ("missing input", pb.ModelInferRequest(model_name="ocr-model"), "exactly one input"),
]


@pytest.mark.parametrize(("case", "request_", "message"), BAD_GRPC, ids=[c[0] for c in BAD_GRPC])
def test_bad_grpc_requests_are_invalid_argument_and_server_keeps_serving(
    model_server: ModelServer, case: str, request_: pb.ModelInferRequest, message: str
) -> None:
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        stub_infer(model_server, request_)
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details()
    assert "Traceback" not in error.details()
    assert time.monotonic() - started < 1.0
    assert kserve_infer(model_server, GOOD, psm=7)["text"].decode().strip() == GOOD_TEXT


HOSTILE_FILES = {
    "PNG bomb 30000x30000": (bad.png_header_only(30000, 30000), "too many pixels"),
    "0x0 PNG": (bad.png_header_only(0, 0), ""),
    "1000-page TIFF": (bad.tiff_pages(1000), "more than 64 frames or pages"),
    "10000-frame GIF": (bad.gif_frames(10000), "frames or pages"),
    "PNG+ZIP polyglot": (bad.png_zip_polyglot(), "after its end"),
    "truncated JPEG": (bad.truncated_jpeg(), "corrupt or truncated"),
    "EPS": (bad.EPS, "not an image"),
    "SVG": (bad.SVG, "not an image"),
    "PSD": (bad.PSD, "not an image"),
    "FITS": (bad.FITS, "not an image"),
}


@pytest.mark.parametrize("name", list(HOSTILE_FILES))
def test_hostile_files_are_refused_over_grpc_and_rest(model_server: ModelServer, name: str) -> None:
    data, message = HOSTILE_FILES[name]
    started = time.monotonic()
    request = pb.ModelInferRequest(
        model_name="ocr-model",
        inputs=[image_tensor()],
        raw_input_contents=[struct.pack("<I", len(data)) + data],
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub_infer(model_server, request)
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details()
    body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [b64(data)]}]}
    response = rest_infer(model_server, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert time.monotonic() - started < 2.0


def test_unknown_model_is_not_found(model_server: ModelServer) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub_infer(model_server, pb.ModelInferRequest(model_name="nope", inputs=[image_tensor()]))
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "inputs": [
                    {"name": "image", "datatype": "BYTES", "shape": [1], "data": [b64(b"hello")]}
                ]
            },
            "not an image",
        ),
        (
            {
                "inputs": [
                    {"name": "image", "datatype": "BYTES", "shape": [1], "data": ["@@not-base64@@"]}
                ]
            },
            "base64",
        ),
        (
            {
                "inputs": [
                    {"name": "image", "datatype": "BYTES", "shape": [1], "data": [b64(GOOD)]}
                ],
                "parameters": {"lang": "zzz"},
            },
            "not installed",
        ),
        (
            {
                "inputs": [
                    {"name": "image", "datatype": "BYTES", "shape": [1], "data": [b64(GOOD)]}
                ],
                "parameters": {"psm": 99},
            },
            "psm 99",
        ),
    ],
)
def test_bad_rest_requests_are_400_with_a_message(
    model_server: ModelServer, body: dict[str, Any], message: str
) -> None:
    response = rest_infer(model_server, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert "Traceback" not in response.text
    good = rest_infer(
        model_server,
        {
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [b64(GOOD)]}],
            "parameters": {"psm": 7},
        },
    )
    assert good.status_code == 200


def test_metrics_on_the_http_port(model_server: ModelServer) -> None:
    response = httpx.get(f"{model_server.rest_url}/metrics", timeout=5)
    assert response.status_code == 200
    assert "request_predict_seconds" in response.text


def test_result_cache_from_the_environment(tmp_path: Path) -> None:
    server = start_model_server(tmp_path, OCR_MODEL_RESULT_CACHE_ENTRIES="8")
    try:
        first = kserve_infer(server, GOOD, psm=7)
        second = kserve_infer(server, GOOD, psm=7)
        assert second == first
        assert first["text"].decode().strip() == GOOD_TEXT
        metrics = httpx.get(f"{server.rest_url}/metrics", timeout=5).text
        assert 'ocr_result_cache_lookups_total{result="hit"} 1.0' in metrics
        assert 'ocr_result_cache_lookups_total{result="miss"} 1.0' in metrics
        assert 'ocr_stage_duration_seconds_count{stage="recognize"} 1.0' in metrics
    finally:
        server.service.stop()
