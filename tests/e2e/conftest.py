"""Start the whole platform the way `make run` does: scripts/run-local.sh on free ports."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.otlp import OtlpReceiver
from tests.support.processes import ROOT, Service, free_port, http_ok, start, wait_until


@dataclass(frozen=True)
class Platform:
    """A running gateway + model server pair."""

    service: Service
    gateway_port: int
    model_http_port: int
    model_grpc_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def ocr(self, files: Any = None, data: Any = None, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}/gateway/ocr", files=files, data=data, timeout=60, **kwargs)


def start_platform(log_dir: Path, env: dict[str, str] | None = None) -> Platform:
    """Run scripts/run-local.sh with this interpreter; return once the gateway is ready."""
    gateway, http, grpc = free_port(), free_port(), free_port()
    service = start(
        ["bash", str(ROOT / "scripts" / "run-local.sh"), sys.executable],
        {
            "OCR_GATEWAY_PORT": str(gateway),
            "OCR_GATEWAY_HOST": "127.0.0.1",
            "OCR_MODEL_HTTP_PORT": str(http),
            "OCR_MODEL_GRPC_PORT": str(grpc),
            "OCR_MODEL_GRACE_PERIOD_S": "5",
            **(env or {}),
        },
        log_dir / "run-local.log",
    )
    running = Platform(service, gateway, http, grpc)
    try:
        wait_until(lambda: not service.alive() or http_ok(f"{running.url}/readyz"), 90, "platform")
    except TimeoutError:
        service.stop(signal.SIGINT)
        raise
    if not service.alive():
        service.stop(signal.SIGINT)  # a child of the script may outlive it
        raise RuntimeError(f"the platform exited at start:\n{service.output()}")
    return running


# Spans leave the services in batches; a short delay keeps the tests quick.
TRACING_ENV = {
    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    "OTEL_BSP_SCHEDULE_DELAY": "100",
    "OTEL_TRACES_SAMPLER": "always_on",
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP/gRPC trace receiver on a free loopback port."""
    otlp = OtlpReceiver()
    otlp.start()
    yield otlp
    otlp.stop()


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver) -> Iterator[Platform]:
    """The platform with tracing on, exporting to `receiver`."""
    env = {**TRACING_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
    running = start_platform(tmp_path_factory.mktemp("traced"), env)
    yield running
    running.service.stop(signal.SIGINT)
