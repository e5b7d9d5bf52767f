"""The engine ceiling: Tesseract alone in this process, one reused API per thread.

Nothing a server adds is here (no HTTP, no gRPC, no queue): each thread decodes, prepares and
recognises the same image in a loop through `model.engine.OcrEngine`, which is the best the
platform can hope to do on these cores.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from model.engine import OcrEngine, OcrOptions, TesserocrBackend

from .results import CeilingResult, percentile
from .stacks import Monitor

TESSDATA = Path("/usr/share/tesseract-ocr/5/tessdata")
MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class _Run:
    images: int
    rate: float
    """Images per second: the sum of each thread's own rate (no bias from uneven finishes)."""
    cpu_s: float
    latencies_s: list[float]


def _run(engine: OcrEngine, data: bytes, threads: int, seconds: float, min_images: int) -> _Run:
    """Each of `threads` warmed threads recognises `data` until `seconds` pass (and at least
    `min_images` times)."""
    options = OcrOptions()
    ready = threading.Barrier(threads + 1)
    lock = threading.Lock()
    latencies: list[float] = []
    rates: list[float] = []

    def worker() -> None:
        engine.recognize(data, options)  # loads the model into this thread's API: not timed
        ready.wait()
        mine: list[float] = []
        started = time.perf_counter()
        while len(mine) < min_images or time.perf_counter() - started < seconds:
            t0 = time.perf_counter()
            engine.recognize(data, options)
            mine.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        with lock:
            latencies.extend(mine)
            rates.append(len(mine) / elapsed)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ceiling") as pool:
        futures = [pool.submit(worker) for _ in range(threads)]
        ready.wait()
        cpu_started = time.process_time()
        for future in futures:
            future.result()
        cpu_s = time.process_time() - cpu_started
    return _Run(len(latencies), sum(rates), cpu_s, latencies)


def _engine() -> OcrEngine:
    return OcrEngine(TesserocrBackend(TESSDATA), max_pixels=MAX_PIXELS)


def measure_ceiling(
    data: bytes, threads: int, seconds: float, min_images: int = 3
) -> CeilingResult:
    """Images per second with `threads` threads, and the per-image latency on one thread."""
    engine = _engine()
    single = _run(engine, data, 1, seconds, min_images)
    with Monitor({}) as monitor:
        multi = _run(engine, data, threads, seconds, min_images)
    return CeilingResult(
        threads=threads,
        images=multi.images,
        throughput=multi.rate,
        runs=[multi.rate],
        p50_ms=percentile(multi.latencies_s, 50) * 1000,
        cpu_ms_per_image=multi.cpu_s * 1000 / multi.images,
        background_cpu_pct=monitor.background_cpu_pct,
        single_images=single.images,
        single_throughput=single.rate,
        single_p50_ms=percentile(single.latencies_s, 50) * 1000,
    )


def remeasure_ceiling(
    first: CeilingResult, data: bytes, seconds: float, min_images: int = 3
) -> CeilingResult:
    """Run the `threads`-thread ceiling again; its throughput becomes the mean of the runs.

    Measured before and after the platform, the ceiling brackets it in time, so a machine that
    slows down or speeds up during the run moves both sides of the ratio alike.
    """
    with Monitor({}) as monitor:
        again = _run(_engine(), data, first.threads, seconds, min_images)
    runs = [*first.runs, again.rate]
    return replace(
        first,
        images=first.images + again.images,
        throughput=sum(runs) / len(runs),
        runs=runs,
        background_cpu_pct=max(first.background_cpu_pct, monitor.background_cpu_pct),
    )
