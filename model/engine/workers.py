"""Where the engine runs: worker processes the pool can stop at a deadline (default), or threads.

Tesseract stops recognition at a deadline, but nothing stops its layout analysis, a PDF
rasteriser or an image decoder once they run: a page of fine stripes held a worker thread
20 s past a 2 s deadline. A thread cannot be stopped from outside; a process can. So each
worker is a process with its own engine, fed one page at a time over a pipe by a dispatcher
thread here, which
- stops (SIGKILL) a worker still busy `grace_s` after its page's deadline and answers
  EngineTimeoutError; the worker is restarted at once, in the dispatcher, not in the caller;
- with `memory_limit_bytes`, samples the worker's resident memory every `_MEMORY_POLL_S` and
  stops it once over the limit, answering EngineMemoryError (the page is refused as too big);
- with `pod_memory_limit_bytes` (the container's limit), samples the serving process and every
  worker as well: once they hold more together, the busy worker holding the most is stopped
  and its page answered EngineMemoryShortError (refused for now, with a retry hint), or
  EngineMemoryError when it would not fit even beside an idle model, so the workers never
  take the container past its limit, and the pages of the others go on;
- restarts a worker that died (killed from outside, crashed) and answers EngineWorkerLostError.

Workers are forked from a `forkserver` that has imported the engine already (a restart costs
~0.3 s: the fork, loading the default language and, unless fixed, measuring the layout rate,
learned once and handed to restarts), never from the serving process with its gRPC threads.
Stage spans (ocr.decode, ocr.preprocess, ocr.recognize) are recorded in the worker and
replayed here with their own start and end times under the caller's span, so a trace looks
the same whichever kind of worker read the page.

`ThreadWorkers` runs the engine on threads of this process: no deadline kill, no memory limit;
for backends that cannot cross a process boundary (tests' fakes) and `OCR_MODEL_WORKER_MODE=
thread`.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any, Final, NoReturn, Protocol

import psutil
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import Span, Status, StatusCode

from .engine import OcrEngine, PageRead
from .spec import EngineSpec
from .types import (
    EngineMemoryError,
    EngineMemoryShortError,
    EngineTimeoutError,
    EngineWorkerLostError,
    OcrOptions,
)

logger = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

#: How often a busy worker's resident memory is sampled when it has a limit.
_MEMORY_POLL_S = 0.05
#: How often a dispatcher without deadline or limit looks up from a busy worker.
_IDLE_POLL_S = 1.0
#: How long a stopped worker gets to exit before it is killed.
_EXIT_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class Job:
    """One page to read: bytes, options, an absolute deadline on `time.monotonic()` (None: no
    limit), whether to keep the upright image, and the caller's context (its trace span)."""

    data: bytes
    options: OcrOptions
    deadline: float | None
    keep_image: bool
    submitted: float = field(default_factory=time.monotonic)
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


class Workers(Protocol):
    """Runs jobs on `count` workers, one job per worker at a time, the rest queued in order."""

    count: int

    def warm(self, timeout_s: float) -> None:
        """Start every worker and load the default model in each (blocks until done)."""
        ...

    def submit(self, job: Job) -> Future[PageRead]:
        """Queue `job`; the future is cancelled (never runs) if cancelled while queued."""
        ...

    def close(self, wait: bool) -> None:
        """Stop taking jobs; queued ones still run. With `wait`, block until they have."""
        ...


def _queue_timeout(job: Job, started: float) -> float | None:
    """The time `job` has left when a worker takes it; raises if none is left."""
    if job.deadline is None:
        return None
    remaining = job.deadline - started
    if remaining <= 0:
        raise EngineTimeoutError("the request's time ran out while it waited for a worker")
    return remaining


def _with_queue_time(page: PageRead, queue_s: float) -> PageRead:
    result = page.result
    return replace(page, result=replace(result, timings=replace(result.timings, queue_s=queue_s)))


