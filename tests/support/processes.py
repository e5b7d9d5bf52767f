"""Start real service processes on free loopback ports and poll them until ready."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_ok(url: str) -> bool:
    """True when GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1
) -> None:
    """Poll `check` until it is true; fail with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f}s")


#: How long the members of a process group get to vanish after SIGKILL (they cannot refuse it).
KILL_WAIT_S = 10.0


def group_alive(pgid: int) -> bool:
    """True while any process of group `pgid` exists (an unreaped zombie counts)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def signal_group(pgid: int, sig: int) -> None:
    """Send `sig` to every process of group `pgid`; a group already gone is no error."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def living_members(pgid: int) -> list[int]:
    """PIDs of the processes of group `pgid` that still run (not zombies), from /proc."""
    living: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            living.append(int(entry))
    return living


def _wait_group_gone(pgid: int, timeout_s: float) -> bool:
    """Poll until group `pgid` has no process left; False if it still has one at `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


@dataclass
class Service:
    """A process we started as the leader of its own process group (its children join it)."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pgid(self) -> int:
        """The process group: `start()` makes the process a session leader, so its own PID."""
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send `sig` to the whole process group and wait until every process of it has exited.

        Whatever is still running after `timeout_s` (the leader or a child it left behind) gets
        SIGKILL, so when this returns no process of the group is alive. Returns the leader's
        exit code.
        """
        deadline = time.monotonic() + timeout_s
        signal_group(self.pgid, sig)
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            signal_group(self.pgid, signal.SIGKILL)
            code = self.process.wait()
        # The leader is reaped; children it did not wait for get what is left of the timeout.
        if not _wait_group_gone(self.pgid, max(0.0, deadline - time.monotonic())):
            signal_group(self.pgid, signal.SIGKILL)
            # Orphans are reaped by init, which can take a moment; zombies are dead already.
            if not _wait_group_gone(self.pgid, KILL_WAIT_S) and living_members(self.pgid):
                raise RuntimeError(f"process group {self.pgid} survived SIGKILL")
        return code

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(args: list[str], env: Mapping[str, str], log: Path) -> Service:
    """Start `args` with `env` added to ours, output to `log`, in its own process group."""
    handle = log.open("wb")
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle.close()
    return Service(process, log)


def python_module(module: str) -> list[str]:
    """Command line running `python -m module` with this interpreter."""
    return [sys.executable, "-m", module]


def settings_refusal(module: str, env: Mapping[str, str]) -> str:
    """Run `python -m module` with `env` added to ours, expecting it to refuse its settings at
    once: exit status 2, nothing on stdout, one line on stderr (returned), no traceback."""
    run = subprocess.run(
        python_module(module),
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert "Traceback" not in run.stderr
    return lines[0]
