"""Session fixtures: the real model server process, started once on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import Service, free_port, http_ok, python_module, start, wait_until


@dataclass(frozen=True)
class ModelServer:
    """Addresses of a running model server."""

    service: Service
    http_port: int
    grpc_port: int

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


def start_model_server(
    log_dir: Path, http_port: int | None = None, grpc_port: int | None = None, **env: str
) -> ModelServer:
    """Start `python -m model` (on free ports unless given) and wait until the model is ready."""
    http_port, grpc_port = http_port or free_port(), grpc_port or free_port()
    service = start(
        python_module("model"),
        {
            "OCR_MODEL_HTTP_PORT": str(http_port),
            "OCR_MODEL_GRPC_PORT": str(grpc_port),
            "OCR_MODEL_GRACE_PERIOD_S": "5",
            **env,
        },
        log_dir / f"model-{http_port}.log",
    )
    server = ModelServer(service, http_port, grpc_port)
    try:
        wait_until(
            lambda: not service.alive() or http_ok(f"{server.rest_url}/v2/models/ocr-model/ready"),
            60,
            "model server",
        )
    except TimeoutError:
        service.stop()
        raise
    if not service.alive():
        raise RuntimeError(f"model server exited at start:\n{service.output()}")
    return server


@pytest.fixture(scope="session")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    server = start_model_server(tmp_path_factory.mktemp("model"))
    yield server
    server.service.stop()


@dataclass(frozen=True)
class Gateway:
    """A running gateway process."""

    service: Service
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_gateway(
    log_dir: Path, model: ModelServer, wait_ready: bool = True, **env: str
) -> Gateway:
    """Start `python -m gateway` on a free port in front of `model`."""
    port = free_port()
    service = start(
        python_module("gateway"),
        {
            "OCR_GATEWAY_PORT": str(port),
            "OCR_GATEWAY_HOST": "127.0.0.1",
            "OCR_GATEWAY_MODEL_ADDRESS": model.grpc_target,
            **env,
        },
        log_dir / f"gateway-{port}.log",
    )
    gateway = Gateway(service, port)
    check = f"{gateway.url}/readyz" if wait_ready else f"{gateway.url}/healthz"
    try:
        wait_until(lambda: not service.alive() or http_ok(check), 60, "gateway")
    except TimeoutError:
        service.stop()
        raise
    if not service.alive():
        raise RuntimeError(f"gateway exited at start:\n{service.output()}")
    return gateway