class ThreadWorkers:
    """The engine on threads of this process, each with its own Tesseract state."""

    def __init__(self, engine: OcrEngine, count: int, warm_options: OcrOptions) -> None:
        self.engine = engine
        self.count = count
        self._warm_options = warm_options
        self._executor = ThreadPoolExecutor(max_workers=count, thread_name_prefix="ocr-engine")

    def warm(self, timeout_s: float) -> None:
        # The barrier holds each task until all have started, so each lands on its own thread.
        barrier = threading.Barrier(self.count)

        def warm_one() -> None:
            barrier.wait(timeout_s)
            self.engine.backend.warm(self._warm_options)

        for future in [self._executor.submit(warm_one) for _ in range(self.count)]:
            future.result(timeout_s)

    def submit(self, job: Job) -> Future[PageRead]:
        def work() -> PageRead:
            started = time.monotonic()
            remaining = _queue_timeout(job, started)
            page: PageRead = job.context.run(
                self.engine.read, job.data, job.options, remaining, keep_image=job.keep_image
            )
            return _with_queue_time(page, started - job.submitted)

        return self._executor.submit(work)

    def close(self, wait: bool) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=False)


# --- worker processes ---


@dataclass(frozen=True, slots=True)
class _SpanRecord:
    """A finished span of the worker, as the dispatcher replays it."""

    name: str
    span_id: int
    parent_id: int | None
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    error: str | None


class _SpanRecorder(SpanProcessor):
    """Keeps the worker's finished spans until the page's answer takes them."""

    def __init__(self) -> None:
        self._spans: list[_SpanRecord] = []

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        parent = span.parent
        self._spans.append(
            _SpanRecord(
                name=span.name,
                span_id=0 if context is None else context.span_id,
                parent_id=None if parent is None else parent.span_id,
                start_ns=span.start_time or 0,
                end_ns=span.end_time or 0,
                attributes=dict(span.attributes or {}),
                error=span.status.description
                if span.status.status_code is StatusCode.ERROR
                else None,
            )
        )

    def take(self) -> list[_SpanRecord]:
        spans, self._spans = self._spans, []
        return spans


#: How much lower than the serving process a worker process runs (see `os.nice`).
WORKER_NICENESS: Final = 5


def _serve(conn: Connection, spec: EngineSpec, warm_options: OcrOptions) -> None:
    """A worker process: build the engine, warm it, then read one page per message."""
    # Ctrl-C reaches the whole process group; the dispatcher, not the terminal, stops workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    # Behind the serving process: its event loop (refusals, health probes) answers at once while
    # the workers take every cycle it leaves.
    os.nice(WORKER_NICENESS)
    recorder = _SpanRecorder()
    provider = TracerProvider()
    provider.add_span_processor(recorder)
    trace.set_tracer_provider(provider)
    try:
        engine = spec.build()
        engine.backend.warm(warm_options)
    except Exception as error:  # told to the dispatcher, which refuses to start
        conn.send(("failed", f"{type(error).__name__}: {error}"))
        return
    conn.send(("ready", getattr(engine.backend, "layout_s_per_megapixel", None)))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the serving process went away
        if message is None:
            return
        data, options, timeout_s, keep_image = message
        try:
            page = engine.read(data, options, timeout_s, keep_image=keep_image)
        except (EngineTimeoutError, ValueError) as error:
            # The engine's own errors (EngineInputError is a ValueError) carry safe messages.
            conn.send(("error", error, recorder.take()))
        except MemoryError:
            conn.send(("error", EngineMemoryError(_memory_message(None)), recorder.take()))
        except Exception:
            logger.exception("the OCR worker failed on a page")
            conn.send(("error", EngineWorkerLostError(_LOST), recorder.take()))
        else:
            conn.send(("ok", page, recorder.take()))


