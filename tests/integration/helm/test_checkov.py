"""checkov on the rendered manifests of every scenario: no failed check; every skip justified."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.helm.chart import (
    CHART,
    CHECKOV,
    CI_SCENARIOS,
    Rendered,
    Scenario,
    require_tool,
)

pytestmark = pytest.mark.integration

CONFIG = CHART / ".checkov.yaml"


def test_each_skipped_check_has_a_reason() -> None:
    skipped = yaml.safe_load(CONFIG.read_text())["skip-check"]
    lines = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^\s*-\s*(CKV\w+)\s*(?:#\s*(.*))?$", CONFIG.read_text(), re.M)
    }
    assert sorted(lines) == sorted(skipped)
    for check, reason in lines.items():
        assert reason, f"{check}: give a one-line reason after it in {CONFIG.name}"
        assert len(reason) > 30, f"{check}: the reason in {CONFIG.name} is too short"


@pytest.mark.parametrize("scenario", CI_SCENARIOS, ids=lambda s: s.name)
def test_checkov_finds_nothing(
    rendered_all: dict[str, Rendered], scenario: Scenario, tmp_path: Path
) -> None:
    checkov = require_tool(CHECKOV)
    (tmp_path / "manifests.yaml").write_text(rendered_all[scenario.name].text)
    result = subprocess.run(
        [
            str(checkov),
            "-d",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "--config-file",
            str(CONFIG),
            "--skip-download",  # offline: no guidelines or policies from the vendor's API
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"checkov ({scenario.name}):\n{result.stdout}{result.stderr}"
    assert "Failed checks: 0" in result.stdout, result.stdout
