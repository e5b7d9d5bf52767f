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


def quick_run(module: str, out: Path, *extra: str) -> str:
    """`python -m <module> --quick --out <out> <extra>`; its stdout once it exits 0."""
    run = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--out", str(out), *extra],
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


def test_documents_benchmark_runs_every_part(tmp_path: Path) -> None:
    # OCRmyPDF is a benchmark peer installed by `make bench`, not by `make test`: left out here.
    stdout = quick_run("bench.documents", tmp_path, "--skip-ocrmypdf")
    assert "document / its pages one by one" in stdout
    assert "Tesseract CLI" in stdout
    assert "OCRmyPDF skipped" in stdout
    assert "streamed as NDJSON" in stdout
    result: dict[str, Any] = json.loads((tmp_path / "documents.json").read_text())
    document = result["document"]
    assert document["pages"] == 2
    assert all(value > 0 for value in document["median_s"].values())
    searchable = result["searchable_pdf"]
    assert set(searchable["pages_per_s"]) == {"platform", "Tesseract CLI"}
    # Rendered text, read back from each tool's text layer: both read it nearly perfectly.
    for per_page in searchable["cer_per_page"].values():
        assert len(per_page) == 2
        assert all(value < 0.05 for value in per_page)
    stream = result["stream"]
    assert stream["gateway_peak_mb"] >= stream["gateway_before_mb"] > 0
    assert 0 < stream["median_first_line_s"] <= stream["median_total_s"]
    assert document["first_line_s"] > 0
    assert [t["name"] for t in result["targets"]] == [
        "document / its pages one by one",
        "largest CER difference on a page",
        "gateway peak RSS MB while the long document streams",
        "first NDJSON line - one page's recognition, s",
        "first NDJSON line - one page's recognition, s (scanned pages)",
    ]


def test_admission_benchmark_runs_every_scenario(tmp_path: Path) -> None:
    stdout = quick_run("bench.admission", tmp_path)
    assert "== admission by deadline (default settings) ==" in stdout
    assert "targets (issue 13):" in stdout
    result: dict[str, Any] = json.loads((tmp_path / "admission.json").read_text())
    scenarios = result["scenarios"]
    assert list(scenarios) == [
        "lines-8",
        "lines-64",
        "pages-64",
        "flood-256",
        "uploads-16",
        "uploads-24",
    ]
    assert scenarios["lines-8"]["statuses"].get("200", 0) > 0
    # The model's admission metrics were read back: the estimate has learned something.
    assert scenarios["pages-64"]["metrics"]["ocr_admission_estimate_seconds_per_megapixel"] > 0
    assert [target["name"] for target in result["targets"]] == [
        "lines: throughput 64 / 8 clients",
        "lines: non-200 answers at 64 clients",
        "pages (10 s): 504 answers",
        "pages (10 s): refusal p95 ms",
        "pages (10 s): model + workers peak RSS MiB",
        "pages (10 s): serving process peak RSS MiB",
        "flood (2 s): refusal p95 ms",
        "flood (2 s): Retry-After s, largest",
        "flood (2 s): pages read",
        "flood (2 s): /readyz not 200",
    ]
