"""The KServe model server, with gRPC server reflection and grpc.health.v1 on the gRPC port.

KServe's own gRPC server registers only the v2 inference service; `ReflectiveGRPCServer` builds
the same server and adds reflection (so `grpcurl -plaintext host:8081 list` works without a
proto file) and the standard health service, which reports SERVING while the model is ready.

Closed to all but the gateway: the model repository extension is off on both ports
(`grpc_guard`, `rest_guard`), an optional bearer token guards inference (`auth`), readiness
follows the model (`OcrDataPlane`) and oversized or malformed requests are refused before any
work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent import futures
from typing import Any, Final

from fastapi.exceptions import RequestValidationError
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from kserve import ModelServer
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.errors import ModelNotFound, ModelNotReady
from kserve.model_server import app as kserve_app
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from kserve.protocol.grpc.server import GRPCServer
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY

from . import codec
from .auth import BearerToken, TokenInterceptor, TokenMiddleware
from .deadlines import DeadlineInterceptor
from .errors import (
    REST_HANDLED,
    ClientSafeExceptionInterceptor,
    echo,
    rest_error_handler,
    rest_validation_error_handler,
)
from .grpc_guard import ClosedInferenceServicer, MessageGuardInterceptor, request_types
from .intake import Intake
from .metrics import ModelMetrics
from .rest_guard import RestGuardMiddleware
from .settings import ModelSettings

logger = logging.getLogger(__name__)

INFERENCE_SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
MODEL_INFER: Final = f"/{INFERENCE_SERVICE}/ModelInfer"
#: Beyond the longest request, what a call on an aged connection gets to finish.
CONNECTION_AGE_GRACE_MARGIN_S = 5.0
#: How often grpc.health.v1 `Watch` streams learn the model's readiness (`Check` asks at once).
HEALTH_POLL_S: Final = 1.0


def server_options(settings: ModelSettings) -> list[tuple[str, int]]:
    """gRPC server options: message limits, and connections that age out (so clients re-resolve
    DNS and spread over pods added later) with a grace longer than the longest request."""
    limit = settings.max_message_bytes
    options = [
        ("grpc.max_send_message_length", limit),
        ("grpc.max_receive_message_length", limit),
    ]
    if settings.max_connection_age_s > 0:
        grace_s = settings.max_request_s + CONNECTION_AGE_GRACE_MARGIN_S
        options += [
            ("grpc.max_connection_age_ms", round(settings.max_connection_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", round(grace_s * 1000)),
        ]
    return options


class OcrDataPlane(DataPlane):  # type: ignore[misc]  # kserve ships no type information
    """KServe's data plane, with readiness that follows the models and without reloading.

    KServe's `ready()` is always true (the server, not the model) and its `get_model()` loads a
    model that is not ready; here the server is ready while every registered model is, and a
    call to a model that is not ready is refused (UNAVAILABLE, 503). A model name nobody serves
    is quoted cut to a few characters, the metadata no longer offers the model repository
    extension, and a REST binary-extension body is checked before KServe decodes it (an image
    cannot travel that way: `codec.check_binary_request`).
    """

    async def ready(self) -> bool:
        registry = self.model_registry
        names = list(registry.get_models())
        return bool(names) and all([await registry.is_model_ready(name) for name in names])

    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = super().metadata()
        return {**metadata, "extensions": []}

    def get_model_from_registry(self, name: str) -> Any:
        model = self.model_registry.get_model(name)
        if model is None:
            raise ModelNotFound(echo(name))
        return model

    async def get_model(self, name: str) -> Any:
        model = self.get_model_from_registry(name)
        if not await self.model_registry.is_model_ready(name):
            raise ModelNotReady(name)
        return model

    def decode_inference_request(self, body: Any, headers: dict[str, str], model_name: str) -> Any:
        if isinstance(body, bytes):  # the REST binary extension: KServe would decode it in full
            codec.check_binary_request(body, headers.get(INFERENCE_CONTENT_LENGTH_HEADER))
        return super().decode_inference_request(body, headers, model_name)

    async def model_ready(
        self, model_name: str, disable_predictor_health_check: bool = False
    ) -> bool:
        self.get_model_from_registry(model_name)  # ModelNotFound, its name cut
        ready: bool = await super().model_ready(model_name, disable_predictor_health_check)
        return ready


class ReadinessHealthServicer(health.aio.HealthServicer):  # type: ignore[misc,name-defined]
    """grpc.health.v1 reporting SERVING for "" and the inference service while `data_plane` is
    ready, NOT_SERVING otherwise; `Check` asks at once, `follow()` keeps `Watch` streams told."""

    SERVICES: Final = ("", INFERENCE_SERVICE)

    def __init__(self, data_plane: DataPlane) -> None:
        super().__init__()
        self._data_plane = data_plane
        # Not serving until the first refresh has asked the model.
        for service in self.SERVICES:
            self._server_status[service] = health_pb2.HealthCheckResponse.NOT_SERVING

    async def refresh(self) -> None:
        """Set every service's status from the data plane's readiness (no-op once shut down)."""
        ready = await self._data_plane.ready()
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in self.SERVICES:
            if self._server_status.get(service) != status:
                await self.set(service, status)

    async def follow(self, interval_s: float = HEALTH_POLL_S) -> None:
        """Refresh every `interval_s` until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(interval_s)

    async def Check(self, request: Any, context: Any) -> Any:
        await self.refresh()
        return await super().Check(request, context)


