"""Paths of the observability files, a YAML loader and a promtool runner for their tests."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

ROOT: Final = Path(__file__).resolve().parents[3]
OBSERVABILITY: Final = ROOT / "observability"
DASHBOARD: Final = OBSERVABILITY / "grafana" / "dashboards" / "ocr-platform.json"
DATASOURCES: Final = OBSERVABILITY / "grafana" / "datasources.yaml"
DASHBOARD_PROVIDERS: Final = OBSERVABILITY / "grafana" / "dashboards.yaml"
PROMETHEUS_DIR: Final = OBSERVABILITY / "prometheus"
ALERTS: Final = PROMETHEUS_DIR / "alerts.yaml"
ALERTS_TEST: Final = PROMETHEUS_DIR / "alerts_test.yaml"
PROMETHEUS_CONFIG: Final = PROMETHEUS_DIR / "prometheus.yml"
COLLECTOR_CONFIG: Final = OBSERVABILITY / "otel-collector" / "config.yaml"
RUNBOOKS: Final = OBSERVABILITY / "runbooks.md"

#: Values for the dashboard's own variables when its queries run against a local Prometheus.
#: `namespace` is the label observability/prometheus/prometheus.yml gives both local targets.
DASHBOARD_VARIABLES: Final = {
    "namespace": "local",
    "gateway_job": "ocr-gateway",
    "model_job": "ocr-model",
}


def load_yaml(path: Path) -> Any:
    """The parsed YAML document of `path` (safe loader: plain data only)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def dump_yaml(document: object, path: Path) -> None:
    """Write `document` to `path` as YAML."""
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def markdown_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of `markdown` (lowercase, punctuation dropped)."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


@dataclass(frozen=True)
class Promtool:
    """The promtool binary, run with a fixed argument list."""

    path: str

    def run(self, *args: str, cwd: Path = ROOT) -> str:
        """Run `promtool args...` in `cwd`; fail the test with its output unless it exits 0."""
        result = subprocess.run(
            [self.path, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
        return output
