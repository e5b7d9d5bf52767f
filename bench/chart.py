"""The PNG chart: throughput against concurrency for the three paths, one panel per workload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # after choosing the backend
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .results import PathResult, WorkloadResult

_PLATFORM = "#1f77b4"
_SEED = "#d62728"
_CEILING = "#2ca02c"


def _plot_path(ax: Any, path: PathResult, label: str, color: str, marker: str) -> None:
    xs = [level.concurrency for level in path.levels]
    ys = [level.throughput for level in path.levels]
    ax.plot(xs, ys, marker=marker, color=color, label=label)
    for x, y in zip(xs, ys, strict=True):
        ax.annotate(
            f"{y:.3g}",
            (x, y),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=8,
            color=color,
        )


def render(results: list[WorkloadResult], machine: dict[str, Any], path: Path) -> None:
    """Write the chart of `results` to `path`; the title names the machine and the date."""
    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.4), squeeze=False)
    for ax, result in zip(axes[0], results, strict=True):
        ceiling = result.ceiling
        ax.axhline(
            ceiling.throughput,
            color=_CEILING,
            linestyle="--",
            label=f"engine ceiling, {ceiling.threads} threads: {ceiling.throughput:.3g}/s",
        )
        ax.plot(
            [1],
            [ceiling.single_throughput],
            marker="D",
            color=_CEILING,
            linestyle="none",
            label=f"engine, 1 thread: {ceiling.single_throughput:.3g}/s",
        )
        _plot_path(ax, result.platform, "platform (gateway + model)", _PLATFORM, "o")
        _plot_path(ax, result.seed_style, "seed-style", _SEED, "s")
        levels = sorted({lvl.concurrency for lvl in result.platform.levels} | {1})
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        tops = [ceiling.throughput, *(lvl.throughput for lvl in result.platform.levels)]
        bottoms = [lvl.throughput for lvl in result.seed_style.levels if lvl.throughput > 0]
        ax.set_ylim(min(bottoms or tops) / 1.6, max(tops) * 1.6)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("images / s (log)")
        ax.set_title(f"{result.name}: {result.description}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="center right")
    fig.suptitle(
        "OCR throughput vs concurrency\n"
        f"{machine.get('cpu_model', '?')}, {machine.get('available_cpus', '?')} cores, "
        f"Tesseract {machine.get('tesseract', '?')}, {str(machine.get('date', ''))[:10]}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
