"""Worker processes: a page that overstays its deadline or its memory loses its worker, never
the pool. Real Tesseract in real worker processes; the hostile pages are made at test time.

Each test builds a one-worker pool the way the server does (`create_pool` from settings) and
shows two things: the bad page gets its error within its deadline plus a second, and the next
page is read at once by a fresh worker.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
from PIL import Image

from model.assembly import create_model, create_pool
from model.engine import (
    EngineMemoryError,
    EngineMemoryShortError,
    EnginePool,
    EngineTimeoutError,
    EngineWorkerLostError,
    OcrOptions,
    ProcessWorkers,
)
from model.engine.workers import WORKER_NICENESS
from model.settings import ModelSettings
from tests.support import hostile
from tests.support.images import line_png

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

NEXT = "Next page please"


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def workers_of(pool: EnginePool) -> ProcessWorkers:
    assert isinstance(pool.runner, ProcessWorkers)
    return pool.runner


MakePool = Callable[..., EnginePool]


@pytest.fixture
def make_pool() -> Iterator[MakePool]:
    made: list[EnginePool] = []

    def make(**settings: float) -> EnginePool:
        pool = create_pool(ModelSettings(workers=1, **settings))  # type: ignore[arg-type]
        made.append(pool)
        pool.warm()
        return pool

    yield make
    for pool in made:
        pool.close(wait=True)


async def next_page_is_read_at_once(pool: EnginePool) -> None:
    started = time.monotonic()
    result = await pool.recognize(line_png(NEXT), OcrOptions(psm=7), 10.0)
    assert result.text.strip() == NEXT
    # It waited at most for a fresh worker to start (~0.3 s), not for the bad page.
    assert result.timings.queue_s < 1.5
    assert time.monotonic() - started < 2.0


def test_the_default_workers_are_processes_of_their_own(make_pool: MakePool) -> None:
    pool = make_pool()
    pids = workers_of(pool).pids
    assert len(pids) == 1
    assert pids[0] != os.getpid()
    assert psutil.Process(pids[0]).is_running()


def test_workers_run_behind_the_serving_process(make_pool: MakePool) -> None:
    """Lower CPU priority: the serving process answers refusals and probes while they read."""
    pool = make_pool()
    [pid] = workers_of(pool).pids
    assert psutil.Process(pid).nice() == os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS


def test_layout_analysis_past_the_deadline_loses_its_worker(make_pool: MakePool) -> None:
    # Fine stripes: no text, and layout analysis (which Tesseract cannot stop) takes ~1.5 s per
    # megapixel, unseen by the layout estimate; 9 MP held a worker thread 20 s past 2 s.
    # A fixed, low layout rate lets the page start, as a miscalibrated estimate would.
    pool = make_pool(layout_s_per_megapixel=0.01)
    workers = workers_of(pool)
    [before] = workers.pids
    page = png(hostile.stripes_page((3000, 3000)))
    deadline_s = 2.0

    async def scenario() -> float:
        started = time.monotonic()
        with pytest.raises(EngineTimeoutError, match="worker was stopped"):
            await pool.recognize(page, OcrOptions(), deadline_s)
        held_s = time.monotonic() - started
        await next_page_is_read_at_once(pool)
        return held_s

    assert asyncio.run(scenario()) < deadline_s + 1.0
    assert not psutil.pid_exists(before) or psutil.Process(before).status() == "zombie"
    assert workers.stopped_at_deadline == 1
    assert workers.restarts == 1
    assert workers.pids != [before]


def test_a_page_over_the_worker_memory_limit_is_refused_and_the_worker_replaced(
    make_pool: MakePool,
) -> None:
    # A dense 9 MP colour page: Tesseract takes ~18 bytes a pixel on top of the image.
    pool = make_pool(worker_memory_bytes=150 * 2**20)
    workers = workers_of(pool)
    page = hostile.dense_page((3000, 3000)).convert("RGB")

    async def scenario() -> None:
        with pytest.raises(EngineMemoryError, match="memory limit of 150 MiB"):
            await pool.recognize(png(page), OcrOptions(), 60.0)
        await next_page_is_read_at_once(pool)

    asyncio.run(scenario())
    assert workers.stopped_for_memory == 1
    assert workers.restarts == 1


def idle_pod(workers: ProcessWorkers) -> int:
    """Resident memory of this (the serving) process and the workers, none reading a page."""
    return int(psutil.Process().memory_info().rss) + sum(
        int(psutil.Process(pid).memory_info().rss) for pid in workers.pids
    )


def test_a_page_too_big_for_the_whole_model_is_refused_as_too_big(make_pool: MakePool) -> None:
    """The serving process and its worker together over the container's limit, with nothing
    else going on: the page would never fit, so it is refused as too big (not "retry")."""
    pool = make_pool()
    workers = workers_of(pool)
    page = png(hostile.dense_page((3000, 3000)).convert("RGB"))  # ~+160 MiB in the worker
    # As the container's limit would be, with room for small pages but not this one.
    workers.pod_memory_limit_bytes = idle_pod(workers) + 80 * 2**20

    async def scenario() -> None:
        with pytest.raises(EngineMemoryError, match="more memory than the model has"):
            await pool.recognize(page, OcrOptions(), 60.0)
        await next_page_is_read_at_once(pool)

    asyncio.run(scenario())
    assert workers.stopped_for_pod_memory == 1
    assert workers.stopped_for_memory == 0
    assert workers.restarts == 1


def test_the_busy_worker_is_stopped_when_the_serving_process_swells(make_pool: MakePool) -> None:
    """The page fits beside an idle model, but the serving process swells meanwhile (a flood
    of uploads): the page's worker is stopped and the page refused for now, with a retry hint,
    so that the container is not killed; the next page is read by a fresh worker."""
    pool = make_pool()
    workers = workers_of(pool)
    page = png(hostile.dense_page((3000, 3000)).convert("RGB"))  # ~+160 MiB in the worker
    workers.pod_memory_limit_bytes = idle_pod(workers) + 250 * 2**20

    async def scenario() -> None:
        reading = asyncio.create_task(pool.recognize(page, OcrOptions(), 60.0))
        await asyncio.sleep(0)  # submitted
        uploads = b"u" * (200 * 2**20)  # written, so resident: what a flood of uploads holds
        with pytest.raises(EngineMemoryShortError, match="ran short of memory") as short:
            await reading
        assert not isinstance(short.value, EngineMemoryError)  # the page is not "too big"
        del uploads
        await next_page_is_read_at_once(pool)

    asyncio.run(scenario())
    assert workers.stopped_for_pod_memory == 1
    assert workers.restarts == 1


def test_a_worker_killed_mid_page_fails_that_page_only(make_pool: MakePool) -> None:
    pool = make_pool(layout_s_per_megapixel=0.01)
    workers = workers_of(pool)
    [pid] = workers.pids
    page = png(hostile.stripes_page((2000, 2000)))

    async def scenario() -> None:
        reading = asyncio.create_task(pool.recognize(page, OcrOptions(), 30.0))
        # Kill it once it is busy on the page (its CPU time grows), not before.
        process = psutil.Process(pid)
        start_cpu = process.cpu_times().user
        for _ in range(200):
            if process.cpu_times().user > start_cpu + 0.2:
                break
            await asyncio.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(EngineWorkerLostError, match="restarted"):
            await reading
        await next_page_is_read_at_once(pool)

    asyncio.run(scenario())


def test_a_worker_that_died_while_idle_is_replaced_before_the_next_page(
    make_pool: MakePool,
) -> None:
    pool = make_pool()
    [pid] = workers_of(pool).pids
    os.kill(pid, signal.SIGKILL)
    psutil.Process(pid).wait(5)

    async def scenario() -> str:
        result = await pool.recognize(line_png(NEXT), OcrOptions(psm=7), 10.0)
        return result.text.strip()

    assert asyncio.run(scenario()) == NEXT


def test_a_worker_process_that_cannot_start_fails_the_warm_up() -> None:
    pool = create_pool(ModelSettings(workers=1, engine="pytesseract"))
    # Not a startable engine: the worker reports it and the pool refuses to come up.
    workers = workers_of(pool)
    workers.spec = type(workers.spec)(
        backend="tesserocr", tessdata_dir=workers.spec.tessdata_dir / "missing", max_pixels=1
    )
    with pytest.raises(RuntimeError, match="failed to start"):
        pool.warm(timeout_s=60)
    pool.close(wait=True)


def test_worker_stops_are_counted_by_reason_in_the_model_metrics() -> None:
    model = create_model(ModelSettings(workers=1))  # not loaded: no process is started
    pool = model._pool
    workers_of(pool).stopped("deadline")
    workers_of(pool).stopped("memory")
    workers_of(pool).stopped("deadline")
    registry = model.metrics.registry
    counted = {
        reason: registry.get_sample_value("ocr_engine_worker_stops_total", {"reason": reason})
        for reason in ("deadline", "memory")
    }
    assert counted == {"deadline": 2.0, "memory": 1.0}
    assert workers_of(pool).stopped_at_deadline == 2
