"""The load generator: `concurrency` clients in a closed loop, each waiting for its answer.

`run_level` drives the gateway over HTTP; `run_grpc_level` drives the model server directly with
the gateway's own request builder, which shows what the gRPC hop and the model server cost
without the HTTP front.

One `aiohttp.ClientSession` with a connection per client uploads the same prebuilt multipart body
(so the client spends its CPU on sending, not on encoding). aiohttp, not httpx: the load
generator shares the machine's cores with what it measures, and aiohttp costs about a third of
httpx's CPU per request (0.5 vs 1.6 ms on a one-line image). A level sends `count` requests; if
`deadline_s` passes first, the requests still in flight are cancelled and counted apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import grpc
import grpc.aio

from gateway.codec import build_infer_request
from gateway.protocol import pb_grpc

from .workloads import Workload

T = TypeVar("T")

MODEL_NAME = "ocr-model"
# Uploads of the benchmark's largest image fit well inside these.
_GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.max_receive_message_length", 64 << 20),
]


@dataclass(frozen=True)
class Upload:
    """A multipart/form-data body with one `image_file` part, built once."""

    body: bytes
    content_type: str

    @classmethod
    def of(cls, workload: Workload) -> Upload:
        boundary = uuid.uuid4().hex
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="image_file"; filename="{workload.filename}"\r\n'
            f"Content-Type: {workload.content_type}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        return cls(head + workload.data + tail, f"multipart/form-data; boundary={boundary}")


@dataclass
class LoadOutcome:
    """What the clients saw in one level."""

    sent: int = 0
    ok: int = 0
    cancelled: int = 0
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    first_body: str = ""


async def _closed_loop(
    send: Callable[[], Awaitable[tuple[str, str | None]]],
    concurrency: int,
    count: int,
    deadline_s: float,
) -> LoadOutcome:
    """`concurrency` workers call `send` until `count` calls are made; `send` answers the
    status and, on success, the answer's text (kept once, for the report)."""
    outcome = LoadOutcome()
    in_flight = 0
    last_ok = started = time.perf_counter()

    async def worker() -> None:
        nonlocal in_flight, last_ok
        while outcome.sent < count:
            outcome.sent += 1
            in_flight += 1
            sent_at = time.perf_counter()
            try:
                status, body = await send()
            finally:
                in_flight -= 1
            done_at = time.perf_counter()
            outcome.statuses[status] += 1
            if body is not None:
                outcome.ok += 1
                outcome.latencies_s.append(done_at - sent_at)
                last_ok = done_at
                if not outcome.first_body:
                    outcome.first_body = body

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    _, pending = await asyncio.wait(tasks, timeout=deadline_s)
    outcome.cancelled = in_flight if pending else 0
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    outcome.seconds = last_ok - started
    return outcome


async def _level(
    url: str, upload: Upload, concurrency: int, count: int, deadline_s: float
) -> LoadOutcome:
    headers = {"content-type": upload.content_type}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=deadline_s + 5)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

        async def send() -> tuple[str, str | None]:
            try:
                async with client.post(url, data=upload.body, headers=headers) as response:
                    body = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                return type(exc).__name__, None
            ok = response.status == 200
            return str(response.status), body.decode("utf-8", "replace") if ok else None

        return await _closed_loop(send, concurrency, count, deadline_s)


async def _grpc_level(
    target: str, image: bytes, concurrency: int, count: int, deadline_s: float
) -> LoadOutcome:
    request = build_infer_request(image, model_name=MODEL_NAME, request_id="bench", lang="eng")
    async with grpc.aio.insecure_channel(target, options=_GRPC_OPTIONS) as channel:
        model_infer = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer

        async def send() -> tuple[str, str | None]:
            try:
                response = await model_infer(request, timeout=deadline_s + 5)
            except grpc.aio.AioRpcError as err:
                return err.code().name, None
            return "OK", response.model_name

        return await _closed_loop(send, concurrency, count, deadline_s)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on uvloop when it is installed (a lighter client), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def run_grpc_level(
    target: str, image: bytes, concurrency: int, count: int, deadline_s: float
) -> LoadOutcome:
    """Send `count` ModelInfer calls straight to the model server at `target` (host:port)."""
    return _run(_grpc_level(target, image, concurrency, count, deadline_s))


def run_level(
    url: str, upload: Upload, concurrency: int, count: int, deadline_s: float
) -> LoadOutcome:
    """Send `count` uploads with `concurrency` clients; stop at `deadline_s` seconds."""
    return _run(_level(url, upload, concurrency, count, deadline_s))
