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
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from prometheus_client import CollectorRegistry

from model.metrics import ModelMetrics
from model.server import OcrModelServer, ReflectiveGRPCServer
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
