"""Session fixtures: the real model server process, started once on free loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from model.settings import ModelSettings
from tests.support.processes import Service, free_port, http_ok, python_module, start, wait_until

#: The model name `python -m model` serves unless OCR_MODEL_MODEL_NAME says otherwise.
DEFAULT_MODEL_NAME: str = ModelSettings.model_fields["model_name"].default


def configured_model_name(env: Mapping[str, str]) -> str:
    """The model name a server started with `env` serves (variable names are case-insensitive
    there; the last one set wins)."""
    for name, value in reversed(list(env.items())):
        if name.upper() == "OCR_MODEL_MODEL_NAME":
            return value
    return DEFAULT_MODEL_NAME


@dataclass(frozen=True)
class ModelServer:
    """Addresses of a running model server."""

    service: Service
    http_port: int
    grpc_port: int
    model_name: str = DEFAULT_MODEL_NAME

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
    added = {
        "OCR_MODEL_HTTP_PORT": str(http_port),
        "OCR_MODEL_GRPC_PORT": str(grpc_port),
        "OCR_MODEL_GRACE_PERIOD_S": "5",
        **env,
    }
    service = start(python_module("model"), added, log_dir / f"model-{http_port}.log")
    # The child sees our environment with `added` on top: poll the name it will serve.
    name = configured_model_name({**os.environ, **added})
    server = ModelServer(service, http_port, grpc_port, name)
    try:
        wait_until(
            lambda: not service.alive() or http_ok(f"{server.rest_url}/v2/models/{name}/ready"),
            60,
            "model server",
        )
    except TimeoutError:
        service.stop()
        raise
    if not service.alive():
        service.stop()  # reaps it, and anything it started
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
            "OCR_GATEWAY_MODEL_NAME": model.model_name,
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
        service.stop()  # reaps it, and anything it started
        raise RuntimeError(f"gateway exited at start:\n{service.output()}")
    return gateway