class ReflectiveGRPCServer(GRPCServer):  # type: ignore[misc]  # kserve ships no type information
    """KServe's v2 gRPC server plus server reflection and grpc.health.v1."""

    def __init__(
        self,
        model_server: ModelServer,
        settings: ModelSettings,
        tracer_provider: TracerProvider | None = None,
        intake: Intake | None = None,
    ) -> None:
        super().__init__(
            settings.grpc_port,
            model_server.dataplane,
            model_server.model_repository_extension,
            kwargs={},
            grace_period=settings.grace_period_s,
        )
        self._settings = settings
        self._tracer_provider = tracer_provider
        self._intake = intake
        self.health = ReadinessHealthServicer(model_server.dataplane)

    def interceptors(self) -> list[Any]:
        """Outermost first: the token (a refused call costs nothing more), tracing, KServe's
        exception-to-status mapping (fixed), the message guard (whose refusals it answers),
        deadlines."""
        interceptors: list[Any] = []
        token = self._settings.auth_token.get_secret_value()
        if token:
            interceptors.append(TokenInterceptor(BearerToken(token)))
        if self._tracer_provider is not None:
            from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

            # A server span per inference, child of the gateway's client span (W3C traceparent
            # in the call metadata); health checks and reflection stay untraced.
            interceptors.append(
                aio_server_interceptor(  # type: ignore[no-untyped-call]  # untyped library
                    tracer_provider=self._tracer_provider,
                    filter_=filters.method_name("ModelInfer"),
                )
            )
        interceptors.append(ClientSafeExceptionInterceptor())
        interceptors.append(
            MessageGuardInterceptor(
                request_types(pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]),
                intake=self._intake,
                held=frozenset({MODEL_INFER}),
            )
        )
        interceptors.append(DeadlineInterceptor())
        return interceptors

    async def start(self, max_workers: int) -> None:
        """Serve until stopped (KServe awaits this coroutine beside the REST server)."""
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=self.interceptors(),
            options=server_options(self._settings),
        )
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(
            ClosedInferenceServicer(self._data_plane, self._model_repository_extension),
            self._server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (
                INFERENCE_SERVICE,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self._server,
        )
        self._server.add_insecure_port(f"{self._settings.grpc_host}:{self._port}")
        await self._server.start()
        following = asyncio.create_task(self.health.follow())
        logger.info("gRPC v2 server listening on port %s", self._port)
        try:
            await self._server.wait_for_termination()
        finally:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following

    async def stop(self, sig: int | None = None) -> None:
        """Report NOT_SERVING at once, then let in-flight calls finish within the grace period."""
        await self.health.enter_graceful_shutdown()
        await super().stop(sig)


class OcrModelServer(ModelServer):  # type: ignore[misc]  # kserve ships no type information
    """KServe's ModelServer whose gRPC side is a `ReflectiveGRPCServer`."""

    def __init__(
        self,
        settings: ModelSettings,
        metrics: ModelMetrics,
        tracer_provider: TracerProvider | None = None,
        intake: Intake | None = None,
    ) -> None:
        super().__init__(
            http_port=settings.http_port,
            grpc_port=settings.grpc_port,
            workers=1,
            enable_grpc=False,  # started below, with reflection and health
            enable_docs_url=False,
            enable_latency_logging=False,
            grace_period=settings.grace_period_s,
        )
        # Readiness that follows the model, no reload on demand (the servers take it from here).
        self.dataplane = OcrDataPlane(model_registry=self.registered_models)
        self._settings = settings
        self._metrics = metrics
        self._tracer_provider = tracer_provider
        self._intake = intake

    def start(self, models: list[Any]) -> None:
        """Serve REST and gRPC until a signal stops the server."""
        # KServe's /metrics serves the default registry: ours joins it while this server runs.
        REGISTRY.register(self._metrics.registry)
        # KServe builds its REST app once per process (kserve.model_server.app); our errors get
        # their HTTP status there (they would otherwise be a generic 500).
        for error in REST_HANDLED:
            kserve_app.add_exception_handler(error, rest_error_handler)
        kserve_app.add_exception_handler(RequestValidationError, rest_validation_error_handler)
        # Added first, so the token is checked inside the guard (the last added runs first).
        token = self._settings.auth_token.get_secret_value()
        if token:
            kserve_app.add_middleware(TokenMiddleware, token=BearerToken(token))
        kserve_app.add_middleware(
            RestGuardMiddleware,
            max_body_bytes=self._settings.max_rest_body_bytes,
            intake=self._intake,
        )
        try:
            # ModelServer.stop() stops whatever `_grpc_server` holds, so ours drains like KServe's.
            self._grpc_server = ReflectiveGRPCServer(
                self, self._settings, self._tracer_provider, self._intake
            )
            self.servers.append(self._grpc_server.start(self.max_threads))
            super().start(models)
        finally:
            REGISTRY.unregister(self._metrics.registry)
