"""Admit OCR requests to the engine's workers so OCR never blocks the event loop.

One worker per available CPU (cgroup quota and affinity aware) keeps each core busy without
oversubscribing; the workers are processes the pool can stop at a deadline, or threads (see
`workers`). What is admitted is decided by deadline and bytes (see `admission`).
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from .admission import CURRENT_HOLD, Admission, CostEstimate, Ticket, megapixels_of
from .engine import OcrEngine, PageRead
from .types import EngineTimeoutError, OcrOptions, OcrResult
from .workers import Job, ThreadWorkers, Workers


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: affinity, capped by a cgroup v2 or v1 CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


#: A cgroup memory limit at or above this is no limit (cgroup v1 writes 2^63 rounded to pages).
_UNLIMITED_MEMORY = 1 << 60


def container_memory_limit(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory limit of this process's container: cgroup v2 `memory.max` or v1
    `memory.limit_in_bytes`; None without one."""
    for path in (cgroup_root / "memory.max", cgroup_root / "memory" / "memory.limit_in_bytes"):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < _UNLIMITED_MEMORY:
            return int(text)
        return None  # "max", or a v1 limit of "unlimited"
    return None


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


#: Requests the pool holds at most beyond its workers by default: a hard cap far above what the
#: deadline rule admits of real pages, against the overhead of a flood of tiny requests.
DEFAULT_MAX_QUEUE = 1024
#: Default bytes of input the pool holds at most (see `ModelSettings.max_queue_bytes`).
DEFAULT_MAX_QUEUE_BYTES = 24 * 1024 * 1024
#: Uploads up to this size are measured on the event loop (~25 us for a PNG's headers, ~0.4 ms
#: for a JPEG's scans at this size); larger ones on a thread, so the loop never waits on them.
_INLINE_PROBE_BYTES = 64 * 1024


class EnginePool:
    """Admission in front of a set of engine workers, each with its own warmed-up Tesseract.

    A request is admitted when it can finish within its time, given the work already in the
    pool (see `admission`); otherwise, or when the inputs held would pass `max_queue_bytes`, or
    `workers + max_queue` requests are inside already, it is refused at once with
    AdmissionRefusedError (an EngineBusyError carrying a retry hint). Each request has a time
    budget: it expires while queued, or Tesseract stops at it (and a worker process still busy
    just after it is stopped); a cancelled caller's queued work is dropped. `engine` answers in
    this process what needs no worker (installed languages, option checks, image headers);
    without `runner` the workers are threads running that same engine. `clock` (monotonic
    seconds) times the admission's work and `estimate` starts its cost estimate (a prior);
    tests pass ones they control.
    """

    def __init__(
        self,
        engine: OcrEngine,
        workers: int,
        warm_options: OcrOptions,
        max_queue: int = DEFAULT_MAX_QUEUE,
        *,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        runner: Workers | None = None,
        clock: Callable[[], float] = time.monotonic,
        estimate: CostEstimate | None = None,
    ) -> None:
        self.engine = engine
        self.runner = runner or ThreadWorkers(engine, workers, warm_options)
        self.workers = self.runner.count
        self._clock = clock
        self.admission = Admission(
            self.workers,
            max_bytes=max_queue_bytes,
            max_requests=self.workers + max_queue,
            clock=clock,
            estimate=estimate,
        )

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
        Raises EngineInputError for options or an image the engine refuses (from its headers),
        AdmissionRefusedError when the request should not wait, and EngineTimeoutError when
        time runs out.
        """
        options.validate(self.engine.languages)  # refused here, before it takes a place
        measured = self._clock()
        megapixels = await self._megapixels(data, options)
        if timeout_s is not None:
            timeout_s -= self._clock() - measured
        held = CURRENT_HOLD.get() is not None
        ticket = self.admission.admit(megapixels, len(data), timeout_s, held=held)
        submitted = time.monotonic()
        deadline = None if timeout_s is None else submitted + timeout_s
        job = Job(data, options, deadline, keep_image, submitted)
        try:
            future = self.runner.submit(job)
        except BaseException:
            self.admission.finish(ticket, learn=False)
            raise
        # Counted out when the work ends or is dropped, not when the caller stops waiting.
        future.add_done_callback(functools.partial(self._finished, ticket))
        # Cancelling the awaiting task cancels the future: queued work never runs.
        try:
            return await asyncio.wrap_future(future)
        finally:
            # A failed page's exception, which `future` keeps, has this frame in its traceback:
            # the pair would be a reference cycle holding `data` (and the caller's frames with
            # their copies of the upload) until the cyclic garbage collector ran.
            del future, job

    async def _megapixels(self, data: bytes, options: OcrOptions) -> float:
        limits = self.engine.limits
        if len(data) <= _INLINE_PROBE_BYTES:
            return megapixels_of(data, limits, page=options.page, dpi=options.dpi)
        return await asyncio.to_thread(
            megapixels_of, data, limits, page=options.page, dpi=options.dpi
        )

    def _finished(self, ticket: Ticket, future: Future[PageRead]) -> None:
        error = None if future.cancelled() else future.exception()
        self.admission.finish(
            ticket,
            learn=not future.cancelled() and error is None,
            stopped=isinstance(error, EngineTimeoutError),
        )

    def close(self, wait: bool = True) -> None:
        """Stop accepting work; queued work still finishes. With `wait`, block until it has."""
        self.runner.close(wait)
