"""Run the engine on a pool of worker threads so OCR never blocks the event loop.

Tesseract releases the GIL while it recognises, so threads use every core; one thread per
available CPU (cgroup quota and affinity aware) keeps each core busy without oversubscribing.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from .engine import OcrEngine, PageRead
from .types import EngineBusyError, EngineTimeoutError, OcrOptions, OcrResult


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: affinity, capped by a cgroup v2 or v1 CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_quota(root: Path) -> float | None:
    try:
        fields = (root / "cpu.max").read_text().split()
        if len(fields) == 2 and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


class EnginePool:
    """A fixed set of worker threads, each with its own warmed-up Tesseract state.

    At most `workers + max_queue` requests are inside the pool; one more is refused at once with
    EngineBusyError instead of piling up. Each request has a time budget: it expires while
    queued, or Tesseract stops at it; a cancelled caller's queued work is dropped.
    """

    def __init__(
        self, engine: OcrEngine, workers: int, warm_options: OcrOptions, max_queue: int = 8
    ) -> None:
        self.engine = engine
        self.workers = workers
        self.capacity = workers + max_queue
        self._warm_options = warm_options
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr-engine")
        self._lock = threading.Lock()
        self._pending = 0

    def warm(self, timeout_s: float = 120.0) -> None:
        """Start every worker and load the default model in each (blocks until done)."""
        # The barrier holds each task until all have started, so each lands on its own thread.
        barrier = threading.Barrier(self.workers)

        def warm_one() -> None:
            barrier.wait(timeout_s)
            self.engine.backend.warm(self._warm_options)

        for future in [self._executor.submit(warm_one) for _ in range(self.workers)]:
            future.result(timeout_s)

    async def recognize(
        self, data: bytes, options: OcrOptions, timeout_s: float | None = None
    ) -> OcrResult:
        """OCR `data` on a worker thread within `timeout_s`; see `read`."""
        return (await self.read(data, options, timeout_s)).result

    async def read(
        self,
        data: bytes,
        options: OcrOptions,
        timeout_s: float | None = None,
        *,
        keep_image: bool = False,
    ) -> PageRead:
        """OCR `data` on a worker thread within `timeout_s` (timings include the queue wait),
        keeping the upright page image that was read when `keep_image`.

        The caller's context (its trace span) goes with the work, so stage spans nest under it.
        Raises EngineBusyError when the pool is full and EngineTimeoutError when time runs out.
        """
        with self._lock:
            if self._pending >= self.capacity:
                raise EngineBusyError(
                    f"all {self.workers} OCR workers are busy and {self.capacity - self.workers} "
                    "requests are queued; retry shortly"
                )
            self._pending += 1
        submitted = time.perf_counter()
        deadline = None if timeout_s is None else submitted + timeout_s
        context = contextvars.copy_context()

        def work() -> PageRead:
            started = time.perf_counter()
            remaining = None if deadline is None else deadline - started
            if remaining is not None and remaining <= 0:
                raise EngineTimeoutError("the request's time ran out while it waited for a worker")
            page: PageRead = context.run(
                self.engine.read, data, options, remaining, keep_image=keep_image
            )
            result = page.result
            timings = replace(result.timings, queue_s=started - submitted)
            return replace(page, result=replace(result, timings=timings))

        future = self._executor.submit(work)
        # Counted down when the work ends or is dropped, not when the caller stops waiting.
        future.add_done_callback(self._release)
        # Cancelling the awaiting task cancels the future: queued work never runs.
        return await asyncio.wrap_future(future)

    def _release(self, _: object) -> None:
        with self._lock:
            self._pending -= 1

    def close(self, wait: bool = True) -> None:
        """Stop accepting work; queued work still finishes. With `wait`, block until it has."""
        self._executor.shutdown(wait=wait, cancel_futures=False)
