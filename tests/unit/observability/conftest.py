"""Fixtures of the observability tests: the promtool binary `make test` installs."""

from __future__ import annotations

import shutil

import pytest

from tests.unit.observability.helpers import Promtool


@pytest.fixture(scope="session")
def promtool() -> Promtool:
    """promtool from PATH; CI installs it (`apt-get install prometheus`)."""
    path = shutil.which("promtool")
    # `make test` installs it (scripts/install-system-deps.sh): its absence is a broken setup.
    assert path is not None, "promtool is missing: run `make system-deps` (Debian's prometheus)"
    return Promtool(path)