def _die_with_parent() -> None:
    """Have Linux kill this worker when its parent, the fork server, exits (which it does when
    the serving process is gone), so a worker busy on a page never outlives the server."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the worker exits at its next message instead


_PR_SET_PDEATHSIG = 1
_LOST = "the OCR worker failed on this page and was restarted"


def _short_message(held: int, limit: int) -> str:
    return (
        f"the model ran short of memory reading this page (its processes held {held // 2**20} "
        f"MiB of the {limit // 2**20} MiB it may use) and stopped it: retry later"
    )


def _too_big_message(limit: int) -> str:
    return (
        f"reading this page needs more memory than the model has ({limit // 2**20} MiB for "
        "its processes together): send a smaller page (fewer pixels) or a simpler one"
    )


def _memory_message(limit: int | None) -> str:
    budget = "" if limit is None else f" of {limit // 2**20} MiB"
    return (
        f"reading this page needed more than the OCR worker's memory limit{budget}: send a "
        "smaller page (fewer pixels) or a simpler one"
    )


def _replay(spans: Sequence[_SpanRecord], context: contextvars.Context) -> None:
    """Re-create the worker's spans, with their times, under the caller's current span."""
    if not spans or not context.run(lambda: trace.get_current_span().is_recording()):
        return
    base = context.run(otel_context.get_current)
    made: dict[int, Span] = {}
    for record in sorted(spans, key=lambda s: s.start_ns):
        parent = made.get(record.parent_id) if record.parent_id is not None else None
        parent_context = base if parent is None else trace.set_span_in_context(parent, base)
        span = _tracer.start_span(
            record.name,
            context=parent_context,
            start_time=record.start_ns,
            attributes=record.attributes,
        )
        if record.error is not None:
            span.set_status(Status(StatusCode.ERROR, record.error))
        made[record.span_id] = span
    for record in spans:
        made[record.span_id].end(end_time=record.end_ns)


class _Slot:
    """One worker process and the dispatcher thread that feeds it."""

    def __init__(self, owner: ProcessWorkers, index: int) -> None:
        self._owner = owner
        self._index = index
        self._process: Any = None  # multiprocessing's process classes are untyped per context
        self._conn: Connection | None = None
        self._watched: psutil.Process | None = None
        #: Whether the worker is reading a page (only a busy worker is stopped for the pod).
        self.busy = False
        #: The worker's resident memory once started, before any page.
        self.idle_resident = 0
        self.ready = threading.Event()
        self.failure: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"ocr-dispatch-{index}", daemon=True)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.pid)

    def resident(self) -> int:
        """The worker's resident memory now; 0 without a worker."""
        watched = self._watched
        if watched is None:
            return 0
        try:
            return int(watched.memory_info().rss)
        except psutil.Error:
            return 0

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float | None) -> None:
        self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            self._start_process()
        except RuntimeError as error:
            self.failure = str(error)
            return
        finally:
            self.ready.set()
        jobs = self._owner.jobs
        while (item := jobs.get()) is not None:
            job, future = item
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while queued: never run
            try:
                future.set_result(self._execute(job))
            except BaseException as error:
                future.set_exception(error)
            if self._process is None:
                self._restart()
        self._stop_process()

    def _start_process(self) -> None:
        owner = self._owner
        parent_end, child_end = owner.context.Pipe()
        process = owner.context.Process(
            target=_serve,
            args=(child_end, owner.spec, owner.warm_options),
            name=f"ocr-worker-{self._index}",
            daemon=True,
        )
        process.start()
        child_end.close()
        try:
            if not parent_end.poll(owner.start_timeout_s):
                raise RuntimeError(f"OCR worker did not start within {owner.start_timeout_s} s")
            kind, detail = parent_end.recv()
        except (EOFError, OSError, RuntimeError) as error:
            process.kill()
            process.join(_EXIT_WAIT_S)
            parent_end.close()
            raise RuntimeError(f"OCR worker {self._index} failed to start: {error}") from None
        if kind != "ready":
            process.join(_EXIT_WAIT_S)
            parent_end.close()
            raise RuntimeError(f"OCR worker {self._index} failed to start: {detail}")
        owner.learned(detail)
        self._process, self._conn = process, parent_end
        try:
            self._watched = psutil.Process(process.pid)
        except psutil.Error:
            self._watched = None  # gone already: its first page tells how
        self.idle_resident = self.resident()

    def _restart(self) -> None:
        try:
            self._start_process()
        except RuntimeError:
            logger.exception(
                "OCR worker %d could not be restarted; retrying at its next page", self._index
            )
        else:
            self._owner.restarts += 1

    def _stop_process(self) -> None:
        process, conn = self._process, self._conn
        self._process, self._conn, self._watched = None, None, None
        if process is None or conn is None:
            return
        with contextlib.suppress(OSError):
            conn.send(None)
        process.join(_EXIT_WAIT_S)
        if process.is_alive():
            process.kill()
            process.join(_EXIT_WAIT_S)
        conn.close()

    def _kill(self) -> None:
        process, conn = self._process, self._conn
        self._process, self._conn, self._watched = None, None, None
        if process is not None:
            process.kill()
            process.join(_EXIT_WAIT_S)
        if conn is not None:
            conn.close()

    def _lost(self) -> NoReturn:
        self._kill()
        self._owner.stopped("lost")
        raise EngineWorkerLostError(_LOST)

    def _execute(self, job: Job) -> PageRead:
        started = time.monotonic()
        remaining = _queue_timeout(job, started)
        if self._process is None or not self._process.is_alive():
            self._kill()
            self._start_process()  # a RuntimeError here reaches the caller as a failure
        conn = self._conn
        assert conn is not None
        try:
            conn.send((job.data, job.options, remaining, job.keep_image))
        except OSError:
            self._lost()
        self.busy = True
        try:
            self._wait(conn, job)
        finally:
            self.busy = False
        try:
            kind, payload, spans = conn.recv()
        except (EOFError, OSError):
            self._lost()
        _replay(spans, job.context)
        if kind == "error":
            if isinstance(payload, EngineWorkerLostError):
                self._lost()  # its state is suspect after an unexpected failure
            raise payload
        return _with_queue_time(payload, started - job.submitted)

    def _wait(self, conn: Connection, job: Job) -> None:
        """Block until the worker answers; stop it past the deadline or over its memory."""
        owner = self._owner
        limit = None if job.deadline is None else job.deadline + owner.grace_s
        memory_limit = owner.memory_limit_bytes
        watched = self._watched if memory_limit or owner.pod_memory_limit_bytes else None
        while True:
            step = _MEMORY_POLL_S if watched is not None else _IDLE_POLL_S
            if limit is not None:
                step = min(step, max(0.0, limit - time.monotonic()))
            if conn.poll(step):
                return
            if watched is not None:
                try:
                    resident = int(watched.memory_info().rss)
                except psutil.Error:
                    return  # it exited: recv() tells how
                if memory_limit is not None and resident > memory_limit:
                    self._kill()
                    owner.stopped("memory")
                    raise EngineMemoryError(_memory_message(memory_limit))
                short = owner.short_of_memory(self, resident)
                if short is not None:
                    self._kill()
                    owner.stopped("pod_memory")
                    raise short
            if limit is not None and time.monotonic() >= limit:
                self._kill()
                owner.stopped("deadline")
                raise EngineTimeoutError(
                    "the page was still being read at its deadline; its worker was stopped"
                )


