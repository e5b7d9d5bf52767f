"""Ratios, the issue-6 targets, the printed table and the JSON results of a run.

Absolute numbers drift between machines; ratios measured in one run on one machine do not,
so the targets are all ratios (or memory ceilings).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from .results import LevelResult, PathResult, WorkloadResult
from .stacks import ROOT


@dataclass(frozen=True)
class Target:
    """One performance target of issue 6 and the value this run measured."""

    name: str
    workload: str
    value: float | None
    """None when the run did not measure what the target needs."""
    threshold: float
    higher_is_better: bool
    unit: str = "x"

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.higher_is_better:
            return self.value >= self.threshold
        return self.value <= self.threshold


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or not bottom:
        return None
    return top / bottom


def _throughput(path: PathResult, concurrency: int) -> float | None:
    level = path.at(concurrency)
    return None if level is None else level.throughput


def ratios(result: WorkloadResult) -> dict[str, float | None]:
    """The comparisons of the table: platform against the ceiling and against the seed-style."""
    platform, seed, ceiling = result.platform, result.seed_style, result.ceiling
    c1 = platform.at(1)
    return {
        "platform_over_ceiling_c8": _ratio(_throughput(platform, 8), ceiling.throughput),
        "platform_over_ceiling_c64": _ratio(_throughput(platform, 64), ceiling.throughput),
        "platform_over_seed_c8": _ratio(_throughput(platform, 8), _throughput(seed, 8)),
        "added_latency_c1_ms": None if c1 is None else c1.p50_ms - ceiling.single_p50_ms,
        "c64_over_c8": _ratio(_throughput(platform, 64), _throughput(platform, 8)),
        "model_grpc_over_ceiling_c8": _ratio(
            None if result.model_grpc is None else result.model_grpc.throughput,
            ceiling.throughput,
        ),
        "seed_c64_over_c8": _ratio(_throughput(seed, 64), _throughput(seed, 8)),
    }


def targets(results: list[WorkloadResult]) -> list[Target]:
    """Every issue-6 target that applies to the workloads of this run."""
    found: list[Target] = []
    for result in results:
        r = ratios(result)
        if result.name == "line":
            found += [
                Target(
                    "platform/ceiling throughput at c=8",
                    "line",
                    r["platform_over_ceiling_c8"],
                    0.85,
                    True,
                ),
                Target(
                    "platform/seed-style throughput at c=8",
                    "line",
                    r["platform_over_seed_c8"],
                    20,
                    True,
                ),
                Target(
                    "added p50 latency at c=1 (platform - engine)",
                    "line",
                    r["added_latency_c1_ms"],
                    5,
                    False,
                    "ms",
                ),
            ]
        if result.name == "page":
            found.append(
                Target(
                    "platform/ceiling throughput at c=8",
                    "page",
                    r["platform_over_ceiling_c8"],
                    0.95,
                    True,
                )
            )
        found.append(
            Target("throughput c=64 / c=8 (no collapse)", result.name, r["c64_over_c8"], 0.95, True)
        )
    if results:
        model = max(r.platform.peak_rss_mb("model") for r in results)
        gateway = max(r.platform.peak_rss_mb("gateway") for r in results)
        found += [
            Target("model server peak RSS", "all", model, 300, False, "MB"),
            Target("gateway peak RSS", "all", gateway, 150, False, "MB"),
        ]
    return found


def _fmt(value: float | None, unit: str = "x", digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if unit == "x":
        return f"{value:.{digits}f}x"
    return f"{value:+.1f} {unit}" if unit == "ms" else f"{value:.0f} {unit}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}"


def _level_row(path: str, level: LevelResult) -> str:
    usage = level.usage
    wait = "-" if level.queue_wait_ms is None else f"{level.queue_wait_ms:.0f}"
    return (
        f"{path:<11}{level.concurrency:>4}{level.requests:>6}{level.ok:>6}{level.errors:>5}"
        f"{level.cancelled:>5}{level.throughput:>9.2f}{level.p50_ms:>9.0f}{level.p95_ms:>9.0f}"
        f"{level.p99_ms:>9.0f}{_pct(level.engine_utilization):>6}{wait:>8}"
        f"{level.cpu_ms_per_request('gateway'):>8.1f}"
        f"{level.cpu_ms_per_request('model'):>8.1f}{level.cpu_ms_per_request('client'):>8.1f}"
        f"{usage['gateway'].peak_rss_mb:>7.0f}{usage['model'].peak_rss_mb:>7.0f}"
        f"{level.background_cpu_pct:>6.0f}"
    )


_HEADER = (
    f"{'path':<11}{'c':>4}{'sent':>6}{'ok':>6}{'err':>5}{'cut':>5}{'img/s':>9}{'p50 ms':>9}"
    f"{'p95 ms':>9}{'p99 ms':>9}{'eng%':>6}{'wait ms':>8}{'gw cpu':>8}{'mdl cpu':>8}"
    f"{'cli cpu':>8}{'gw MB':>7}{'mdl MB':>7}{'bg%':>6}"
)
_LEGEND = (
    "eng%: engine busy share (model metrics); wait: mean queue wait for a worker; "
    "gw/mdl/cli cpu: CPU ms per ok request\nof the gateway, the model (with its child "
    "processes) and this client; MB: peak RSS; bg%: machine CPU taken by other processes\n"
    "model-grpc: the platform's model server called over gRPC by this client, no gateway "
    "(a diagnostic, not a target)"
)


def _overhead(level: LevelResult | None, engine_cpu_ms: float) -> str:
    """Where the platform's CPU goes per request at c=8, beside the engine's own CPU time
    (measured in the ceiling run)."""
    if level is None or level.ok == 0:
        return "platform CPU per request at c=8: n/a"
    model = level.cpu_ms_per_request("model") - engine_cpu_ms
    gateway, client = level.cpu_ms_per_request("gateway"), level.cpu_ms_per_request("client")
    share = engine_cpu_ms / (engine_cpu_ms + max(0.0, model) + gateway + client)
    return (
        f"CPU per request at c=8: engine {engine_cpu_ms:.1f} ms + model overhead {model:.1f} + "
        f"gateway {gateway:.1f} + client {client:.1f} ms (engine share {share:.0%})"
    )


def _model_alone(level: LevelResult | None, engine_cpu_ms: float, ratio: float | None) -> str:
    """The model server without the gateway: how much of the gap to the ceiling is its own."""
    if level is None or level.ok == 0:
        return "model server alone over gRPC: not measured"
    model = level.cpu_ms_per_request("model") - engine_cpu_ms
    return (
        f"model server alone over gRPC at c={level.concurrency} (no gateway, no HTTP): "
        f"{_fmt(ratio)} of the ceiling; model overhead {model:.1f} + client "
        f"{level.cpu_ms_per_request('client'):.1f} CPU ms per request"
    )


#: Above this share of the machine's CPU taken by other processes, a workload is flagged.
BUSY_MACHINE_PCT = 10.0


def _worst_background(result: WorkloadResult) -> float:
    levels = [*result.platform.levels, *result.seed_style.levels]
    if result.model_grpc is not None:
        levels.append(result.model_grpc)
    return max([result.ceiling.background_cpu_pct, *(lvl.background_cpu_pct for lvl in levels)])


def table(results: list[WorkloadResult], found: list[Target]) -> str:
    """The human-readable report: one block per workload, then the targets."""
    lines: list[str] = []
    if results:
        for name, path in (
            ("platform", results[0].platform),
            ("seed-style", results[0].seed_style),
        ):
            lines += [f"{name} {role}: {value}" for role, value in path.settings.items()]
        lines.append("")
    for result in results:
        c, r = result.ceiling, ratios(result)
        lines += [
            f"== {result.name}: {result.description}, {result.image_bytes} bytes ==",
            f"engine ceiling: {c.throughput:.2f} img/s on {c.threads} threads (runs before/after "
            f"the platform: {' / '.join(f'{x:.2f}' for x in c.runs)}; p50 "
            f"{c.p50_ms:.1f} ms, {c.cpu_ms_per_image:.1f} CPU ms/img, bg "
            f"{c.background_cpu_pct:.0f}%); 1 thread {c.single_throughput:.2f} img/s, "
            f"p50 {c.single_p50_ms:.1f} ms",
            _HEADER,
            *(_level_row("platform", level) for level in result.platform.levels),
            *([_level_row("model-grpc", result.model_grpc)] if result.model_grpc else []),
            *(_level_row("seed-style", level) for level in result.seed_style.levels),
            f"platform/ceiling c=8 {_fmt(r['platform_over_ceiling_c8'])}, "
            f"c=64 {_fmt(r['platform_over_ceiling_c64'])} | platform/seed-style c=8 "
            f"{_fmt(r['platform_over_seed_c8'], digits=1)} | added latency c=1 "
            f"{_fmt(r['added_latency_c1_ms'], 'ms')} | c=64/c=8 {_fmt(r['c64_over_c8'])}",
            _overhead(result.platform.at(8), c.cpu_ms_per_image),
            _model_alone(result.model_grpc, c.cpu_ms_per_image, r["model_grpc_over_ceiling_c8"]),
            f"peak RSS: platform gateway {result.platform.peak_rss_mb('gateway'):.0f} MB, "
            f"model {result.platform.peak_rss_mb('model'):.0f} MB; seed-style gateway "
            f"{result.seed_style.peak_rss_mb('gateway'):.0f} MB, "
            f"model {result.seed_style.peak_rss_mb('model'):.0f} MB (with its Tesseract CLIs)",
            f"recognised: platform {result.platform.sample_text[:50]!r}; "
            f"seed-style {result.seed_style.sample_text[:50]!r}",
        ]
        background = _worst_background(result)
        if background > BUSY_MACHINE_PCT:
            lines.append(
                f"WARNING: other processes took up to {background:.0f}% of the machine's CPU "
                "while this workload ran; ratios are not reliable: run again on a quiet machine"
            )
        lines.append("")
    lines.append(_LEGEND)
    lines.append("targets (issue 6):")
    for target in found:
        mark = {True: "met    ", False: "NOT MET", None: "n/a    "}[target.met]
        sign = ">=" if target.higher_is_better else "<="
        threshold = f"{target.threshold:g}{'x' if target.unit == 'x' else ' ' + target.unit}"
        value = "n/a" if target.value is None else f"{target.value:.3f}"
        lines.append(
            f"  [{mark}] {target.workload:<5} {target.name:<46} {value:>8} {sign} {threshold}"
        )
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _first_line(args: list[str]) -> str | None:
    """The first output line of a short read-only command, or None when it fails."""
    try:
        out = subprocess.run(  # noqa: S603  # fixed argument lists below
            args, cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else None


def _git_commit() -> str | None:
    return _first_line(["git", "describe", "--always", "--dirty"])


def _cli_version() -> str | None:
    line = _first_line(["tesseract", "--version"])
    return None if line is None else line.removeprefix("tesseract ").strip()


def machine(cores: int) -> dict[str, Any]:
    """What the numbers came from: CPU, cores, Python, Tesseract, date, load."""
    import tesserocr  # type: ignore[import-untyped,unused-ignore]  # untyped; reads its version

    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "available_cpus": cores,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "os": platform.platform(terse=True),
        # tesserocr's wheel may bundle its own libtesseract; the seed-style path runs the CLI.
        "tesseract": str(tesserocr.tesseract_version()).split()[1],
        "tesseract_cli": _cli_version(),
        "tesserocr": getattr(tesserocr, "__version__", "unknown"),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _path_json(path: PathResult) -> dict[str, Any]:
    return {
        "settings": path.settings,
        "sample_text": path.sample_text,
        "levels": [dataclasses.asdict(level) for level in path.levels],
    }


def to_json(
    results: list[WorkloadResult], found: list[Target], info: dict[str, Any], run: dict[str, Any]
) -> dict[str, Any]:
    """The results file: machine, run settings, every workload with its ratios, the targets."""
    return {
        "machine": info,
        "run": run,
        "workloads": {
            r.name: {
                "description": r.description,
                "image_bytes": r.image_bytes,
                "width": r.width,
                "height": r.height,
                "ceiling": dataclasses.asdict(r.ceiling),
                "platform": _path_json(r.platform),
                "seed_style": _path_json(r.seed_style),
                "model_grpc": None if r.model_grpc is None else dataclasses.asdict(r.model_grpc),
                "ratios": ratios(r),
                "max_background_cpu_pct": _worst_background(r),
                "peak_rss_mb": {
                    "platform": {
                        role: r.platform.peak_rss_mb(role) for role in ("gateway", "model")
                    },
                    "seed_style": {
                        role: r.seed_style.peak_rss_mb(role) for role in ("gateway", "model")
                    },
                },
            }
            for r in results
        },
        "targets": [{**dataclasses.asdict(t), "met": t.met} for t in found],
    }
