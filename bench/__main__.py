"""`python -m bench` (`make bench`): measure, print the table, write results.json and the chart.

Usage: python -m bench [--quick] [--out DIR] [--workloads line page scan] [--requests N]
                       [--seconds S] [--concurrency 1 8 64]
Starts its own gateway and model processes on free loopback ports; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .workloads import BUILDERS

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "bench"


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke mode: one workload, tiny levels (< 1 minute)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where results go")
    parser.add_argument(
        "--workloads", nargs="+", choices=list(BUILDERS), help="default: all (quick: line)"
    )
    parser.add_argument(
        "--requests",
        type=int,
        help="requests per platform level, and most per seed-style level "
        "(default: sized by --seconds from the measured engine speed)",
    )
    parser.add_argument(
        "--seconds", type=float, help="target duration of each level (default 10, quick 1)"
    )
    parser.add_argument(
        "--concurrency", nargs="+", type=int, default=[1, 8, 64], help="client counts"
    )
    args = parser.parse_args(argv)
    if args.requests is not None and args.requests < 1:
        parser.error("--requests must be at least 1")
    if any(c < 1 for c in args.concurrency):
        parser.error("--concurrency values must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (missed targets are reported, not failures)."""
    args = _args(argv)

    from model.engine import available_cpus

    from . import chart, report, runner, workloads

    cores = available_cpus()
    seconds = args.seconds if args.seconds is not None else (1.0 if args.quick else 10.0)
    plan = runner.Plan(
        cores=cores,
        concurrency=tuple(sorted(set(args.concurrency))),
        level_seconds=seconds,
        ceiling_seconds=0.5 if args.quick else max(2.0, seconds),
        fixed_requests=args.requests,
        seed_cap_s=4.0 if args.quick else max(20.0, seconds * 4),
    )
    names = args.workloads or (["line"] if args.quick else ["line", "page", "scan"])
    info = report.machine(cores)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ocr-bench-") as logs:
        try:
            results = runner.run(plan, workloads.build(names), Path(logs), log)
        except RuntimeError as exc:
            log(f"benchmark failed: {exc}")
            return 1
    took = time.monotonic() - started
    found = report.targets(results)
    print(report.table(results, found))
    run = {
        "quick": args.quick,
        "workloads": names,
        "concurrency": list(plan.concurrency),
        "level_seconds": plan.level_seconds,
        "ceiling_seconds": plan.ceiling_seconds,
        "fixed_requests": plan.fixed_requests,
        "seed_cap_s": plan.seed_cap_s,
        "seconds": round(took, 1),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    results_path, chart_path = args.out / "results.json", args.out / "throughput.png"
    data = report.to_json(results, found, info, run)
    results_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    chart.render(results, info, chart_path)
    print(
        f"\nran {took:.0f}s on {info['cpu_model']} ({cores} cores, load {info['loadavg_at_start']})"
    )
    print(f"wrote {results_path} and {chart_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