class ProcessWorkers:
    """The engine in `count` worker processes, each stopped when its page overstays."""

    def __init__(
        self,
        spec: EngineSpec,
        count: int,
        warm_options: OcrOptions,
        *,
        memory_limit_bytes: int | None = None,
        pod_memory_limit_bytes: int | None = None,
        grace_s: float = 0.5,
        start_timeout_s: float = 120.0,
        on_stop: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.count = count
        self.warm_options = warm_options
        self.memory_limit_bytes = memory_limit_bytes
        #: Most the serving process and the workers may hold together (resident memory).
        self.pod_memory_limit_bytes = pod_memory_limit_bytes
        self._serving = psutil.Process()
        #: The serving process's resident memory when the workers started, before any page.
        self._serving_idle = 0
        self.grace_s = grace_s
        self.start_timeout_s = start_timeout_s
        #: Told the reason ("deadline", "memory", "lost") each time a worker is stopped.
        self.on_stop = on_stop
        self.context = multiprocessing.get_context("forkserver")
        # Imported once in the fork server, so each worker starts with the engine loaded.
        self.context.set_forkserver_preload([__name__])
        self.jobs: queue.SimpleQueue[tuple[Job, Future[PageRead]] | None] = queue.SimpleQueue()
        self._slots = [_Slot(self, index) for index in range(count)]
        self._started = False
        self._lock = threading.Lock()
        #: Workers stopped at a deadline, over their memory, and restarts (for tests, metrics).
        self.stopped_at_deadline = 0
        self.stopped_for_memory = 0
        self.stopped_for_pod_memory = 0
        self.restarts = 0

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [pid for slot in self._slots if (pid := slot.pid) is not None]

    def short_of_memory(self, slot: _Slot, resident: int) -> Exception | None:
        """Why `slot`'s worker, holding `resident` bytes, is to be stopped for the pod, when
        the serving process and the workers hold more than `pod_memory_limit_bytes` together
        and it is the busy worker holding the most; None otherwise. The page is too big
        (EngineMemoryError) when it would not fit even beside an idle model, as it was at
        start: a retry could only fail again. Otherwise the pod is short for now
        (EngineMemoryShortError): the other pages, or uploads arriving, take the rest. The sum
        counts the pages they share more than once (~110 MiB with two workers): headroom
        under the real limit."""
        limit = self.pod_memory_limit_bytes
        if limit is None:
            return None
        try:
            held = int(self._serving.memory_info().rss) + resident
        except psutil.Error:
            return None
        alone = self._serving_idle + resident
        for other in self._slots:
            if other is not slot:
                theirs = other.resident()
                if other.busy and theirs > resident:
                    return None  # theirs is the one to stop
                held += theirs
                alone += other.idle_resident
        if held <= limit:
            return None
        if alone > limit:
            return EngineMemoryError(_too_big_message(limit))
        return EngineMemoryShortError(_short_message(held, limit))

    def stopped(self, reason: str) -> None:
        """Account for a worker stopped for `reason` (deadline, memory, pod_memory, lost)."""
        with self._lock:
            if reason == "deadline":
                self.stopped_at_deadline += 1
            elif reason == "memory":
                self.stopped_for_memory += 1
            elif reason == "pod_memory":
                self.stopped_for_pod_memory += 1
        if self.on_stop is not None:
            self.on_stop(reason)

    def learned(self, layout_s_per_megapixel: float | None) -> None:
        """A worker measured the layout rate: restarts take it instead of measuring again."""
        with self._lock:
            if self.spec.layout_s_per_megapixel is None and layout_s_per_megapixel is not None:
                self.spec = replace(self.spec, layout_s_per_megapixel=layout_s_per_megapixel)

    def warm(self, timeout_s: float) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        self._serving_idle = int(self._serving.memory_info().rss)
        for slot in self._slots:
            slot.start()
        deadline = time.monotonic() + timeout_s
        for slot in self._slots:
            if not slot.ready.wait(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"OCR workers did not start within {timeout_s} s")
        failures = [slot.failure for slot in self._slots if slot.failure]
        if failures:
            self.close(wait=True)
            raise RuntimeError(failures[0])

    def submit(self, job: Job) -> Future[PageRead]:
        future: Future[PageRead] = Future()
        self.jobs.put((job, future))
        return future

    def close(self, wait: bool) -> None:
        for _ in self._slots:
            self.jobs.put(None)
        if wait:
            for slot in self._slots:
                slot.join(None)
