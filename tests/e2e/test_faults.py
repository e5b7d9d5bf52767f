"""Faults, deadlines, backpressure and shutdown: nothing hangs, nothing is lost.

Each test starts its own model server and gateway processes on free loopback ports, so it can
kill, restart or stop one of them. Loops are bounded in count and time.
"""

from __future__ import annotations

import asyncio
import base64
import math
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Gateway, ModelServer, start_gateway, start_model_server
from tests.support.images import encode, line_png, render_lines
from tests.support.processes import http_ok, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LINE = line_png("Fault tolerant 42")
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]


def page_png(lines: int, seed: int = 7) -> bytes:
    """A page of random words: OCR takes roughly 20-40 ms per line here."""
    rnd = random.Random(seed)  # noqa: S311  # test data, not secrets
    text = [" ".join(rnd.choice(WORDS) for _ in range(9)) for _ in range(lines)]
    return encode(render_lines(text, width=1400, font_px=28))


async def upload(
    client: httpx.AsyncClient, url: str, data: bytes, timeout_s: float = 30
) -> tuple[int, float, httpx.Headers]:
    """POST one image; (status, seconds, headers). A refused connection counts as status 0."""
    started = time.monotonic()
    try:
        response = await client.post(
            f"{url}/gateway/ocr", files={"image_file": ("p.png", data)}, timeout=timeout_s
        )
    except httpx.TransportError:
        return 0, time.monotonic() - started, httpx.Headers()
    return response.status_code, time.monotonic() - started, response.headers


def gauge(url: str, name: str) -> float:
    """A gauge's value from a /metrics endpoint (0 when absent)."""
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return 0.0


def running_stack(tmp_path: Path, timeout_s: str) -> Iterator[tuple[ModelServer, Gateway]]:
    model = start_model_server(
        tmp_path, OCR_MODEL_MAX_QUEUE="64", OCR_MODEL_GRACE_PERIOD_S=timeout_s
    )
    gateway = start_gateway(tmp_path, model, OCR_GATEWAY_REQUEST_TIMEOUT_S=timeout_s)
    yield model, gateway
    gateway.service.stop()
    model.service.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[ModelServer, Gateway]]:
    """Model and gateway with a 5 s request deadline (faults must answer within it)."""
    yield from running_stack(tmp_path, "5")


@pytest.fixture
def draining_stack(tmp_path: Path) -> Iterator[tuple[ModelServer, Gateway]]:
    """A generous deadline: the shutdown tests are about draining, not speed, and 20 pages on
    a busy 2-core machine can take longer than 5 s."""
    yield from running_stack(tmp_path, "60")


def test_model_killed_under_load_then_restarted(
    stack: tuple[ModelServer, Gateway], tmp_path: Path
) -> None:
    model, gateway = stack
    deadline_s = 5.0
    results: list[tuple[int, float]] = []

    async def client_loop(client: httpx.AsyncClient, stop_at: float) -> None:
        while time.monotonic() < stop_at:
            status, took, _ = await upload(client, gateway.url, LINE, timeout_s=deadline_s + 5)
            results.append((status, took))

    async def load() -> None:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(limits=limits) as client:
            stop_at = time.monotonic() + 4.0
            clients = [asyncio.create_task(client_loop(client, stop_at)) for _ in range(16)]
            await asyncio.sleep(1.0)  # load is running; now the model dies mid-flight
            model.service.process.kill()
            await asyncio.gather(*clients)

    asyncio.run(load())
    statuses = {status for status, _ in results}
    assert statuses <= {200, 503}, statuses
    assert 200 in statuses
    assert 503 in statuses
    assert max(took for _, took in results) < deadline_s + 1
    assert not http_ok(f"{gateway.url}/readyz")

    # Same ports again: the gateway's channel reconnects by itself.
    restarted = start_model_server(tmp_path, model.http_port, model.grpc_port)
    try:
        ready_at = time.monotonic()

        def serves() -> bool:
            return asyncio.run(_one(gateway.url)) == 200

        wait_until(serves, 5, "200s after the restart", interval_s=0.2)
        assert time.monotonic() - ready_at < 5
        wait_until(lambda: http_ok(f"{gateway.url}/readyz"), 5, "gateway ready again")
    finally:
        restarted.service.stop()


async def _one(url: str) -> int:
    async with httpx.AsyncClient() as client:
        status, _, _ = await upload(client, url, LINE, timeout_s=5)
        return status


#: The slow page's OCR time, in gateway timeouts: it cannot finish within the deadline.
SLOW_FACTOR = 3.0
#: Shortest OCR time of the slow page, so the timeout (a third of it) dwarfs the HTTP and gRPC
#: overheads and the one-line request fits in it easily.
MIN_SLOW_S = 2.0
#: Tallest page: 1400 x 28 264 pixels stays below the model's 40 MP limit and Tesseract's 32 767.
MAX_LINES = 560


def sample(url: str, series: str) -> float:
    """One sample, e.g. `name{label="value"}`, from a /metrics endpoint (0 when absent)."""
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(f"{series} "):
            return float(line.split()[-1])
    return 0.0


