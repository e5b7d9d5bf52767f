"""Admit OCR requests to the engine's workers so OCR never blocks the event loop.

One worker per available CPU (cgroup quota and affinity aware) keeps each core busy without
oversubscribing; the workers are processes the pool can stop at a deadline, or threads (see
`workers`).
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from pathlib import Path

from .engine import OcrEngine, PageRead
from .types import EngineBusyError, OcrOptions, OcrResult
from .workers import Job, ThreadWorkers, Workers


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
    """Admission in front of a set of engine workers, each with its own warmed-up Tesseract.

    At most `workers + max_queue` requests are inside the pool; one more is refused at once with
    EngineBusyError instead of piling up. Each request has a time budget: it expires while
    queued, or Tesseract stops at it (and a worker process still busy just after it is
    stopped); a cancelled caller's queued work is dropped. `engine` answers in this process
    what needs no worker (installed languages, option checks); without `runner` the workers
    are threads running that same engine.
    """

    def __init__(
        self,
        engine: OcrEngine,
        workers: int,
        warm_options: OcrOptions,
        max_queue: int = 8,
        *,
        runner: Workers | None = None,
    ) -> None:
        self.engine = engine
        self.runner = runner or ThreadWorkers(engine, workers, warm_options)
        self.workers = self.runner.count
        self.capacity = self.workers + max_queue
        self._lock = threading.Lock()
        self._pending = 0

    def warm(self, timeout_s: float = 120.0) -> None:
        """Start every worker and load the default model in each (blocks until done)."""
        self.runner.warm(timeout_s)

    async def recognize(
        self, data: bytes, options: OcrOptions, timeout_s: float | None = None
    ) -> OcrResult:
        """OCR `data` on a worker within `timeout_s`; see `read`."""
        return (await self.read(data, options, timeout_s)).result

    async def read(
        self,
        data: bytes,
        options: OcrOptions,
        timeout_s: float | None = None,
        *,
        keep_image: bool = False,
    ) -> PageRead:
        """OCR `data` on a worker within `timeout_s` (timings include the queue wait),
        keeping the upright page image that was read when `keep_image`.

        The caller's context (its trace span) goes with the work, so stage spans nest under it.
        Raises EngineBusyError when the pool is full and EngineTimeoutError when time runs out.
        """
        options.validate(self.engine.languages)  # refused here, before it takes a place
        with self._lock:
            if self._pending >= self.capacity:
                raise EngineBusyError(
                    f"all {self.workers} OCR workers are busy and {self.capacity - self.workers} "
                    "requests are queued; retry shortly"
                )
            self._pending += 1
        submitted = time.monotonic()
        deadline = None if timeout_s is None else submitted + timeout_s
        job = Job(data, options, deadline, keep_image, submitted)
        future = self.runner.submit(job)
        # Counted down when the work ends or is dropped, not when the caller stops waiting.
        future.add_done_callback(self._release)
        # Cancelling the awaiting task cancels the future: queued work never runs.
        return await asyncio.wrap_future(future)

    def _release(self, _: object) -> None:
        with self._lock:
            self._pending -= 1

    def close(self, wait: bool = True) -> None:
        """Stop accepting work; queued work still finishes. With `wait`, block until it has."""
        self.runner.close(wait)
