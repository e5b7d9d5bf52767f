"""Run every path on every workload: the engine ceiling, then the platform, then the seed-style.

The three paths of one workload run back to back so they see the same machine; both stacks stay
up for the whole run (idle while the other is measured), except that a stack whose level was cut
short is stopped at once, so the work it was left with cannot slow the next measurements, and
started again when next needed. Level sizes follow the measured engine speed, so every
level takes about `level_seconds` whatever the image.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .ceiling import measure_ceiling, remeasure_ceiling
from .load import LoadOutcome, Upload, run_grpc_level, run_level
from .results import LevelResult, PathResult, WorkloadResult, percentile
from .stacks import Monitor, PlatformStack, SeedStack, Stack, engine_counters
from .workloads import Workload

Log = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    cores: int
    """Engine threads of the ceiling; also the unit level sizes are rounded to."""
    concurrency: tuple[int, ...] = (1, 8, 64)
    level_seconds: float = 10.0
    """About how long each level of the platform should take."""
    ceiling_seconds: float = 6.0
    """How long the ceiling runs on one thread, then on `cores` threads."""
    max_requests: int = 2000
    """Most requests of one level."""
    fixed_requests: int | None = None
    """Requests per platform level (at least the concurrency), instead of sizing by time."""
    seed_cap_s: float = 40.0
    """A seed-style level stops after this long (it serves one request at a time)."""


def _round_up(value: float, unit: int) -> int:
    return max(unit, math.ceil(value / unit) * unit)


def _platform_count(plan: Plan, concurrency: int, rate: float) -> int:
    if plan.fixed_requests is not None:
        return max(concurrency, plan.fixed_requests)
    count = _round_up(rate * plan.level_seconds, plan.cores)
    # Up to 8 clients, each sends at least twice: one burst alone says little about steady state.
    floor = concurrency if concurrency > 8 else 2 * concurrency
    return max(floor, min(count, plan.max_requests))


def _seed_count(plan: Plan, concurrency: int, rate: float) -> int:
    count = math.ceil(rate * plan.level_seconds)
    if plan.fixed_requests is not None:
        count = min(count, plan.fixed_requests)
    return max(concurrency, 2, min(count, plan.max_requests))


def _sample_text(body: str) -> str:
    try:
        text = json.loads(body).get("text", "")
    except (ValueError, AttributeError):
        return body[:80]
    return str(text).strip().replace("\n", " | ")[:80]


#: The direct gRPC level runs at the concurrency of the main throughput target.
DIRECT_CONCURRENCY = 8

Load = Callable[[int, int, float], LoadOutcome]
"""Sends (concurrency, count, deadline_s) to a stack and reports what came back."""


def _http_load(stack: Stack, upload: Upload) -> Load:
    def load(concurrency: int, count: int, deadline_s: float) -> LoadOutcome:
        return run_level(stack.upload_url, upload, concurrency, count, deadline_s)

    return load


def _grpc_load(stack: Stack, image: bytes) -> Load:
    def load(concurrency: int, count: int, deadline_s: float) -> LoadOutcome:
        return run_grpc_level(stack.grpc_target, image, concurrency, count, deadline_s)

    return load


def _measure_level(
    stack: Stack, upload: Upload, concurrency: int, count: int, deadline_s: float
) -> LevelResult:
    return _measure_load(stack, _http_load(stack, upload), concurrency, count, deadline_s)


def _measure_load(
    stack: Stack, load: Load, concurrency: int, count: int, deadline_s: float
) -> LevelResult:
    stack.ensure_started()
    before = engine_counters(stack.metrics_url)
    with Monitor(stack.pids(), stack.tree_roles) as monitor:
        outcome = load(concurrency, count, deadline_s)
    after = engine_counters(stack.metrics_url)
    if outcome.cancelled:
        stack.cut_short()
    seconds = outcome.seconds
    utilization = queue_wait_ms = engine_ms = None
    if before is not None and after is not None and seconds > 0 and after.workers:
        busy_s = after.busy_s - before.busy_s
        utilization = busy_s / (seconds * after.workers)
        images = after.images - before.images
        if images:
            queue_wait_ms = 1000 * (after.queue_wait_s - before.queue_wait_s) / images
            engine_ms = 1000 * busy_s / images
    return LevelResult(
        concurrency=concurrency,
        requests=outcome.sent,
        ok=outcome.ok,
        errors=outcome.sent - outcome.ok - outcome.cancelled,
        cancelled=outcome.cancelled,
        seconds=round(seconds, 3),
        throughput=outcome.ok / seconds if seconds > 0 else 0.0,
        p50_ms=percentile(outcome.latencies_s, 50) * 1000,
        p95_ms=percentile(outcome.latencies_s, 95) * 1000,
        p99_ms=percentile(outcome.latencies_s, 99) * 1000,
        statuses=dict(sorted(outcome.statuses.items())),
        usage=monitor.usage,
        engine_utilization=utilization,
        queue_wait_ms=queue_wait_ms,
        engine_ms_per_image=engine_ms,
        background_cpu_pct=monitor.background_cpu_pct,
        background_top=monitor.background_top,
    )


def _warm(stack: Stack, upload: Upload, concurrency: int, count: int, deadline_s: float) -> str:
    """Uncounted requests that open connections and fill caches; returns a recognised text."""
    stack.ensure_started()
    outcome = run_level(stack.upload_url, upload, concurrency, count, deadline_s)
    if outcome.cancelled:
        stack.cut_short()
    return _sample_text(outcome.first_body)


def _measure_platform(
    plan: Plan, stack: Stack, upload: Upload, single_rate: float, rate: float, log: Log
) -> PathResult:
    result = PathResult(settings=dict(stack.settings))
    result.sample_text = _warm(stack, upload, plan.cores, 2 * plan.cores, 30 + 4 / single_rate)
    for concurrency in plan.concurrency:
        expected = single_rate if concurrency == 1 else rate
        count = _platform_count(plan, concurrency, expected)
        level = _measure_level(stack, upload, concurrency, count, 30 + 3 * count / expected)
        log(_progress("platform", level))
        result.levels.append(level)
    return result


def _measure_model_grpc(
    plan: Plan, stack: Stack, image: bytes, rate: float, log: Log
) -> LevelResult:
    """The model server alone: the gateway's gRPC request straight from this process.

    Not a target of its own: it splits the platform's gap to the ceiling into what the model
    server and the gRPC hop cost and what the HTTP front adds.
    """
    count = _platform_count(plan, DIRECT_CONCURRENCY, rate)
    level = _measure_load(
        stack, _grpc_load(stack, image), DIRECT_CONCURRENCY, count, 30 + 3 * count / rate
    )
    log(_progress("model-grpc", level))
    return level


def _measure_seed(
    plan: Plan, stack: Stack, upload: Upload, single_latency_s: float, log: Log
) -> PathResult:
    result = PathResult(settings=dict(stack.settings))
    # Two Tesseract CLI runs per image (text, then words), each loading the model again.
    rate = 1.0 / (2 * single_latency_s + 0.3)
    result.sample_text = _warm(stack, upload, 1, 1, plan.seed_cap_s)
    for concurrency in plan.concurrency:
        count = _seed_count(plan, concurrency, rate)
        deadline = min(plan.seed_cap_s, 10 + 2 * count / rate)
        level = _measure_level(stack, upload, concurrency, count, deadline)
        log(_progress("seed-style", level))
        result.levels.append(level)
        if level.throughput > 0:
            rate = level.throughput  # the seed serves one at a time: its rate holds for all
    return result


def _progress(path: str, level: LevelResult) -> str:
    cut = f", {level.cancelled} cut at the time cap" if level.cancelled else ""
    busy = (
        "" if level.engine_utilization is None else f", engine {level.engine_utilization:.0%} busy"
    )
    return (
        f"  {path:<10} c={level.concurrency:<3} {level.ok}/{level.requests} ok{cut} in "
        f"{level.seconds:.1f}s: {level.throughput:.2f} img/s, p50 {level.p50_ms:.0f} ms{busy}, "
        f"others {level.background_cpu_pct:.0f}% CPU"
        + (f" ({', '.join(level.background_top)})" if level.background_cpu_pct > 10 else "")
    )


def run(plan: Plan, workloads: list[Workload], log_dir: Path, log: Log) -> list[WorkloadResult]:
    """Measure every workload on the three paths; stacks are stopped whatever happens."""
    platform, seed = PlatformStack(log_dir), SeedStack(log_dir)
    try:
        log("starting the platform and the seed-style stacks")
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(platform.start), pool.submit(seed.start)]:
                future.result()
        results = []
        for workload in workloads:
            log(f"{workload.name}: {workload.description}, {len(workload.data)} bytes")
            ceiling = measure_ceiling(workload.data, plan.cores, plan.ceiling_seconds)
            log(
                f"  ceiling    {ceiling.throughput:.2f} img/s on {ceiling.threads} threads, "
                f"1-thread p50 {ceiling.single_p50_ms:.1f} ms"
            )
            upload = Upload.of(workload)
            platform_result = _measure_platform(
                plan, platform, upload, ceiling.single_throughput, ceiling.throughput, log
            )
            model_grpc = _measure_model_grpc(plan, platform, workload.data, ceiling.throughput, log)
            ceiling = remeasure_ceiling(ceiling, workload.data, plan.ceiling_seconds)
            log(f"  ceiling    again: mean {ceiling.throughput:.2f} img/s")
            seed_result = _measure_seed(plan, seed, upload, ceiling.single_p50_ms / 1000, log)
            results.append(
                WorkloadResult(
                    name=workload.name,
                    description=workload.description,
                    image_bytes=len(workload.data),
                    width=workload.width,
                    height=workload.height,
                    ceiling=ceiling,
                    platform=platform_result,
                    seed_style=seed_result,
                    model_grpc=model_grpc,
                )
            )
        return results
    finally:
        seed.stop()
        platform.stop()
