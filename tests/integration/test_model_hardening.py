"""The model closed to all but the gateway, and bad input refused cheaply: the real model server
process over real gRPC and REST, every hostile input generated here, at test time.

- The model repository extension is off: nobody can unload or load the model.
- Readiness (grpc.health.v1, `/v2/health/ready`, ServerReady) follows the model.
- With `OCR_MODEL_AUTH_TOKEN`, only probes, health, reflection and metrics are open.
- REST bodies over `OCR_MODEL_MAX_REST_BODY_BYTES` get 413 before (or as soon as) they pass it.
- 32 MiB messages of millions of tiny elements are refused in milliseconds, probes answered.
- No error carries an exception class, a repr or a whole echoed input back.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.protocol import pb, pb_grpc
from model.settings import ModelSettings
from tests.conftest import ModelServer, start_gateway, start_model_server
from tests.support import hostile_messages as hostile
from tests.support.images import line_png
from tests.support.memory import RssPeak
from tests.support.processes import (
    free_port,
    http_ok,
    python_module,
    settings_refusal,
    start,
    wait_until,
)

pytestmark = pytest.mark.integration

GRPCURL = Path(sys.executable).parent / "grpcurl"
GOOD = line_png("Closed model 42")
GOOD_TEXT = "Closed model 42"
MiB = 1024 * 1024
INFERENCE = "inference.GRPCInferenceService"
REST_LIMIT: int = ModelSettings.model_fields["max_rest_body_bytes"].default
#: Words a client must never read in an error: exception classes, reprs, internals.
LEAKS = ("Error", "Exception", "<class", "Traceback", "google.", "kserve", "File ", ".py")


def assert_clean(message: str) -> None:
    for leak in LEAKS:
        assert leak not in message, f"{leak!r} in {message[:300]!r}"


def channel(server: ModelServer) -> grpc.Channel:
    return grpc.insecure_channel(
        server.grpc_target, options=[("grpc.max_send_message_length", 64 * MiB)]
    )


def raw_call(server: ModelServer, method: str, data: bytes, timeout: float = 30) -> Any:
    """One unary call of `method` with `data` sent as they are (no serializer); the RpcError."""
    with channel(server) as chan, pytest.raises(grpc.RpcError) as caught:
        chan.unary_unary(method, None, None)(data, timeout=timeout)
    return caught.value


def infer_request(**kwargs: Any) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(
        model_name="ocr-model",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="image",
                datatype="BYTES",
                shape=[1],
                contents=pb.InferTensorContents(bytes_contents=[GOOD]),
            )
        ],
        parameters={"psm": pb.InferParameter(int64_param=7)},
        **kwargs,
    )


def rest_body(data: bytes = GOOD, name: str = "image", **parameters: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": name,
                "datatype": "BYTES",
                "shape": [1],
                "data": [base64.b64encode(data).decode()],
            }
        ],
        "parameters": {"psm": 7, **parameters},
    }


def rest_infer(server: ModelServer, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(
        f"{server.rest_url}/v2/models/ocr-model/infer", json=body, timeout=60, **kwargs
    )


def health_status(server: ModelServer, service: str = "") -> Any:
    with grpc.insecure_channel(server.grpc_target) as chan:
        reply = health_pb2_grpc.HealthStub(chan).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return reply.status


def ocr_works(server: ModelServer, metadata: tuple[tuple[str, str], ...] = ()) -> None:
    with grpc.insecure_channel(server.grpc_target) as chan:
        response = pb_grpc.GRPCInferenceServiceStub(chan).ModelInfer(
            infer_request(), timeout=30, metadata=metadata
        )
    assert response.outputs[0].contents.bytes_contents[0].decode().strip() == GOOD_TEXT


# --- the model repository extension is off ---------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v2/repository/models/ocr-model/unload",
        "/v2/repository/models/ocr-model/load",
        "/v2/repository/index",
    ],
)
def test_rest_repository_routes_are_absent(model_server: ModelServer, path: str) -> None:
    response = httpx.post(f"{model_server.rest_url}{path}", json={}, timeout=10)
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}
    assert http_ok(f"{model_server.rest_url}/v2/models/ocr-model/ready")
    assert rest_infer(model_server, rest_body()).status_code == 200


def test_grpc_repository_methods_are_unimplemented(model_server: ModelServer) -> None:
    with grpc.insecure_channel(model_server.grpc_target) as chan:
        stub = pb_grpc.GRPCInferenceServiceStub(chan)
        calls: list[Callable[[], Any]] = [
            lambda: stub.RepositoryModelUnload(
                pb.RepositoryModelUnloadRequest(model_name="ocr-model"), timeout=5
            ),
            lambda: stub.RepositoryModelLoad(
                pb.RepositoryModelLoadRequest(model_name="ocr-model"), timeout=5
            ),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as caught:
                call()
            error: Any = caught.value
            assert error.code() == grpc.StatusCode.UNIMPLEMENTED
        metadata = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=5)
        assert list(metadata.extensions) == []
        assert stub.ModelReady(pb.ModelReadyRequest(name="ocr-model"), timeout=5).ready
    # Triton's index method is not even there.
    error = raw_call(model_server, f"/{INFERENCE}/RepositoryIndex", b"")
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert httpx.get(f"{model_server.rest_url}/v2", timeout=5).json()["extensions"] == []
    ocr_works(model_server)


# --- readiness follows the model ------------------------------------------------------------


def start_stoppable_model(log_dir: Path) -> ModelServer:
    """The model server through `tests.support.stoppable_model` (SIGUSR1: `model.stop()`)."""
    http_port, grpc_port = free_port(), free_port()
    env = {
        "OCR_MODEL_HTTP_PORT": str(http_port),
        "OCR_MODEL_GRPC_PORT": str(grpc_port),
        "OCR_MODEL_GRACE_PERIOD_S": "5",
        "OCR_MODEL_MODEL_NAME": "ocr-model",
    }
    service = start(python_module("tests.support.stoppable_model"), env, log_dir / "stop.log")
    server = ModelServer(service, http_port, grpc_port)
    try:
        wait_until(
            lambda: not service.alive() or http_ok(f"{server.rest_url}/v2/models/ocr-model/ready"),
            60,
            "stoppable model server",
        )
    except TimeoutError:
        service.stop()
        raise
    if not service.alive():
        service.stop()
        raise RuntimeError(f"model server exited at start:\n{service.output()}")
    return server


def test_readiness_follows_the_model(tmp_path: Path) -> None:
    server = start_stoppable_model(tmp_path)
    try:
        statuses: list[Any] = []
        with grpc.insecure_channel(server.grpc_target) as chan:
            watch = health_pb2_grpc.HealthStub(chan).Watch(
                health_pb2.HealthCheckRequest(service=INFERENCE), timeout=30
            )
            statuses.append(next(watch).status)
            assert health_status(server) == health_pb2.HealthCheckResponse.SERVING
            assert http_ok(f"{server.rest_url}/v2/health/ready")

            os.kill(server.service.process.pid, signal.SIGUSR1)  # model.stop(), test path only
            statuses.append(next(watch).status)  # the Watch stream hears it by itself
            watch.cancel()

            stub = pb_grpc.GRPCInferenceServiceStub(chan)
            not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
            for service in ("", INFERENCE):
                assert health_status(server, service) == not_serving
            for path in ("/v2/health/ready", "/v2/models/ocr-model/ready"):
                assert httpx.get(f"{server.rest_url}{path}", timeout=5).status_code == 503
            assert not stub.ServerReady(pb.ServerReadyRequest(), timeout=5).ready
            assert not stub.ModelReady(pb.ModelReadyRequest(name="ocr-model"), timeout=5).ready
            # A call does not bring the model back (KServe would load() it again).
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelInfer(infer_request(), timeout=10)
            error: Any = caught.value
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert_clean(error.details())
            assert rest_infer(server, rest_body()).status_code == 503
            assert health_status(server) == not_serving
            assert http_ok(f"{server.rest_url}/v2/health/live")  # alive, not ready
        assert statuses == [health_pb2.HealthCheckResponse.SERVING, not_serving]
    finally:
        server.service.stop()


# --- the shared token -----------------------------------------------------------------------

TOKEN = secrets.token_urlsafe(32)
WITH_TOKEN = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    server = start_model_server(tmp_path_factory.mktemp("closed"), OCR_MODEL_AUTH_TOKEN=TOKEN)
    yield server
    server.service.stop()


@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer wrong-token-wrong-token"),), (("authorization", TOKEN),)],
    ids=["none", "wrong", "no scheme"],
)
def test_grpc_calls_without_the_token_are_unauthenticated(
    closed_server: ModelServer, metadata: tuple[tuple[str, str], ...]
) -> None:
    with grpc.insecure_channel(closed_server.grpc_target) as chan:
        stub = pb_grpc.GRPCInferenceServiceStub(chan)
        calls: list[Callable[[], Any]] = [
            lambda: stub.ModelInfer(infer_request(), timeout=10, metadata=metadata),
            lambda: stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=5, metadata=metadata),
            lambda: stub.RepositoryModelUnload(
                pb.RepositoryModelUnloadRequest(model_name="ocr-model"),
                timeout=5,
                metadata=metadata,
            ),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as caught:
                call()
            error: Any = caught.value
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert error.details() == "missing or wrong bearer token"
    # Unknown methods too: nothing is learnt without the token.
    assert raw_call(closed_server, f"/{INFERENCE}/Nope", b"").code() == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_grpc_calls_with_the_token_are_served(closed_server: ModelServer) -> None:
    ocr_works(closed_server, WITH_TOKEN)
    with grpc.insecure_channel(closed_server.grpc_target) as chan:
        stub = pb_grpc.GRPCInferenceServiceStub(chan)
        assert stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=5, metadata=WITH_TOKEN)
        with pytest.raises(grpc.RpcError) as caught:
            stub.RepositoryModelUnload(
                pb.RepositoryModelUnloadRequest(model_name="ocr-model"),
                timeout=5,
                metadata=WITH_TOKEN,
            )
        error: Any = caught.value
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED  # off, token or not


def test_grpc_probes_health_and_reflection_stay_open(closed_server: ModelServer) -> None:
    with grpc.insecure_channel(closed_server.grpc_target) as chan:
        stub = pb_grpc.GRPCInferenceServiceStub(chan)
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=5).live
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=5).ready
        # ModelReady needs the token: the gateway's readiness then proves its token is right.
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelReady(pb.ModelReadyRequest(name="ocr-model"), timeout=5)
        error: Any = caught.value
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        ready = stub.ModelReady(
            pb.ModelReadyRequest(name="ocr-model"), timeout=5, metadata=WITH_TOKEN
        )
        assert ready.ready
        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="ocr-model"), timeout=5)
        assert [t.name for t in meta.inputs] == ["image"]
    assert health_status(closed_server, INFERENCE) == health_pb2.HealthCheckResponse.SERVING
    listed = grpcurl(closed_server.grpc_target, "list")
    assert listed.returncode == 0, listed.stderr
    assert INFERENCE in listed.stdout.split()


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GRPCURL), "-plaintext", *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_grpcurl_with_the_bearer_header_as_the_readme_says(closed_server: ModelServer) -> None:
    method = f"{INFERENCE}/ServerMetadata"
    refused = grpcurl(closed_server.grpc_target, method)
    assert refused.returncode != 0
    assert "Unauthenticated" in refused.stderr
    served = grpcurl("-H", f"authorization: Bearer {TOKEN}", closed_server.grpc_target, method)
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout)["name"] == "kserve"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": TOKEN}],
    ids=["none", "wrong", "no scheme"],
)
def test_rest_requests_without_the_token_get_401(
    closed_server: ModelServer, headers: dict[str, str]
) -> None:
    response = rest_infer(closed_server, rest_body(), headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "missing or wrong bearer token"}
    for path in ("/v2", "/v2/models/ocr-model", "/", "/v1/models"):
        assert httpx.get(f"{closed_server.rest_url}{path}", headers=headers).status_code == 401


def test_rest_requests_with_the_token_and_probes_are_served(closed_server: ModelServer) -> None:
    response = rest_infer(closed_server, rest_body(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.json()["outputs"][0]["data"][0].strip() == GOOD_TEXT
    for path in (
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/ocr-model/ready",
        "/metrics",
    ):
        assert httpx.get(f"{closed_server.rest_url}{path}", timeout=5).status_code == 200, path


def test_an_unauthenticated_32_mib_message_is_refused_unread(closed_server: ModelServer) -> None:
    data = hostile.empty_requested_outputs()
    started = time.perf_counter()
    error = raw_call(closed_server, hostile.MODEL_INFER, data)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert time.perf_counter() - started < 1.0


def test_a_short_token_stops_the_model_at_start_in_one_line() -> None:
    short = "short-token"
    line = settings_refusal("model", {"OCR_MODEL_AUTH_TOKEN": short})
    assert "OCR_MODEL_AUTH_TOKEN" in line
    assert short not in line


# --- REST body limit ------------------------------------------------------------------------


def json_chunks(total: int, chunk: int = MiB) -> Iterator[bytes]:
    """A v2 JSON request of `total` bytes whose image is base64 "A"s, one `chunk` at a time
    (the same chunk object each time: the test never holds the body)."""
    head = b'{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["'
    tail = b'"]}]}'
    filler = b"A" * chunk
    yield head
    left = total - len(head) - len(tail)
    while left > 0:
        piece = filler if left >= chunk else filler[:left]
        left -= len(piece)
        yield piece
    yield tail


@dataclass
class Upload:
    response: bytes
    sent: int  # body bytes sent before the answer came
    answered_s: float  # from the last byte sent (or the headers) to the answer


def upload(port: int, total: int, chunked: bool) -> Upload:
    """POST a generated `total`-byte JSON body to the infer route over a raw socket, streaming
    it chunk by chunk and stopping as soon as the server answers."""
    head = (
        b"POST /v2/models/ocr-model/infer HTTP/1.1\r\nHost: model\r\n"
        b"Content-Type: application/json\r\n"
    )
    head += b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % total
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent = 0
    with sock:
        sock.sendall(head + b"\r\n")
        last = time.perf_counter()
        # A declared length over the limit is answered before any of the body is sent.
        readable = select.select([sock], [], [], 0.0 if chunked else 1.0)[0]
        for piece in [] if readable else json_chunks(total):
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                if chunked:
                    sock.sendall(b"%x\r\n" % len(piece))
                sock.sendall(piece)
                if chunked:
                    sock.sendall(b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
            last = time.perf_counter()
        response = b""
        try:
            while b"\r\n\r\n" not in response or not response.endswith(b"}"):
                data = sock.recv(65536)
                if not data:
                    break
                response += data
        except ConnectionResetError:
            pass
        return Upload(response, sent, time.perf_counter() - last)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_100_mib_body_is_413_fast_and_never_held(
    model_server: ModelServer, chunked: bool
) -> None:
    with RssPeak(psutil.Process(model_server.service.process.pid)) as rss:
        result = upload(model_server.http_port, 100 * MiB, chunked)
    status_line, _, rest = result.response.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), result.response[:200]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body == {"error": f"request body over the limit of {REST_LIMIT} bytes"}
    assert result.answered_s < 1.0
    print(
        f"\n413 {'chunked' if chunked else 'declared'}: {result.sent / MiB:.0f} MiB sent, "
        f"answered {result.answered_s * 1000:.0f} ms after the last byte, "
        f"model RSS peak +{rss.growth / MiB:.1f} MiB"
    )
    if chunked:
        # Read up to the limit (uvicorn and Starlette buffer it), then refused: never 100 MiB.
        assert result.sent < REST_LIMIT + 16 * MiB
        assert rss.growth < REST_LIMIT + 32 * MiB
    else:
        assert result.sent == 0
        assert rss.growth < 16 * MiB
    assert rest_infer(model_server, rest_body()).status_code == 200


# --- hostile gRPC messages ------------------------------------------------------------------


@dataclass
class Probes:
    """Readiness probes (grpc.health Check, REST /v2/health/ready) in a loop on a thread."""

    server: ModelServer
    latencies: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Probes:
        def run() -> None:
            with grpc.insecure_channel(self.server.grpc_target) as chan:
                health = health_pb2_grpc.HealthStub(chan)
                while not self._stop.is_set():
                    started = time.perf_counter()
                    health.Check(health_pb2.HealthCheckRequest(), timeout=10)
                    httpx.get(f"{self.server.rest_url}/v2/health/ready", timeout=10)
                    self.latencies.append(time.perf_counter() - started)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        wait_until(lambda: bool(self.latencies), 10, "first probe", interval_s=0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)  # the probe in flight counts too

    @property
    def worst(self) -> float:
        return max(self.latencies)


@pytest.mark.parametrize("shape", list(hostile.HOSTILE_REQUESTS))
def test_hostile_32_mib_messages_are_refused_fast_while_probes_are_answered(
    model_server: ModelServer, shape: str
) -> None:
    data = hostile.HOSTILE_REQUESTS[shape](hostile.DEFAULT_SIZE)
    refusals: list[float] = []
    with Probes(model_server) as probes:
        for _ in range(3):
            started = time.perf_counter()
            error = raw_call(model_server, hostile.MODEL_INFER, data)
            refusals.append(time.perf_counter() - started)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
            assert_clean(error.details())
            assert len(error.details()) < 300
    print(
        f"\n{shape}: refused in {min(refusals) * 1000:.0f}-{max(refusals) * 1000:.0f} ms "
        f"(32 MiB sent over loopback included), worst probe {probes.worst * 1000:.0f} ms "
        f"of {len(probes.latencies)}"
    )
    assert max(refusals) < 0.5
    assert probes.worst < 0.5
    ocr_works(model_server)


def test_millions_of_zero_length_binary_elements_over_rest_are_refused_fast(
    model_server: ModelServer,
) -> None:
    raw = struct.pack("<I", 0) * (40 * MiB // 4)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    with Probes(model_server) as probes:
        started = time.perf_counter()
        response = httpx.post(
            f"{model_server.rest_url}/v2/models/ocr-model/infer",
            content=header + raw,
            headers={"inference-header-content-length": str(len(header))},
            timeout=60,
        )
        elapsed = time.perf_counter() - started
    assert response.status_code == 400
    assert "base64" in response.json()["error"]
    assert elapsed < 1.0
    assert probes.worst < 0.5


def test_a_binary_image_over_rest_is_refused_without_echoing_it(model_server: ModelServer) -> None:
    # KServe re-encodes binary BYTES as UTF-8 text: it answered 500 quoting the image whole.
    raw = struct.pack("<I", len(GOOD)) + GOOD
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    response = httpx.post(
        f"{model_server.rest_url}/v2/models/ocr-model/infer",
        content=header + raw,
        headers={"inference-header-content-length": str(len(header))},
        timeout=30,
    )
    assert response.status_code == 400
    assert "send it base64 in JSON" in response.json()["error"]
    assert len(response.text) < 300


# --- clean error messages -------------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [hostile.MODEL_INFER, f"/{INFERENCE}/ServerLive", "/grpc.health.v1.Health/Check"],
)
def test_garbage_protobuf_is_invalid_argument_in_plain_words(
    model_server: ModelServer, method: str
) -> None:
    garbage = b"\xff\xff\xff\xff garbage, not protobuf" + secrets.token_bytes(64)
    error = raw_call(model_server, method, garbage)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "DecodeError" not in error.details()
    assert_clean(error.details())


def test_a_5000_digit_psm_is_a_clean_400_over_rest(model_server: ModelServer) -> None:
    response = rest_infer(model_server, rest_body(psm="9" * 5000))
    assert response.status_code == 400
    assert response.json() == {"error": "parameter 'psm' must be an integer"}


def test_a_5000_digit_psm_is_a_clean_invalid_argument_over_grpc(model_server: ModelServer) -> None:
    request = infer_request()
    request.parameters["psm"].CopyFrom(pb.InferParameter(string_param="9" * 5000))
    with (
        grpc.insecure_channel(model_server.grpc_target) as chan,
        pytest.raises(grpc.RpcError) as caught,
    ):
        pb_grpc.GRPCInferenceServiceStub(chan).ModelInfer(request, timeout=10)
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "parameter 'psm' must be an integer"


def test_a_mebibyte_input_name_is_not_echoed_whole(model_server: ModelServer) -> None:
    name = "n" * MiB
    response = rest_infer(
        model_server,
        {
            **rest_body(),
            "inputs": [{"name": name, "datatype": "FP32", "shape": [1], "data": [1.0]}],
        },
    )
    assert response.status_code == 400
    assert len(response.text) < 300
    assert "(1048576 characters)" in response.json()["error"]
    grpc_request = pb.ModelInferRequest(
        model_name="ocr-model",
        inputs=[pb.ModelInferRequest.InferInputTensor(name=name, datatype="FP32", shape=[1])],
        raw_input_contents=[b"\x00" * 4],
    )
    error = raw_call(model_server, hostile.MODEL_INFER, grpc_request.SerializeToString())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(error.details()) < 300
    assert_clean(error.details())


def test_a_mebibyte_model_name_is_not_echoed_whole(model_server: ModelServer) -> None:
    request = infer_request()
    request.model_name = "m" * MiB
    error = raw_call(model_server, hostile.MODEL_INFER, request.SerializeToString())
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert len(error.details()) < 300


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": "x" * MiB},
        {"inputs": [], "parameters": ["y" * MiB]},
        {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["z"]}] * 2},
    ],
    ids=["inputs not a list", "parameters not an object", "two inputs"],
)
def test_malformed_rest_bodies_are_400_without_echo(
    model_server: ModelServer, body: dict[str, Any]
) -> None:
    response = rest_infer(model_server, body)
    assert response.status_code == 400
    assert len(response.text) < 300
    assert_clean(response.json()["error"])


def test_a_gateway_with_a_wrong_token_is_not_ready(
    closed_server: ModelServer, tmp_path: Path
) -> None:
    """The gateway's readiness asks ModelReady with its token: a wrong one shows at /readyz
    (503 not_ready) instead of as an error on every upload; the right one serves."""
    wrong = start_gateway(
        tmp_path, closed_server, wait_ready=False, OCR_GATEWAY_MODEL_TOKEN="w" * 32
    )
    right = start_gateway(tmp_path, closed_server, OCR_GATEWAY_MODEL_TOKEN=TOKEN)
    try:
        response = httpx.get(f"{wrong.url}/readyz", timeout=10)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "not_ready"
        assert httpx.get(f"{right.url}/readyz", timeout=10).status_code == 200
        upload = httpx.post(
            f"{right.url}/gateway/ocr",
            files={"image_file": ("l.png", line_png("Token checked 16"))},
            timeout=30,
        )
        assert upload.status_code == 200, upload.text
    finally:
        wrong.service.stop()
        right.service.stop()
