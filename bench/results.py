"""Result types of one benchmark run and the statistics they are built from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile of `values` (0.0 when there are none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Usage:
    """CPU seconds and peak resident memory of one process (with its children) over a span."""

    cpu_s: float
    peak_rss_mb: float


@dataclass(frozen=True)
class CeilingResult:
    """The engine alone in this process: one reused Tesseract API per thread."""

    threads: int
    images: int
    throughput: float
    """Images per second with `threads` threads (the mean of `runs`)."""
    runs: list[float]
    """Throughput of each `threads`-thread run: before the platform's levels, then after."""
    p50_ms: float
    """Per-image latency with `threads` threads."""
    cpu_ms_per_image: float
    background_cpu_pct: float
    """Share of the machine's CPU taken by other processes while the threads ran."""
    single_images: int
    single_throughput: float
    single_p50_ms: float
    """Per-image latency on one thread: the floor of a request's latency."""


@dataclass(frozen=True)
class LevelResult:
    """One path under one concurrency: a closed loop of `concurrency` clients."""

    concurrency: int
    requests: int
    """Requests sent (warm-up excluded)."""
    ok: int
    errors: int
    """Answers other than 200 and transport failures."""
    cancelled: int
    """Requests still in flight when the level's time cap ran out (not errors)."""
    seconds: float
    """From the first request to the last successful answer."""
    throughput: float
    """Successful answers per second."""
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statuses: dict[str, int]
    usage: dict[str, Usage]
    """Per process role: `gateway`, `model` and `client` (this harness)."""
    engine_utilization: float | None = None
    """Engine stage time / (wall time x workers), from the model's own metrics."""
    queue_wait_ms: float | None = None
    """Mean time a request waited for a free engine worker, from the model's own metrics."""
    engine_ms_per_image: float | None = None
    """Mean engine stage time (decode, preprocess, recognise) per image, from the same metrics."""
    background_cpu_pct: float = 0.0
    """Share of the machine's CPU taken by processes that are not part of the run."""
    background_top: list[str] = field(default_factory=list)
    """The processes behind `background_cpu_pct`, most CPU first."""

    def cpu_ms_per_request(self, role: str) -> float:
        """CPU milliseconds `role` spent per successful request."""
        usage = self.usage.get(role)
        if usage is None or self.ok == 0:
            return 0.0
        return usage.cpu_s * 1000.0 / self.ok


@dataclass
class PathResult:
    """Every concurrency level of one path (platform or seed-style) on one workload."""

    levels: list[LevelResult] = field(default_factory=list)
    sample_text: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    """The environment the path's processes were started with (ports left out)."""

    def at(self, concurrency: int) -> LevelResult | None:
        """The level measured with `concurrency` clients, if any."""
        return next((lvl for lvl in self.levels if lvl.concurrency == concurrency), None)

    def peak_rss_mb(self, role: str) -> float:
        """The largest resident memory `role` reached over every level."""
        return max(
            (lvl.usage[role].peak_rss_mb for lvl in self.levels if role in lvl.usage), default=0
        )


@dataclass
class WorkloadResult:
    """Everything measured on one workload."""

    name: str
    description: str
    image_bytes: int
    width: int
    height: int
    ceiling: CeilingResult
    platform: PathResult
    seed_style: PathResult
    model_grpc: LevelResult | None = None
    """The platform's model server driven over gRPC without the gateway (a diagnostic)."""
