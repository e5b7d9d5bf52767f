"""The hardening findings against real gateway processes (and a real model where it matters).

Every hostile client is made here, at test time, with raw sockets where httpx would be too
polite: uploads that declare a size and stop sending, headers followed by nothing, bursts with
made-up X-Forwarded-For headers, and two tenants uploading the same page.
"""

from __future__ import annotations

import os
import re
import secrets
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Gateway, start_gateway, start_model_server
from tests.support.images import line_png
from tests.support.processes import (
    free_port,
    http_ok,
    python_module,
    settings_refusal,
    start,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

MIB = 1024 * 1024
BOUNDARY = "hostile"
PART_HEAD = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="image_file"; filename="page.png"\r\n'
    "Content-Type: image/png\r\n\r\n"
).encode()
#: Seconds a client gets to send its body, in the gateway these tests start.
BODY_TIMEOUT_S = 3.0


def start_lone_gateway(log_dir: Path, **env: str) -> Gateway:
    """`python -m gateway` with no model behind it (its address a closed port)."""
    port = free_port()
    service = start(
        python_module("gateway"),
        {
            "OCR_GATEWAY_PORT": str(port),
            "OCR_GATEWAY_HOST": "127.0.0.1",
            "OCR_GATEWAY_MODEL_ADDRESS": "127.0.0.1:1",
            **env,
        },
        log_dir / f"gateway-{port}.log",
    )
    gateway = Gateway(service, port)
    try:
        wait_until(lambda: not service.alive() or http_ok(f"{gateway.url}/healthz"), 60, "gateway")
    except TimeoutError:
        service.stop()
        raise
    if not service.alive():
        service.stop()
        raise RuntimeError(f"gateway exited at start:\n{service.output()}")
    return gateway


def open_upload(port: int, declared: int, send: int) -> socket.socket:
    """A connection that declares a ``declared``-byte multipart upload and sends ``send``
    bytes of it (0: the headers alone), then nothing more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        "POST /gateway/ocr HTTP/1.1\r\n"
        "Host: gateway.test\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    body = (PART_HEAD + b"\0" * send)[:send]
    sock.sendall(head + body)
    return sock


def read_response(sock: socket.socket, timeout_s: float) -> tuple[int, dict[str, str], str]:
    """Status, headers and body of the answer on ``sock`` (the server closes after it)."""
    sock.settimeout(timeout_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        if b"\r\n\r\n" not in data:
            raise
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    return int(status_line.split()[1]), headers, body.decode(errors="replace")


def answered(sock: socket.socket) -> bool:
    """Whether the server has written (or closed) on ``sock`` yet."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def gauge(gateway: Gateway, name: str) -> float:
    text = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} not exposed")


def temp_files_open(pid: int, directory: Path) -> int:
    """Files process ``pid`` holds open in ``directory`` (spooled uploads are unlinked)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(directory)):
                count += 1
        except OSError:
            continue
    return count


@pytest.fixture(scope="module")
def spool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gateway's TMPDIR: where the form parser spools parts over 1 MiB."""
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, spool_dir: Path) -> Iterator[Gateway]:
    """A gateway with the default upload limits and in-flight cap, a short body timeout."""
    gateway = start_lone_gateway(
        tmp_path_factory.mktemp("guarded"),
        OCR_GATEWAY_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        TMPDIR=str(spool_dir),
    )
    yield gateway
    gateway.service.stop()


def test_two_dozen_large_uploads_are_not_all_held_at_once(guarded: Gateway) -> None:
    """24 clients each announce a 19 MiB upload: with the default cap (4 x 20 MiB) four are
    received, the other twenty are refused at once instead of taking the gateway to a GiB."""
    sockets = [open_upload(guarded.port, 19 * MIB, 64 * 1024) for _ in range(24)]
    try:
        time.sleep(0.5)
        assert gauge(guarded, "ocr_gateway_upload_bytes_in_flight") == 4 * 19 * MIB
        busy = [sock for sock in sockets if answered(sock)]
        assert len(busy) == 20
        for sock in busy:
            status, headers, body = read_response(sock, 5)
            assert status == 503
            assert '"code":"gateway_busy"' in body
            assert headers["retry-after"] == "1"
            assert headers["connection"] == "close"
    finally:
        for sock in sockets:
            sock.close()
    # The clients are gone: their bytes are released and uploads are admitted again.
    wait_until(lambda: gauge(guarded, "ocr_gateway_upload_bytes_in_flight") == 0, 10, "release")
    response = httpx.post(
        f"{guarded.url}/gateway/ocr",
        files={"image_file": ("a.png", b"not an image" * 1000)},
        timeout=10,
    )
    assert response.status_code == 415


def test_headers_then_nothing_is_cut_off(guarded: Gateway) -> None:
    started = time.monotonic()
    sock = open_upload(guarded.port, MIB, 0)
    status, headers, body = read_response(sock, BODY_TIMEOUT_S + 5)
    took = time.monotonic() - started
    assert status == 408
    assert '"code":"request_timeout"' in body
    assert headers["connection"] == "close"
    assert BODY_TIMEOUT_S <= took < BODY_TIMEOUT_S + 2


