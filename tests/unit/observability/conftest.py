"""Fixtures of the observability tests: the promtool binary, or a skip when it is absent."""

from __future__ import annotations

import shutil

import pytest

from tests.unit.observability.helpers import Promtool


@pytest.fixture(scope="session")
def promtool() -> Promtool:
    """promtool from PATH; CI installs it (`apt-get install prometheus`)."""
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool is not installed (apt-get install --no-install-recommends prometheus)"
        )
    return Promtool(path)
