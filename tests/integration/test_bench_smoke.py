"""`python -m bench --quick` runs end to end: table printed, results JSON and PNG chart written.

A smoke test of the harness only: it proves the benchmark still works, never how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT

pytestmark = pytest.mark.integration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def quick_run(module: str, out: Path) -> str:
    """`python -m <module> --quick --out <out>`; its stdout once it exits 0."""
    run = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    return run.stdout


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("bench")
    return quick_run("bench", out), out


def test_prints_the_table_with_ratios_and_targets(bench_run: tuple[str, Path]) -> None:
    stdout, _ = bench_run
    assert "== line:" in stdout
    assert "engine ceiling:" in stdout
    for path in ("platform", "seed-style"):
        assert path in stdout
    assert "platform/ceiling c=8" in stdout
    assert "model server alone over gRPC" in stdout
    assert "targets (issue 6):" in stdout


def test_writes_results_json_with_every_part(bench_run: tuple[str, Path]) -> None:
    _, out = bench_run
    data: dict[str, Any] = json.loads((out / "results.json").read_text())
    assert {"machine", "run", "workloads", "targets"} <= data.keys()
    assert {"cpu_model", "available_cpus", "python", "tesseract", "date"} <= data["machine"].keys()
    line = data["workloads"]["line"]
    assert {"ceiling", "platform", "seed_style", "ratios", "peak_rss_mb"} <= line.keys()
    assert line["ceiling"]["throughput"] > 0
    for path in ("platform", "seed_style"):
        levels = line[path]["levels"]
        assert [level["concurrency"] for level in levels] == [1, 8, 64]
        for level in levels:
            assert {"throughput", "p50_ms", "p95_ms", "p99_ms", "errors", "usage"} <= level.keys()
            assert {"gateway", "model", "client"} <= level["usage"].keys()
        assert levels[0]["ok"] > 0
    direct = line["model_grpc"]
    assert direct["concurrency"] == 8
    assert direct["ok"] > 0
    assert direct["errors"] == 0
    assert {
        "platform_over_ceiling_c8",
        "platform_over_seed_c8",
        "added_latency_c1_ms",
        "model_grpc_over_ceiling_c8",
    } <= line["ratios"].keys()
    assert data["targets"]
    assert all({"name", "value", "threshold", "met"} <= t.keys() for t in data["targets"])


def test_renders_a_png_chart(bench_run: tuple[str, Path]) -> None:
    _, out = bench_run
    chart = (out / "throughput.png").read_bytes()
    assert chart.startswith(PNG_SIGNATURE)
    assert len(chart) > 10_000


def test_formats_benchmark_runs_and_reports_its_targets(tmp_path: Path) -> None:
    stdout = quick_run("bench.formats", tmp_path)
    assert "all outputs / text+words" in stdout
    assert "rotate=auto / plain" in stdout
    assert "deskew=true / plain" in stdout
    assert "skewed deskew / skewed plain" in stdout
    result: dict[str, Any] = json.loads((tmp_path / "formats.json").read_text())
    assert set(result["median_s"]) == {
        "text+words",
        "all outputs",
        "plain",
        "rotate=auto",
        "deskew=true",
        "skewed plain",
        "skewed deskew",
    }
    assert all(value > 0 for value in result["median_s"].values())
    assert [t["variant"] for t in result["targets"]] == [
        "all outputs",
        "rotate=auto",
        "deskew=true",
        "skewed deskew",
    ]
    assert all(low <= high for low, high in (t["round_ratios"] for t in result["targets"]))
