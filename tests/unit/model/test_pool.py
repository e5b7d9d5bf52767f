"""EnginePool's hard cap, deadlines and cancellation, with a fake backend the test controls.

The fake backend blocks each recognition on an event the test sets, records the options and
the time budget it was handed and the thread it ran on, and returns canned text. Requests are
told apart by their page-segmentation mode (`psm`), which the backend records. Waits poll
events and counters with bounds; nothing sleeps to let time pass "probably enough". The
admission by deadline and bytes has its own tests (test_admission.py); here the pool's clock
stands still and its estimate says a request costs a millisecond, so only the count cap
(`max_queue`) refuses.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from model.engine import (
    AdmissionRefusedError,
    CostEstimate,
    EngineBusyError,
    EnginePool,
    EngineTimeoutError,
    OcrEngine,
    OcrOptions,
    OcrResult,
    container_memory_limit,
)
from model.engine.types import Block
from tests.support.fake_backend import PAGE, TEXT, WAIT_S, FakeBackend
from tests.support.memory import frames_in_cycles

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]


@dataclass
class Pools:
    """Builds pools on a fresh fake backend and closes them (released) at the end."""

    backend: FakeBackend = field(default_factory=FakeBackend)
    made: list[EnginePool] = field(default_factory=list)

    def __call__(self, workers: int, max_queue: int) -> EnginePool:
        engine = OcrEngine(self.backend, max_pixels=10_000_000, max_frames=4)
        pool = EnginePool(
            engine,
            workers,
            OcrOptions(psm=11),
            max_queue=max_queue,
            clock=lambda: 0.0,
            estimate=CostEstimate(per_request_s=0.001, per_megapixel_s=0.0),
        )
        self.made.append(pool)
        return pool


@pytest.fixture
def pools() -> Iterator[Pools]:
    made = Pools()
    yield made
    made.backend.release.set()  # a failed test may have left workers blocked
    for pool in made.made:
        pool.close(wait=True)


def ocr(pool: EnginePool, psm: int, timeout_s: float | None = None) -> asyncio.Task[OcrResult]:
    """Start one recognition, tagged by `psm`, as a task of the running loop."""
    return asyncio.create_task(pool.recognize(PAGE, OcrOptions(psm=psm), timeout_s))


def refused_at_once(coroutine: Coroutine[Any, Any, OcrResult]) -> None:
    """The coroutine raises EngineBusyError in its first step: it never waits for anything;
    the pool is full (the count cap), whatever the deadlines."""
    with pytest.raises(EngineBusyError, match="busy") as refused:
        coroutine.send(None)
    assert isinstance(refused.value, AdmissionRefusedError)
    assert refused.value.reason == "queue"
    assert refused.value.retry_after_s > 0


async def until(check: Callable[[], bool], what: str) -> None:
    """Let the event loop run until `check()` holds; fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


def test_a_full_pool_refuses_one_more_at_once(pools: Pools) -> None:
    pool = pools(workers=2, max_queue=2)
    backend = pools.backend

    async def scenario() -> None:
        admitted = [ocr(pool, psm) for psm in (1, 2, 3, 4)]
        await backend.entered(2)  # both workers busy; the other two wait in the queue
        refused_at_once(pool.recognize(PAGE, OcrOptions(psm=5)))
        assert sorted(backend.seen()) == [1, 2]
        backend.release.set()
        results = await asyncio.gather(*admitted)
        assert [r.text for r in results] == [TEXT] * 4
        assert sorted(backend.seen()) == [1, 2, 3, 4]
        # Every slot is free again.
        again = await asyncio.gather(*(ocr(pool, psm) for psm in (6, 7, 8, 9)))
        assert len(again) == 4

    asyncio.run(scenario())
    assert 5 not in pools.backend.seen()


def test_a_request_expires_while_queued_without_reaching_the_backend(pools: Pools) -> None:
    # Admitted because the estimate says the running request ends in a millisecond: it is
    # wrong, and the queued request still expires when a worker takes it.
    pool = pools(workers=1, max_queue=4)
    backend = pools.backend
    budget_s = 0.02

    async def scenario() -> None:
        running = ocr(pool, 1)
        await backend.entered(1)
        queued = ocr(pool, 2, timeout_s=budget_s)
        await asyncio.sleep(0)  # let it submit its work (and start its clock)
        submitted = time.perf_counter()  # no earlier than the pool's own start
        # Hold the only worker until the queued request's budget has certainly run out.
        await until(lambda: time.perf_counter() > submitted + budget_s, "the budget to pass")
        backend.release.set()
        with pytest.raises(EngineTimeoutError, match="waited for a worker"):
            await queued
        assert (await running).text == TEXT

    asyncio.run(scenario())
    assert backend.seen() == [1]


