"""The KServe internals `model/server.py` relies on, pinned so that an upgrade that moves them fails
here, by name, instead of at start-up or (worse) silently serving without reflection and health.

`ReflectiveGRPCServer` re-implements `GRPCServer.start()` (to add interceptors, reflection and
grpc.health.v1), and `OcrModelServer` swaps in that server. What they rely on:

1. `GRPCServer.__init__(port, data_plane, model_repository_extension, kwargs, grace_period)`
   storing `_port`, `_data_plane`, `_model_repository_extension`, `_grace_period`, and `stop()`
   stopping whatever `_server` holds within `_grace_period`.
2. `InferenceServicer(data_plane, model_repository_extension)` and
   `ExceptionToStatusInterceptor` (maps `InvalidInput` and grpc-interceptor's exceptions).
3. `ModelServer`: `dataplane`, `model_repository_extension`, `max_threads`, the `servers` list
   that `start()` gathers, and `stop()` stopping `_grpc_server`.
4. `kserve.model_server.app`: the one REST app per process, where our error handlers go.
5. The body of `GRPCServer.start()` itself, whose work ours repeats: its source digest is pinned.
   When KServe changes it, read the new version, carry what matters into
   `ReflectiveGRPCServer.start()`, then update `START_DIGEST`.

Closing the model (`grpc_guard`, `rest_guard`, `auth`, `OcrDataPlane`) relies on:

6. The v2 gRPC service having exactly the methods we know: a new one (say RepositoryIndex) must
   be judged open, closed or guarded before it ships. `InferenceServicer` keeps the data plane
   in `_data_plane`, answers the repository methods we override, and converts a request
   (`InferRequest.from_grpc`) only in `ModelInfer`, after our count check.
7. Every REST route of the model repository extension lying under `/v2/repository`, which
   `RestGuardMiddleware` answers 404 (KServe registers them unconditionally).
8. `InferInput._raw_data`: where KServe keeps gRPC `raw_input_contents` undecoded; the codec
   reads one length prefix there. The REST binary extension, whose BYTES KServe decodes in full
   and re-encodes as UTF-8 text (`InferRequest.from_bytes`: no image survives, and the error
   quotes it whole), is refused for images in `DataPlane.decode_inference_request`.
9. `DataPlane(model_registry=...)` with a `model_registry` property, `ready()`, `model_ready()`,
   `get_model()`, `get_model_from_registry()`, `metadata()` and `decode_inference_request()`,
   which `OcrDataPlane` overrides,
   and `ModelServer.__init__` building `self.dataplane`, which ours replaces.
10. KServe's REST app answering unexpected exceptions with its generic handler registered for
    `Exception` (so they reach our ASGI middleware first), and leaving FastAPI's
    `RequestValidationError` handler to us.
11. grpc.health's asyncio servicer keeping statuses in `_server_status`.
"""

from __future__ import annotations

import hashlib
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from kserve import ModelServer
from kserve.model_server import app as kserve_app
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.infer_type import InferInput, InferRequest
from kserve.protocol.rest.server import RESTServer
from kserve.protocol.rest.v2_endpoints import register_v2_endpoints
from prometheus_client import CollectorRegistry

from model.grpc_guard import ClosedInferenceServicer
from model.metrics import ModelMetrics
from model.rest_guard import REPOSITORY_PREFIX
from model.server import OcrDataPlane, OcrModelServer, ReflectiveGRPCServer
from model.settings import ModelSettings

pytestmark = pytest.mark.unit

#: sha256 of `inspect.getsource(GRPCServer.start)` (dedented) in the pinned KServe (0.21).
START_DIGEST = "9e051a0294b4a6cc3c09365a1155f2cf88914e3c62d9b56d7e7abcc03579d5b0"


def source_digest(function: Callable[..., Any]) -> str:
    return hashlib.sha256(textwrap.dedent(inspect.getsource(function)).encode()).hexdigest()


def test_grpc_server_start_is_the_one_ours_repeats() -> None:
    assert source_digest(GRPCServer.start) == START_DIGEST, (
        "KServe's GRPCServer.start() changed: compare it with ReflectiveGRPCServer.start() in "
        "model/server.py, carry the change over, then update START_DIGEST"
    )


def test_grpc_server_constructor_and_attributes() -> None:
    parameters = list(inspect.signature(GRPCServer.__init__).parameters)
    assert parameters[:4] == ["self", "port", "data_plane", "model_repository_extension"]
    assert {"kwargs", "grace_period"} <= set(parameters)
    server = ModelServer(http_port=1, grpc_port=2, enable_grpc=False)
    grpc_server = GRPCServer(
        2, server.dataplane, server.model_repository_extension, kwargs={}, grace_period=7
    )
    assert grpc_server._port == 2
    assert grpc_server._data_plane is server.dataplane
    assert grpc_server._model_repository_extension is server.model_repository_extension
    assert grpc_server._grace_period == 7
    assert "self._server.stop(grace=self._grace_period)" in inspect.getsource(GRPCServer.stop)


