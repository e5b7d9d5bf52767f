"""scripts/build-images.sh against a stand-in engine: names, tags, labels, pass-through, push.

The stand-in `docker` / `podman` records each call and succeeds, so these checks need no engine;
the real builds are proven by test_images.py.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import ROOT

pytestmark = pytest.mark.unit

SCRIPT = ROOT / "scripts" / "build-images.sh"


@dataclass(frozen=True)
class Run:
    """One run of the script: its result and the engine calls it made, split into words."""

    result: subprocess.CompletedProcess[str]
    calls: list[list[str]]

    def builds(self) -> list[list[str]]:
        return [c[1:] for c in self.calls if c[1] == "build"]

    def pushes(self) -> list[str]:
        return [c[2] for c in self.calls if c[1] == "push"]


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def run_script(
    tmp_path: Path, *args: str, engines: tuple[str, ...] = ("podman",), **env: str
) -> Run:
    """Run the script with stand-in engines first on PATH and only `env` set besides."""
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir(exist_ok=True)
    calls = tmp_path / "calls.log"
    for engine in engines:
        path = stand_ins / engine
        # One record per call: the engine and its arguments NUL-separated, then a newline.
        path.write_text(
            f'#!/bin/sh\nprintf "%s\\0" {engine} "$@" >> "{calls}"\necho >> "{calls}"\n'
        )
        path.chmod(0o755)
    result = subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={"PATH": f"{stand_ins}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    recorded = calls.read_text().split("\0\n") if calls.exists() else []
    return Run(result, [line.split("\0") for line in recorded if line])


def test_defaults_tag_with_the_short_commit_and_label_the_full_one(tmp_path: Path) -> None:
    run = run_script(tmp_path)
    assert run.result.returncode == 0, run.result.stderr
    tag = git("rev-parse", "--short", "HEAD")
    assert run.result.stdout.split() == [f"ocr-gateway:{tag}", f"ocr-model:{tag}"]
    gateway, model = run.builds()
    assert gateway[:5] == ["build", "-f", "gateway/Dockerfile", "-t", f"ocr-gateway:{tag}"]
    assert model[:5] == ["build", "-f", "model/Dockerfile", "-t", f"ocr-model:{tag}"]
    assert gateway[-1] == model[-1] == "."
    assert f"REVISION={git('rev-parse', 'HEAD')}" in gateway
    assert run.pushes() == []


def test_registry_tag_push_and_pass_through(tmp_path: Path) -> None:
    flags = ["--network=host", "-v", "/etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro"]
    run = run_script(tmp_path, "--push", "--", *flags, REGISTRY="localhost:5000/", TAG="v1")
    assert run.result.returncode == 0, run.result.stderr
    expected = ["localhost:5000/ocr-gateway:v1", "localhost:5000/ocr-model:v1"]
    assert run.result.stdout.split() == expected
    for build in run.builds():
        assert build[-1 - len(flags) : -1] == flags
    assert run.pushes() == expected


def test_push_needs_a_registry(tmp_path: Path) -> None:
    run = run_script(tmp_path, "--push", TAG="v1")
    assert run.result.returncode == 2
    assert "REGISTRY" in run.result.stderr


def test_only_one_component_and_base_image(tmp_path: Path) -> None:
    base = "debian:bookworm-slim@sha256:" + "0" * 64
    run = run_script(tmp_path, "--only", "model", TAG="t", BASE_IMAGE=base)
    assert run.result.returncode == 0, run.result.stderr
    (build,) = run.builds()
    assert build[2] == "model/Dockerfile"
    assert f"BASE_IMAGE={base}" in build


@pytest.mark.parametrize(
    ("engines", "chosen"), [(("podman",), "podman"), (("docker", "podman"), "docker")]
)
def test_engine_is_whichever_exists(tmp_path: Path, engines: tuple[str, ...], chosen: str) -> None:
    run = run_script(tmp_path, engines=engines, TAG="t")
    assert run.result.returncode == 0, run.result.stderr
    assert {call[0] for call in run.calls} == {chosen}


def test_container_engine_variable_wins(tmp_path: Path) -> None:
    run = run_script(tmp_path, engines=("docker", "podman"), TAG="t", CONTAINER_ENGINE="podman")
    assert {call[0] for call in run.calls} == {"podman"}


def test_unknown_argument_fails(tmp_path: Path) -> None:
    run = run_script(tmp_path, "--bogus")
    assert run.result.returncode == 2
    assert run.calls == []