def test_a_cancelled_callers_queued_work_is_dropped_and_its_slot_freed(pools: Pools) -> None:
    pool = pools(workers=1, max_queue=1)
    backend = pools.backend

    async def scenario() -> None:
        running = ocr(pool, 1)
        await backend.entered(1)
        abandoned = ocr(pool, 2)
        await asyncio.sleep(0)  # let it submit its work to the queue
        refused_at_once(pool.recognize(PAGE, OcrOptions(psm=3)))  # the pool is full
        abandoned.cancel()
        with pytest.raises(asyncio.CancelledError):
            await abandoned
        # Its slot is free before the worker is: one more fits, and only one.
        replacement = ocr(pool, 4)
        await asyncio.sleep(0)
        refused_at_once(pool.recognize(PAGE, OcrOptions(psm=5)))
        backend.release.set()
        assert (await running).text == TEXT
        assert (await replacement).text == TEXT

    asyncio.run(scenario())
    assert backend.seen() == [1, 4]


def test_the_backend_gets_the_budget_minus_the_queue_wait(pools: Pools) -> None:
    pool = pools(workers=1, max_queue=4)
    backend = pools.backend
    budget_s, held_s = 5.0, 0.05

    async def scenario() -> OcrResult:
        running = ocr(pool, 1)
        await backend.entered(1)
        queued = ocr(pool, 2, timeout_s=budget_s)
        await asyncio.sleep(0)  # let it submit its work (and start its clock)
        submitted = time.perf_counter()  # no earlier than the pool's own start
        await until(lambda: time.perf_counter() > submitted + held_s, "a measurable queue wait")
        backend.release.set()
        await running
        return await queued

    result = asyncio.run(scenario())
    first, second = backend.calls
    assert (first.psm, first.timeout_s) == (1, None)  # no budget, no limit
    assert second.psm == 2
    assert second.timeout_s is not None
    assert result.timings.queue_s >= held_s
    assert 0 < second.timeout_s <= budget_s - held_s
    # Decoding and preparing the image spend the budget too: the backend gets what is left.
    timings = result.timings
    spent_s = timings.queue_s + timings.decode_s + timings.preprocess_s
    assert second.timeout_s <= budget_s - spent_s
    assert second.timeout_s == pytest.approx(budget_s - spent_s, abs=1e-3)


def test_an_unqueued_request_gets_nearly_its_whole_budget(pools: Pools) -> None:
    pool = pools(workers=1, max_queue=0)
    pools.backend.release.set()
    asyncio.run(pool.recognize(PAGE, OcrOptions(psm=1), 5.0))
    (call,) = pools.backend.calls
    assert call.timeout_s is not None
    assert 4.0 < call.timeout_s <= 5.0


def test_warm_loads_the_default_options_on_every_worker_thread(pools: Pools) -> None:
    pool = pools(workers=3, max_queue=0)
    pool.warm(timeout_s=WAIT_S)
    threads = [thread for thread, _ in pools.backend.warmed]
    assert len(threads) == 3
    assert len(set(threads)) == 3
    assert all(name.startswith("ocr-engine") for name in threads)
    assert {options for _, options in pools.backend.warmed} == {OcrOptions(psm=11)}
    # Recognitions run on those same, warmed threads.
    pools.backend.release.set()

    async def scenario() -> None:
        await asyncio.gather(*(ocr(pool, psm) for psm in (1, 2, 3)))

    asyncio.run(scenario())
    assert {call.thread for call in pools.backend.calls} <= set(threads)


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"memory.max": "1073741824\n"}, 1024 * 1024 * 1024),  # cgroup v2, 1Gi
        ({"memory.max": "max\n"}, None),
        ({"memory/memory.limit_in_bytes": "805306368\n"}, 768 * 1024 * 1024),  # v1
        ({"memory/memory.limit_in_bytes": "9223372036854771712\n"}, None),  # v1 "unlimited"
        ({}, None),  # no cgroup files: not in a container
    ],
    ids=["v2", "v2-max", "v1", "v1-unlimited", "none"],
)
def test_the_containers_memory_limit_is_read_from_its_cgroup(
    tmp_path: Path, files: dict[str, str], limit: int | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert container_memory_limit(tmp_path) == limit


@dataclass
class FailingBackend(FakeBackend):
    """Fails every recognition, as a worker stopped at its deadline or over its memory does."""

    def recognize(
        self, image: Image.Image, options: OcrOptions, timeout_s: float | None = None
    ) -> tuple[str, tuple[Block, ...]]:
        raise EngineTimeoutError("the page was still being read at its deadline")


def test_a_failed_page_leaves_its_upload_to_no_garbage_collector() -> None:
    """The failure's traceback holds the frame that awaited it; were that frame to keep the
    future keeping the failure, the pair would hold the upload in a reference cycle until the
    cyclic collector ran (pages refused by the hundred once swelled the model by GiBs)."""
    pools = Pools(backend=FailingBackend())
    pool = pools(workers=1, max_queue=4)
    upload = bytes(PAGE)  # an object of this test's own, to be found by identity

    async def scenario() -> None:
        for _ in range(3):
            with pytest.raises(EngineTimeoutError):
                await pool.recognize(upload, OcrOptions(psm=6), 5.0)

    gc.collect()
    gc.disable()
    try:
        asyncio.run(scenario())
        assert frames_in_cycles(lambda value: value is upload) == []
    finally:
        gc.enable()
        pool.close(wait=True)
