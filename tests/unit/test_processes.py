"""tests.support.processes: stopping a service stops its whole process group, children too.

A script such as scripts/run-local.sh starts children; stopping only the script would leave
them running. Each test starts a small bash group, waits until its children exist, stops it and
checks that no process of the group is left.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.processes import Service, group_alive, start, wait_until

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def group_members(pgid: int) -> set[int]:
    """PIDs of the processes in group `pgid` right now (from /proc)."""
    members: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    members.add(int(entry))
            except ProcessLookupError:
                continue
    return members


def start_group(tmp_path: Path, script: str, size: int) -> Service:
    """Run `bash -c script` via `start()`; return once its group has `size` processes."""
    service = start(["bash", "-c", script], {}, tmp_path / "group.log")
    try:
        wait_until(lambda: len(group_members(service.pgid)) >= size, 10, f"{size} processes")
    except TimeoutError:
        service.stop(signal.SIGKILL)
        raise
    return service


def assert_group_gone(pgid: int, members: set[int]) -> None:
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert not group_alive(pgid)
    assert not group_members(pgid)
    for pid in members:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_stop_ends_the_leader_and_its_children(tmp_path: Path) -> None:
    service = start_group(tmp_path, "sleep 60 & sleep 60 & wait", 3)
    members = group_members(service.pgid)
    assert service.process.pid in members
    assert service.stop() == -signal.SIGTERM
    assert_group_gone(service.pgid, members)


def test_stop_with_sigint_like_the_platform_fixtures(tmp_path: Path) -> None:
    # Background jobs of a non-interactive shell ignore SIGINT, as the children of
    # scripts/run-local.sh do; the script's trap would TERM them, this script has none.
    service = start_group(tmp_path, "sleep 60 & sleep 60 & wait", 3)
    members = group_members(service.pgid)
    service.stop(signal.SIGINT, timeout_s=0.5)
    assert_group_gone(service.pgid, members)


def test_children_that_ignore_the_signal_are_killed_after_the_timeout(tmp_path: Path) -> None:
    service = start_group(tmp_path, "trap '' TERM; sleep 60 & sleep 60 & wait", 3)
    members = group_members(service.pgid)
    assert service.stop(timeout_s=0.5) == -signal.SIGKILL
    assert_group_gone(service.pgid, members)


def test_children_left_behind_by_an_exited_leader_are_stopped(tmp_path: Path) -> None:
    service = start_group(tmp_path, "trap '' TERM; sleep 60 & sleep 60 & exit 3", 2)
    wait_until(lambda: not service.alive(), 10, "the leader to exit")
    members = group_members(service.pgid) - {service.process.pid}
    assert len(members) == 2  # orphans, still in the group
    assert service.stop(timeout_s=0.5) == 3
    assert_group_gone(service.pgid, members)
