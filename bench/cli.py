"""`python -m bench.cli`: is the `ocr` command line the bottleneck of a batch? (issue 14)

Starts the platform (`PlatformStack`, as `make run` does) and reads the same one-line image N
times (default 50) two ways at the same concurrency (default 8):
- the platform's own benchmark client (`bench.load.run_level`: aiohttp, one prebuilt upload,
  8 clients in a closed loop), as `python -m bench` measures its c=8 level;
- `ocr --jobs 8` over a folder of N copies of that image, writing a .txt for each.
Its throughput is taken from the CLI's own summary (first request to last answer written), and
from the wall clock of the whole command (Python's start and the planning included) as well;
the target is the first at least 0.9x the platform's. `ocr --grpc` (the gateway's page pipeline
in-process, straight to the model) is measured too, for comparison. Rounds run interleaved
after a warm-up, platform and CLI in alternating order, so a slow moment of the machine hits
every path alike; the ratio is the median of the rounds' ratios.
Prints a table and writes `cli.json` to --out.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .load import Upload, run_level
from .stacks import PlatformStack
from .workloads import one_line

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "bench"
#: The CLI's throughput (its own clock) over the platform's at the same concurrency.
TARGET_RATIO: Final = 0.9
#: Seconds the platform rests before each measured run: the CLI's own start gives it about
#: this much, so the platform's run gets it too.
REST_S: Final = 0.5
#: `ocr`'s summary line: "50 files read (50 pages) in 2.31 s, 21.6 pages/s".
_SUMMARY: Final = re.compile(
    r"(\d+) files? read \((\d+) pages?\) in ([0-9.]+) s, ([0-9.]+) pages/s"
)


@dataclass(frozen=True)
class CliRun:
    """One `ocr` batch: pages read, and how fast by the CLI's own clock and by the wall clock."""

    pages: int
    rate: float
    """Pages per second by the CLI's own clock (its summary's figure)."""
    wall_s: float

    @property
    def wall_rate(self) -> float:
        return self.pages / self.wall_s if self.wall_s > 0 else 0.0


def ocr_command() -> list[str]:
    """The installed `ocr` console script beside this interpreter, else `python -m cli`."""
    script = Path(sys.executable).with_name("ocr")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli"]


def run_cli(args: list[str], images: int) -> CliRun:
    """Run `ocr args`; its pages and seconds once it read every image (an error otherwise)."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603  # our own command line, fixed arguments
        [*ocr_command(), *args], capture_output=True, text=True, timeout=600, check=False
    )
    wall = time.perf_counter() - started
    match = _SUMMARY.search(done.stderr)
    if done.returncode != 0 or match is None or int(match[1]) != images:
        raise RuntimeError(f"ocr {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return CliRun(pages=int(match[2]), rate=float(match[4]), wall_s=wall)


def measure(images: int, jobs: int, rounds: int, work: Path) -> dict[str, list[float]]:
    """Images per second of each path: `rounds` rounds after a warm-up, the platform's run and
    the CLI's in alternating order (a drifting load of the machine favours neither), each
    after the same short rest of the platform."""
    workload = one_line()
    upload = Upload.of(workload)
    folder = work / "in"
    folder.mkdir()
    for number in range(images):
        (folder / f"line-{number:03d}.png").write_bytes(workload.data)
    rates: dict[str, list[float]] = {"platform": [], "ocr": [], "ocr wall": [], "ocr --grpc": []}
    deadline = 60 + 2.0 * images
    common = [str(folder), "--jobs", str(jobs)]
    with tempfile.TemporaryDirectory(prefix="bench-cli-logs-") as logs:
        stack = PlatformStack(Path(logs))
        stack.start()

        def platform() -> None:
            time.sleep(REST_S)
            outcome = run_level(stack.upload_url, upload, jobs, images, deadline)
            if outcome.ok != images:
                raise RuntimeError(f"platform: {outcome.ok} of {images} ok {outcome.statuses}")
            rates["platform"].append(outcome.ok / outcome.seconds)

        def cli(way: str, target: str, into: Path) -> CliRun:
            time.sleep(REST_S)
            try:
                return run_cli([*common, way, target, "--out", str(into)], images)
            finally:
                shutil.rmtree(into, ignore_errors=True)

        try:
            run_level(stack.upload_url, upload, jobs, 2 * jobs, deadline)  # warm-up
            cli("--url", stack.upload_url, work / "warm")
            for round_ in range(rounds):
                if round_ % 2 == 0:
                    platform()
                http = cli("--url", stack.upload_url, work / f"out-{round_}")
                rates["ocr"].append(http.rate)
                rates["ocr wall"].append(http.wall_rate)
                if round_ % 2 == 1:
                    platform()
                grpc = cli("--grpc", stack.grpc_target, work / f"out-{round_}")
                rates["ocr --grpc"].append(grpc.rate)
        finally:
            stack.stop()
    return rates


def summarise(rates: dict[str, list[float]], images: int, jobs: int) -> dict[str, Any]:
    medians = {name: statistics.median(values) for name, values in rates.items()}
    # Each round's two runs were seconds apart, under the same load of the machine: the median
    # of their ratios is steadier than the ratio of medians taken minutes apart.
    rounds = [cli / platform for cli, platform in zip(rates["ocr"], rates["platform"], strict=True)]
    ratio = statistics.median(rounds)
    return {
        "images": images,
        "jobs": jobs,
        "rounds": len(rates["platform"]),
        "median_images_per_s": {name: round(value, 2) for name, value in medians.items()},
        "images_per_s": {name: [round(v, 2) for v in values] for name, values in rates.items()},
        "ratio": round(ratio, 3),
        "round_ratios": [round(value, 3) for value in rounds],
        "wall_ratio": round(medians["ocr wall"] / medians["platform"], 3),
        "target": TARGET_RATIO,
        "met": ratio >= TARGET_RATIO,
    }


def table(summary: dict[str, Any]) -> str:
    medians = summary["median_images_per_s"]
    lines = [
        f"== ocr CLI vs the platform's benchmark: {summary['images']} one-line images, "
        f"{summary['jobs']} at a time, {summary['rounds']} rounds ==",
        f"  platform benchmark (c={summary['jobs']})  {medians['platform']:8.1f} images/s",
        f"  ocr --jobs {summary['jobs']} (its clock)   {medians['ocr']:8.1f} images/s",
        f"  ocr --jobs {summary['jobs']} (wall clock)  {medians['ocr wall']:8.1f} images/s"
        "  (Python start and planning included)",
        f"  ocr --grpc (its clock)      {medians['ocr --grpc']:8.1f} images/s",
        f"  ocr / platform: {summary['ratio']:.2f}x, median of the rounds' ratios "
        f"({min(summary['round_ratios']):.2f}-{max(summary['round_ratios']):.2f}x; wall clock "
        f"{summary['wall_ratio']:.2f}x); target >= {summary['target']:.2f}x "
        f"{'met' if summary['met'] else 'NOT met'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke mode: 3 images, 1 round")
    parser.add_argument("--images", type=int, default=50, help="one-line images per batch")
    parser.add_argument("--jobs", type=int, default=8, help="concurrency of both paths")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of every path")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where cli.json goes")
    args = parser.parse_args(argv)
    images = 3 if args.quick else max(1, args.images)
    rounds = 1 if args.quick else max(1, args.rounds)
    jobs = max(1, args.jobs)
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as work:
        rates = measure(images, jobs, rounds, Path(work))
    summary = summarise(rates, images, jobs)
    print(table(summary))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cli.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
