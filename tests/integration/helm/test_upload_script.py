"""The `helm test` Pod's command, run here against a real gateway and model server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ModelServer
from tests.integration.helm.chart import Rendered, env_of
from tests.support.processes import free_port, http_ok, python_module, start, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway_url(
    model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A gateway set up the way the chart sets it up: a dns:/// target and round_robin."""
    port = free_port()
    service = start(
        python_module("gateway"),
        {
            "OCR_GATEWAY_HOST": "127.0.0.1",
            "OCR_GATEWAY_PORT": str(port),
            "OCR_GATEWAY_MODEL_ADDRESS": f"dns:///{model_server.grpc_target}",
            "OCR_GATEWAY_LB_POLICY": "round_robin",
        },
        tmp_path_factory.mktemp("gateway") / "gateway.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: not service.alive() or http_ok(f"{url}/readyz"), 60, "gateway")
        assert service.alive(), service.output()
        yield url
    finally:
        service.stop()


def test_pod_command_reads_its_word(rendered_all: dict[str, Rendered], gateway_url: str) -> None:
    (pod,) = rendered_all["default"].kind("Pod")
    (container,) = pod["spec"]["containers"]
    command = [*container["command"], *container["args"]]
    assert command[:2] == ["python", "-c"]
    env = env_of(container)
    assert env["OCR_TEST_URL"] == (
        "http://ocr-platform-gateway.ocr.svc.cluster.local:8001/gateway/ocr"
    )
    result = subprocess.run(
        [sys.executable, *command[1:]],
        env={"OCR_TEST_URL": f"{gateway_url}/gateway/ocr", "OCR_TEST_WORD": env["OCR_TEST_WORD"]},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK:"), result.stdout


def test_pod_command_fails_on_a_wrong_answer(
    rendered_all: dict[str, Rendered], tmp_path: Path
) -> None:
    """Exit status 1 when the gateway's text lacks the word (a 4xx is not retried either)."""
    (pod,) = rendered_all["default"].kind("Pod")
    (container,) = pod["spec"]["containers"]
    unreachable = f"http://127.0.0.1:{free_port()}/gateway/ocr"
    script = container["args"][0].replace("ATTEMPTS = 10", "ATTEMPTS = 1")
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"OCR_TEST_URL": unreachable},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode != 0