def recognize_seconds(model: ModelServer, image: bytes) -> float:
    """Seconds the model's engine spends recognising `image` with no deadline (REST carries
    none), by its own stage metric; the defaults are what the gateway sends."""
    series = 'ocr_stage_duration_seconds_sum{stage="recognize"}'
    before = sample(model.rest_url, series)
    data = base64.b64encode(image).decode()
    tensor = {"name": "image", "datatype": "BYTES", "shape": [1], "data": [data]}
    response = httpx.post(
        f"{model.rest_url}/v2/models/{model.model_name}/infer",
        json={"inputs": [tensor]},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return sample(model.rest_url, series) - before


def slow_page(model: ModelServer) -> tuple[bytes, float]:
    """A page whose OCR takes at least MIN_SLOW_S on this machine, and that time."""
    lines, ocr_s = 120, 0.0
    for _ in range(4):  # bounded: the page grows by the measured shortfall
        page = page_png(lines)
        ocr_s = recognize_seconds(model, page)
        if ocr_s >= MIN_SLOW_S:
            return page, ocr_s
        if lines == MAX_LINES:
            break
        lines = min(MAX_LINES, math.ceil(lines * 1.25 * MIN_SLOW_S / max(ocr_s, 0.05)))
    raise AssertionError(f"a page of {lines} lines takes only {ocr_s:.2f}s to read here")


def test_deadline_stops_a_slow_image_and_frees_the_worker(tmp_path: Path) -> None:
    model = start_model_server(tmp_path, OCR_MODEL_WORKERS="1", OCR_MODEL_RESULT_CACHE_ENTRIES="0")
    gateway: Gateway | None = None
    try:
        # Measured on this machine, through the model itself: the page takes SLOW_FACTOR
        # timeouts to read, so the deadline must cut it short however fast the machine is.
        slow, ocr_s = slow_page(model)
        # Milliseconds, rounded down. Tesseract's uninterruptible layout pass takes about a
        # sixth of a page's time, so it ends before the deadline and Tesseract can stop there.
        timeout_s = math.floor(1000 * ocr_s / SLOW_FACTOR) / 1000
        assert ocr_s >= SLOW_FACTOR * timeout_s
        gateway = start_gateway(tmp_path, model, OCR_GATEWAY_REQUEST_TIMEOUT_S=str(timeout_s))
        url = gateway.url

        async def scenario() -> tuple[int, float, int, float]:
            async with httpx.AsyncClient() as client:
                slow_status, slow_took, _ = await upload(client, url, slow)
                good_status, good_took, _ = await upload(client, url, LINE)
                return slow_status, slow_took, good_status, good_took

        slow_status, slow_took, good_status, good_took = asyncio.run(scenario())
        assert slow_status == 504
        assert slow_took < timeout_s + 1.0
        # Tesseract stopped at the deadline (after its uninterruptible layout pass, a fraction
        # of the page's time), so the one worker serves the next request at once. Had it read
        # the page to its end, the next request would wait ocr_s - slow_took, about 2 timeouts.
        assert good_status == 200
        assert good_took < min(3.0, timeout_s, (ocr_s - slow_took) / 2)
    finally:
        if gateway is not None:
            gateway.service.stop()
        model.service.stop()


def test_overload_is_refused_at_once_with_retry_after(tmp_path: Path) -> None:
    model = start_model_server(tmp_path, OCR_MODEL_WORKERS="1", OCR_MODEL_MAX_QUEUE="1")
    gateway = start_gateway(tmp_path, model)
    try:
        page = page_png(30)

        async def burst() -> list[tuple[int, float, httpx.Headers]]:
            async with httpx.AsyncClient(limits=httpx.Limits(max_connections=16)) as client:
                return await asyncio.gather(*(upload(client, gateway.url, page) for _ in range(8)))

        results = asyncio.run(burst())
        statuses = sorted(status for status, _, _ in results)
        assert set(statuses) == {200, 429}, statuses
        assert statuses.count(200) >= 2  # one running, one queued
        for status, took, headers in results:
            if status == 429:
                # The model's hint: when the page ahead is expected to end (whole seconds).
                assert 1 <= int(headers["retry-after"]) <= 5
                assert took < 1.0
        assert asyncio.run(_one(gateway.url)) == 200  # capacity is back
    finally:
        gateway.service.stop()
        model.service.stop()


def _in_flight_burst(
    gateway: Gateway, count: int, ready: str, wait_for: str, stop: Callable[[], None]
) -> list[int]:
    """Send `count` uploads, wait until `wait_for` shows them in flight, then call `stop`."""
    page = page_png(12)

    async def run() -> list[int]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=count + 4)) as client:
            tasks = [asyncio.create_task(upload(client, gateway.url, page)) for _ in range(count)]
            deadline = time.monotonic() + 10
            # Polls another process's /metrics: there is no event to wait on.
            while gauge(ready, wait_for) < count and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            assert gauge(ready, wait_for) >= count
            stop()
            return [status for status, _, _ in await asyncio.gather(*tasks)]

    return asyncio.run(run())


def test_sigterm_on_the_gateway_drains_in_flight_requests(
    draining_stack: tuple[ModelServer, Gateway],
) -> None:
    _, gateway = draining_stack
    statuses = _in_flight_burst(
        gateway,
        20,
        gateway.url,
        "ocr_gateway_requests_in_flight",
        lambda: gateway.service.process.send_signal(signal.SIGTERM),
    )
    assert statuses == [200] * 20
    assert gateway.service.process.wait(30) == 0
    assert not http_ok(f"{gateway.url}/healthz")  # new requests are refused


def test_sigterm_on_the_model_finishes_in_flight_requests(
    draining_stack: tuple[ModelServer, Gateway],
) -> None:
    model, gateway = draining_stack
    statuses = _in_flight_burst(
        gateway,
        20,
        model.rest_url,
        "ocr_in_flight_requests",
        lambda: model.service.process.send_signal(signal.SIGTERM),
    )
    assert statuses == [200] * 20
    assert model.service.process.wait(30) == 0
    wait_until(lambda: not http_ok(f"{gateway.url}/readyz"), 5, "gateway reports not ready")
    assert asyncio.run(_one(gateway.url)) == 503
