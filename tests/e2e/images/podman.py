"""A self-contained podman for the image tests: state under one directory, containers by name.

`Podman.prepare(state_dir)` runs scripts/podman-setup.sh (containers.conf, storage.conf and the
debootstrapped `debian:bookworm-slim` stand-in, all in `state_dir`); every later call runs
`podman` with that configuration only, so the host's own podman storage is never touched.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import ROOT

SETUP_SCRIPT = ROOT / "scripts" / "podman-setup.sh"
BUILD_SCRIPT = ROOT / "scripts" / "build-images.sh"
#: Prefix of every container these tests start; leftovers of a killed run are removed by it.
NAME_PREFIX = "ocr-e2e-"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
#: The container's only writable directory (a tmpfs of the container, not the host's /tmp).
CONTAINER_TMP = "/tmp"  # noqa: S108


@dataclass(frozen=True)
class Podman:
    """`podman` bound to the configuration files that scripts/podman-setup.sh wrote."""

    state_dir: Path
    env: Mapping[str, str]

    @classmethod
    def prepare(cls, state_dir: Path, timeout_s: float = 600) -> Podman:
        """Run the setup script (idempotent) and read the `export` lines it prints."""
        result = subprocess.run(
            ["bash", str(SETUP_SCRIPT), str(state_dir)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(f"podman-setup.sh failed:\n{result.stdout}\n{result.stderr}")
        exported: dict[str, str] = {}
        for line in result.stdout.splitlines():
            words = shlex.split(line)
            if len(words) == 2 and words[0] == "export":
                name, _, value = words[1].partition("=")
                exported[name] = value
        assert {"CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"} <= exported.keys(), result.stdout
        return cls(state_dir, {**os.environ, **exported})

    def run(
        self, *args: str, timeout_s: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`podman ARGS`, output captured as text."""
        result = subprocess.run(
            ["podman", *args],
            env=dict(self.env),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"podman {shlex.join(args)} failed:\n{result.stderr}")
        return result

    def image_id(self, image: str) -> str | None:
        """ID of a local image, None when there is none."""
        result = self.run("image", "inspect", "--format", "{{.Id}}", image, check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def remove_leftover_containers(self) -> None:
        """Remove, by ID, containers of an earlier run of these tests that was killed."""
        listed = self.run("ps", "--all", "--quiet", "--filter", f"name=^{NAME_PREFIX}")
        for container_id in listed.stdout.split():
            self.run("rm", "--force", "--time", "0", container_id, check=False)

    def ca_build_flags(self) -> list[str]:
        """Build flags giving pip the host's CA bundle (TLS-intercepting proxies); none without."""
        if not HOST_CA_BUNDLE.is_file():
            return []
        pip_conf = self.state_dir / "pip.conf"
        pip_conf.write_text("[global]\ncert = /run/host-ca.crt\n")
        return [
            "--volume",
            f"{HOST_CA_BUNDLE}:/run/host-ca.crt:ro",
            "--volume",
            f"{pip_conf}:/etc/pip.conf:ro",
        ]

    def build_images(self, tag: str, log: Path, timeout_s: float = 1500) -> dict[str, str]:
        """scripts/build-images.sh with this podman; {"gateway": image, "model": image}."""
        env = {**self.env, "CONTAINER_ENGINE": "podman", "TAG": tag}
        env.pop("REGISTRY", None)
        with log.open("w") as stderr:
            result = subprocess.run(
                ["bash", str(BUILD_SCRIPT), "--", "--network=host", *self.ca_build_flags()],
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                timeout=timeout_s,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        if result.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise RuntimeError(f"build-images.sh failed ({result.returncode}):\n{tail}")
        images: dict[str, str] = {}
        for name in result.stdout.split():  # e.g. ocr-gateway:TAG, REGISTRY/ocr-model:TAG
            repository = name.rsplit(":", 1)[0].rsplit("/", 1)[-1]
            images[repository.removeprefix("ocr-")] = name
        assert images.keys() == {"gateway", "model"}, result.stdout
        return images

    def start(
        self,
        image: str,
        env: Mapping[str, str],
        log: Path,
        init: bool = True,
        options: Sequence[str] = (),
    ) -> Container:
        """`podman run --rm` in the foreground (its exit status is the container's), with a
        read-only root filesystem and a writable /tmp only, as a hardened pod runs it, and
        `options` (e.g. `--memory=1g`)."""
        name = f"{NAME_PREFIX}{uuid.uuid4().hex[:10]}"
        args = ["podman", "run", "--rm", "--name", name, "--network=host", *options]
        args += ["--init"] if init else []
        args += ["--read-only", "--tmpfs", CONTAINER_TMP]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        handle = log.open("wb")
        process = subprocess.Popen(
            [*args, image],
            env=dict(self.env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        handle.close()
        return Container(self, name, process, log)


@dataclass
class Container:
    """A container started by `Podman.start`; stop it by name."""

    podman: Podman
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_seconds: float = field(default=0.0)

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        """`podman exec NAME COMMAND` (as the image's user)."""
        return self.podman.run("exec", self.name, *command, check=False)

    def stop(self, grace_s: int = 30) -> int:
        """`podman stop -t grace_s` (SIGTERM, SIGKILL after grace_s); the container's exit code."""
        started = time.monotonic()
        self.podman.run("stop", "--time", str(grace_s), self.name, timeout_s=grace_s + 60)
        code = self.process.wait(timeout=60)
        self.stop_seconds = time.monotonic() - started
        return code

    def remove(self) -> None:
        """Teardown: make sure the container is gone, whatever state it is in."""
        if self.alive():
            self.podman.run("rm", "--force", "--time", "5", self.name, check=False)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
