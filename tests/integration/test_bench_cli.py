"""`python -m bench.cli --quick` runs end to end: 3 images through the platform's own benchmark
client and through `ocr --jobs 8` (and `--grpc`), a table printed and cli.json written.

A smoke test of the harness only: 3 images say nothing about speed (`make bench` runs 50).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_cli_benchmark_prints_both_figures_and_the_ratio(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.cli", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert "platform benchmark (c=8)" in run.stdout
    assert "ocr --jobs 8 (its clock)" in run.stdout
    assert "ocr --grpc" in run.stdout
    assert "ocr / platform:" in run.stdout
    result: dict[str, Any] = json.loads((tmp_path / "cli.json").read_text())
    assert result["images"] == 3
    assert result["jobs"] == 8
    assert set(result["median_images_per_s"]) == {"platform", "ocr", "ocr wall", "ocr --grpc"}
    assert all(value > 0 for value in result["median_images_per_s"].values())
    assert result["ratio"] > 0
    assert result["target"] == 0.9
