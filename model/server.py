"""The KServe model server, with gRPC server reflection and grpc.health.v1 on the gRPC port.

KServe's own gRPC server registers only the v2 inference service; `ObservableGRPCServer` builds
the same server and adds reflection (so `grpcurl -plaintext host:8081 list` works without a
proto file) and the standard health service, which reports SERVING while the model is ready.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from kserve import ModelServer
from kserve.model_server import app as kserve_app
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY

from .deadlines import DeadlineInterceptor
from .errors import REST_HANDLED, rest_error_handler
from .metrics import ModelMetrics
from .settings import ModelSettings

logger = logging.getLogger(__name__)

INFERENCE_SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
#: Beyond the longest request, what a call on an aged connection gets to finish.
CONNECTION_AGE_GRACE_MARGIN_S = 5.0


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


class ReflectiveGRPCServer(GRPCServer):  # type: ignore[misc]  # kserve ships no type information
    """KServe's v2 gRPC server plus server reflection and grpc.health.v1."""

    def __init__(
        self,
        model_server: ModelServer,
        settings: ModelSettings,
        tracer_provider: TracerProvider | None = None,
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
        # grpc-stubs does not describe the asyncio servicer, which grpcio-health-checking ships.
        self.health: Any = health.aio.HealthServicer()  # type: ignore[attr-defined]

    async def start(self, max_workers: int) -> None:
        """Serve until stopped (KServe awaits this coroutine beside the REST server)."""
        interceptors: list[Any] = []
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
        interceptors.append(ExceptionToStatusInterceptor())
        interceptors.append(DeadlineInterceptor())
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=interceptors,
            options=server_options(self._settings),
        )
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(self._data_plane, self._model_repository_extension), self._server
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
        serving = health_pb2.HealthCheckResponse.SERVING
        for service in ("", INFERENCE_SERVICE):
            await self.health.set(service, serving)
        logger.info("gRPC v2 server listening on port %s", self._port)
        await self._server.wait_for_termination()

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
        self._settings = settings
        self._metrics = metrics
        self._tracer_provider = tracer_provider

    def start(self, models: list[Any]) -> None:
        """Serve REST and gRPC until a signal stops the server."""
        # KServe's /metrics serves the default registry: ours joins it while this server runs.
        REGISTRY.register(self._metrics.registry)
        # KServe builds its REST app once per process (kserve.model_server.app); our errors get
        # their HTTP status there (they would otherwise be a generic 500).
        for error in REST_HANDLED:
            kserve_app.add_exception_handler(error, rest_error_handler)
        try:
            # ModelServer.stop() stops whatever `_grpc_server` holds, so ours drains like KServe's.
            self._grpc_server = ReflectiveGRPCServer(self, self._settings, self._tracer_provider)
            self.servers.append(self._grpc_server.start(self.max_threads))
            super().start(models)
        finally:
            REGISTRY.unregister(self._metrics.registry)
