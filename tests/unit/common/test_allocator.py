"""glibc's allocator as the services tune it (`common.allocator`): freed uploads of a few MiB go
back to the system instead of staying in the process, and glibc's own variables win."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import textwrap

import pytest

from tests.support.processes import ROOT

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only"),
]

MIB = 1024 * 1024

#: In a fresh interpreter: free an 8 MiB chunk (at glibc's defaults that lifts the size under
#: which chunks come from the heap past 3 MiB), then hold thirty 3 MiB "uploads" between small
#: long-lived buffers, free the uploads, and report what the process kept of them.
_PROGRAM = textwrap.dedent(
    """
    import json, sys
    import psutil
    from common.allocator import tune_allocator

    applied = tune_allocator(json.loads(sys.argv[1])) if sys.argv[2] == "tune" else {}
    process = psutil.Process()
    first = b"a" * (8 << 20)
    del first
    before = process.memory_info().rss
    uploads, kept = [], []
    for _ in range(30):
        uploads.append(b"u" * (3 << 20))
        kept.append(bytearray(4000))
    del uploads
    print(json.dumps({"applied": applied, "kept": process.memory_info().rss - before}))
    """
)


def run(tune: bool, environ: dict[str, str] | None = None) -> dict[str, object]:
    env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_* variable from ours
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, json.dumps(environ or {}), "tune" if tune else "no"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_freed_uploads_go_back_to_the_system_once_tuned() -> None:
    untuned, tuned = run(tune=False), run(tune=True)
    assert tuned["applied"] == {"MALLOC_ARENA_MAX": 2, "MALLOC_MMAP_THRESHOLD_": MIB}
    assert isinstance(untuned["kept"], int)
    assert isinstance(tuned["kept"], int)
    assert untuned["kept"] > 60 * MIB  # what glibc's defaults keep of 90 MiB freed
    assert tuned["kept"] < 10 * MIB


def test_a_variable_glibc_reads_itself_wins() -> None:
    tuned = run(tune=True, environ={"MALLOC_ARENA_MAX": "4"})
    assert tuned["applied"] == {"MALLOC_MMAP_THRESHOLD_": MIB}