def test_a_trickle_does_not_move_the_deadline(guarded: Gateway) -> None:
    started = time.monotonic()
    sock = open_upload(guarded.port, MIB, len(PART_HEAD))
    # A byte now and then, never enough to finish, until just before the deadline.
    while time.monotonic() - started < BODY_TIMEOUT_S - 0.5:
        assert not answered(sock)
        sock.sendall(b"\0")
        time.sleep(0.2)
    status, _, body = read_response(sock, 5)
    assert status == 408
    assert '"code":"request_timeout"' in body
    assert time.monotonic() - started < BODY_TIMEOUT_S + 2


def test_slow_clients_leave_no_temp_files(guarded: Gateway, spool_dir: Path) -> None:
    """20 clients send 1.5 MiB of a 3 MiB upload (spooled to disk past 1 MiB) and stop."""
    pid = guarded.service.process.pid
    assert temp_files_open(pid, spool_dir) == 0
    started = time.monotonic()
    sockets = [open_upload(guarded.port, 3 * MIB, 3 * MIB // 2) for _ in range(20)]
    try:
        # The test sees the spooled files while the clients stall...
        wait_until(lambda: temp_files_open(pid, spool_dir) == 20, BODY_TIMEOUT_S, "spooling")
        for sock in sockets:
            status, _, body = read_response(sock, BODY_TIMEOUT_S + 5)
            assert status == 408
            assert '"code":"request_timeout"' in body
        assert time.monotonic() - started < BODY_TIMEOUT_S + 3
    finally:
        for sock in sockets:
            sock.close()
    # ...and none once they are cut off: not open, not on disk.
    wait_until(lambda: temp_files_open(pid, spool_dir) == 0, 5, "temp files closed")
    assert os.listdir(spool_dir) == []
    assert gauge(guarded, "ocr_gateway_upload_bytes_in_flight") == 0


def test_no_redirect_is_built_from_the_host_header(guarded: Gateway) -> None:
    response = httpx.get(
        f"{guarded.url}/healthz/", headers={"Host": "evil.example"}, follow_redirects=False
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "location" not in response.headers


def test_the_docs_page_needs_no_other_origin(guarded: Gateway) -> None:
    page = httpx.get(f"{guarded.url}/docs", timeout=5)
    assert page.status_code == 200
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert not re.search(r"https?://", page.text)
    for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        asset = httpx.get(f"{guarded.url}{url}", timeout=5)
        assert asset.status_code == 200, url
        assert asset.content


def random_addresses(count: int) -> list[str]:
    """``count`` different documentation-range addresses, made up now."""
    addresses: set[str] = set()
    while len(addresses) < count:
        addresses.add(f"203.0.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}")
    return sorted(addresses)


@pytest.mark.parametrize(
    ("trusted", "limited"),
    [("", [422] * 5 + [429] * 3), ("127.0.0.1", [422] * 8)],
    ids=["no proxy trusted (default)", "loopback trusted as the proxy"],
)
def test_forwarded_for_buys_a_new_bucket_only_from_a_trusted_proxy(
    tmp_path: Path, trusted: str, limited: list[int]
) -> None:
    env = {"OCR_GATEWAY_RATE_LIMIT_PER_MINUTE": "5"}
    if trusted:
        env["OCR_GATEWAY_TRUSTED_PROXIES"] = trusted
    gateway = start_lone_gateway(tmp_path, **env)
    try:
        statuses = [
            httpx.post(
                f"{gateway.url}/gateway/ocr", headers={"X-Forwarded-For": address}, timeout=5
            ).status_code
            for address in random_addresses(8)
        ]
    finally:
        gateway.service.stop()
    assert statuses == limited


def cache_lookups(metrics_url: str) -> dict[str, float]:
    text = httpx.get(metrics_url, timeout=5).text
    return {
        sample.labels["result"]: float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ocr_result_cache_lookups_total"
    }


def test_one_tenant_never_gets_another_tenants_cached_result(tmp_path: Path) -> None:
    """Two API keys upload the same page: the second is a cache miss, a repeat is a hit."""
    first, second = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    model = start_model_server(tmp_path, OCR_MODEL_WORKERS="1", OCR_MODEL_RESULT_CACHE_ENTRIES="8")
    gateway: Gateway | None = None
    try:
        gateway = start_gateway(tmp_path, model, OCR_GATEWAY_API_KEYS=f"{first},{second}")
        page = line_png(f"Tenant page {secrets.randbelow(10**6)}")
        lookups = []
        for key in (first, second, first):
            response = httpx.post(
                f"{gateway.url}/gateway/ocr",
                files={"image_file": ("page.png", page, "image/png")},
                headers={"X-API-Key": key},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            lookups.append(cache_lookups(f"{model.rest_url}/metrics"))
        assert lookups[0] == {"miss": 1}
        assert lookups[1] == {"miss": 2}  # the other tenant's result is not served
        assert lookups[2] == {"miss": 2, "hit": 1}  # the same tenant's is
    finally:
        if gateway is not None:
            gateway.service.stop()
        model.service.stop()


def test_a_short_api_key_stops_the_gateway_at_start_with_one_line() -> None:
    short = secrets.token_hex(7)  # 14 characters
    line = settings_refusal(
        "gateway",
        {
            "OCR_GATEWAY_PORT": str(free_port()),
            "OCR_GATEWAY_API_KEYS": f"{secrets.token_urlsafe(24)},{short}",
        },
    )
    assert "OCR_GATEWAY_API_KEYS" in line
    assert "shorter than 16 characters" in line
    assert short not in line