def test_servicer_and_interceptor_signatures() -> None:
    assert list(inspect.signature(InferenceServicer.__init__).parameters)[1:3] == [
        "data_plane",
        "model_repository_extension",
    ]
    assert inspect.iscoroutinefunction(ExceptionToStatusInterceptor.handle_exception)


def test_model_server_hooks_ours_uses() -> None:
    settings = ModelSettings(http_port=18080, grpc_port=18081)
    server = OcrModelServer(settings, ModelMetrics(CollectorRegistry()))
    assert isinstance(server.servers, list)
    assert server.max_threads >= 1
    assert server.dataplane is not None
    assert server.model_repository_extension is not None
    assert server._grpc_server is None  # set by our start(), stopped by KServe's stop()
    assert "self._grpc_server.stop(" in inspect.getsource(ModelServer.stop)
    assert "asyncio.gather(*self.servers)" in inspect.getsource(ModelServer._serve)
    assert isinstance(kserve_app, FastAPI)
    # Ours is a GRPCServer, so KServe's stop() drains it like its own.
    assert issubclass(ReflectiveGRPCServer, GRPCServer)
    assert isinstance(server.dataplane, OcrDataPlane)


def test_the_v2_grpc_service_has_the_methods_we_judged() -> None:
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert [method.name for method in service.methods] == [
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
        "RepositoryModelLoad",
        "RepositoryModelUnload",
    ], "a new v2 gRPC method: decide in model/auth.py and model/grpc_guard.py who may call it"
    for method in ("RepositoryModelLoad", "RepositoryModelUnload", "ModelInfer"):
        assert getattr(ClosedInferenceServicer, method) is not getattr(InferenceServicer, method)
    assert "self._data_plane = data_plane" in inspect.getsource(InferenceServicer.__init__)
    model_infer = inspect.getsource(InferenceServicer.ModelInfer)
    assert "InferRequest.from_grpc(request)" in model_infer


def test_every_repository_route_is_under_the_prefix_the_guard_closes() -> None:
    app = FastAPI()
    server = ModelServer(http_port=1, grpc_port=2, enable_grpc=False)
    register_v2_endpoints(app, server.dataplane, server.model_repository_extension)
    repository = [path for path in app.openapi()["paths"] if "repository" in path]
    assert repository, "KServe no longer serves the repository extension: simplify the guard"
    assert all(path.startswith(REPOSITORY_PREFIX + "/") for path in repository)


def test_raw_bytes_contents_stay_undecoded_in_raw_data() -> None:
    raw = b"\x01\x00\x00\x00x"
    request = InferRequest.from_grpc(
        pb.ModelInferRequest(
            model_name="m",
            inputs=[pb.ModelInferRequest.InferInputTensor(name="i", datatype="BYTES", shape=[1])],
            raw_input_contents=[raw],
        )
    )
    assert request.inputs[0]._raw_data == raw
    assert InferInput(name="i", shape=[1], datatype="BYTES", data=["a"])._raw_data is None


def test_the_rest_binary_extension_is_decoded_in_full_by_kserve() -> None:
    # Why `OcrDataPlane.decode_inference_request` refuses binary images first.
    from_bytes = inspect.getsource(InferRequest.from_bytes)
    assert "infer_input.as_numpy(), binary_data=False" in " ".join(from_bytes.split())
    source = inspect.getsource(DataPlane.decode_inference_request)
    assert "InferRequest.from_bytes(body, int(json_length), model_name)" in source
    assert "decode_inference_request(body, headers, model_name)" in inspect.getsource(
        DataPlane.decode
    )


def test_the_data_plane_hooks_ours_overrides() -> None:
    assert "self.dataplane = DataPlane(" in inspect.getsource(ModelServer.__init__)
    assert list(inspect.signature(DataPlane.__init__).parameters) == ["self", "model_registry"]
    assert isinstance(inspect.getattr_static(DataPlane, "model_registry"), property)
    for name in ("ready", "model_ready", "get_model"):
        assert inspect.iscoroutinefunction(getattr(DataPlane, name)), name
    for name in ("get_model_from_registry", "metadata"):
        assert not inspect.iscoroutinefunction(getattr(DataPlane, name)), name
    assert list(inspect.signature(DataPlane.model_ready).parameters) == [
        "self",
        "model_name",
        "disable_predictor_health_check",
    ]
    assert "extensions" in DataPlane(model_registry=ModelServer().registered_models).metadata()
    assert list(inspect.signature(DataPlane.decode_inference_request).parameters) == [
        "self",
        "body",
        "headers",
        "model_name",
    ]


def test_kserve_leaves_unexpected_errors_and_validation_errors_to_us() -> None:
    source = inspect.getsource(RESTServer._add_exception_handlers)
    assert "app.add_exception_handler(Exception, generic_exception_handler)" in source
    assert "RequestValidationError" not in inspect.getsource(RESTServer)


def test_the_asyncio_health_servicer_keeps_statuses_in_a_dict() -> None:
    from grpc_health.v1 import health

    servicer: Any = health.aio.HealthServicer()  # type: ignore[attr-defined]  # not in the stubs
    assert isinstance(servicer._server_status, dict)
    assert isinstance(servicer._server_watchers, dict)
