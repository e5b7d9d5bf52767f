"""Model servers added after a gateway connected get its traffic.

gRPC re-resolves a `dns:///` target only when a connection ends, so a gateway balancing with
`round_robin` over a headless Service would never send to pods the HPA adds, unless the model
server ages its connections out (`OCR_MODEL_MAX_CONNECTION_AGE_S`). Here a DNS server on
loopback first resolves the model name to one model server (127.0.0.2), then to two (adding
127.0.0.3, same port, started later), and the gateway must send to the second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from model.server import CONNECTION_AGE_GRACE_MARGIN_S, server_options
from model.settings import ModelSettings
from tests.conftest import ModelServer, start_gateway, start_model_server
from tests.support.dns import LoopbackDns
from tests.support.images import line_png
from tests.support.processes import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

NAME = "models.ocr.test"
LINE = line_png("Found by DNS 7")


def test_connections_age_out_with_grace_beyond_the_longest_request() -> None:
    options = dict(server_options(ModelSettings(max_connection_age_s=60, max_request_s=45)))
    assert options["grpc.max_connection_age_ms"] == 60_000
    assert (
        options["grpc.max_connection_age_grace_ms"] == (45 + CONNECTION_AGE_GRACE_MARGIN_S) * 1000
    )
    assert options["grpc.max_connection_age_grace_ms"] > 45_000
    defaults = dict(server_options(ModelSettings()))
    assert 0 < defaults["grpc.max_connection_age_ms"] <= 300_000
    assert defaults["grpc.max_connection_age_grace_ms"] > ModelSettings().max_request_s * 1000
    forever = dict(server_options(ModelSettings(max_connection_age_s=0)))
    assert "grpc.max_connection_age_ms" not in forever


def answered(model: ModelServer) -> float:
    """Successful OCR requests the model server has answered, from its /metrics."""
    text = httpx.get(f"{model.rest_url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("ocr_requests_total{") and 'status="success"' in line
    )


@pytest.fixture
def dns() -> Iterator[LoopbackDns]:
    with LoopbackDns() as server:
        yield server


def test_a_gateway_finds_a_model_server_started_after_it_connected(
    tmp_path: Path, dns: LoopbackDns
) -> None:
    port = free_port()
    dns.set(NAME, "127.0.0.2")
    first = start_model_server(
        tmp_path,
        grpc_port=port,
        OCR_MODEL_GRPC_HOST="127.0.0.2",
        OCR_MODEL_MAX_CONNECTION_AGE_S="1",
    )
    started: list[ModelServer] = [first]
    try:
        gateway = start_gateway(
            tmp_path,
            first,
            OCR_GATEWAY_MODEL_ADDRESS=dns.target(NAME, port),
            OCR_GATEWAY_LB_POLICY="round_robin",
            GRPC_DNS_RESOLVER="ares",  # the resolver that takes a DNS server in the target
        )
        try:
            with httpx.Client(timeout=30) as client:

                def upload() -> None:
                    response = client.post(
                        f"{gateway.url}/gateway/ocr", files={"image_file": ("l.png", LINE)}
                    )
                    assert response.status_code == 200, response.text

                upload()
                assert answered(first) >= 1
                second = start_model_server(
                    tmp_path,
                    grpc_port=port,
                    OCR_MODEL_GRPC_HOST="127.0.0.3",
                    OCR_MODEL_MAX_CONNECTION_AGE_S="1",
                )
                started.append(second)
                dns.set(NAME, "127.0.0.2", "127.0.0.3")
                # gRPC waits at least 30 s between two resolutions of a name; bounded polling.
                deadline = time.monotonic() + 90
                while answered(second) == 0 and time.monotonic() < deadline:
                    upload()
                    time.sleep(0.2)
                assert answered(second) > 0, "the gateway never sent to the second model server"
                # Both stay in use: round robin over the two addresses.
                before = answered(first), answered(second)
                for _ in range(10):
                    upload()
                assert answered(first) > before[0]
                assert answered(second) > before[1]
        finally:
            gateway.service.stop()
    finally:
        for model in started:
            model.service.stop()
