"""Every shell script is shellcheck-clean and answers --help without touching anything.

`--help` runs with stand-ins for every tool a script could change the world with (cluster,
container, package and build tools) placed first on PATH; a stand-in that is called records it,
and the test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

import pytest

pytestmark = pytest.mark.unit

ROOT: Final = Path(__file__).resolve().parents[3]
SCRIPTS: Final = sorted((ROOT / "scripts").glob("*.sh"))
CHECKED: Final = [*SCRIPTS, ROOT / ".ci" / "run"]
#: Commands that change a cluster, an image store, the system or the repository.
SIDE_EFFECT_COMMANDS: Final = (
    "minikube",
    "kind",
    "kubectl",
    "helm",
    "docker",
    "podman",
    "buildah",
    "apt-get",
    "pip",
    "npm",
    "make",
    "git",
    "debootstrap",
    "curl",
    "wget",
)
#: SC2317 ("command appears to be unreachable") is a false positive of shellcheck 0.9 for
#: functions run only by a `trap`, the way every script here stops its child processes.
EXCLUDED: Final = "SC2317"


@pytest.fixture(scope="module")
def shellcheck() -> str:
    path = shutil.which("shellcheck")
    if path is None:
        pytest.fail(
            "shellcheck is not installed: run `make system-deps` (apt-get install shellcheck)"
        )
    return path


def test_there_are_scripts() -> None:
    names = {path.name for path in SCRIPTS}
    assert {"bootstrap-cluster.sh", "demo.sh"} <= names


@pytest.mark.parametrize("script", CHECKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck_clean(shellcheck: str, script: Path) -> None:
    result = subprocess.run(
        [shellcheck, "-x", f"--exclude={EXCLUDED}", str(script.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_exits_0_without_side_effects(script: Path, tmp_path: Path) -> None:
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir()
    calls = tmp_path / "calls.log"
    for command in SIDE_EFFECT_COMMANDS:
        stand_in = stand_ins / command
        stand_in.write_text(f'#!/bin/sh\necho "{command} $*" >> "{calls}"\nexit 97\n')
        stand_in.chmod(0o755)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {"PATH": f"{stand_ins}{os.pathsep}/usr/bin:/bin", "HOME": str(home), "LC_ALL": "C"}

    result = subprocess.run(
        ["bash", str(script), "--help"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )

    assert result.returncode == 0, result.stderr
    assert "usage" in (result.stdout + result.stderr).lower(), "--help prints a usage line"
    assert not calls.exists(), f"--help ran: {calls.read_text()}"
    assert list(work.iterdir()) == [], "--help wrote files"
    assert list(home.iterdir()) == [], "--help wrote files"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_strict_bash(script: Path) -> None:
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
