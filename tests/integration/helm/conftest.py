"""Fixtures of the chart tests: helm in a private home, and every scenario rendered once."""

from __future__ import annotations

import pytest

from tests.integration.helm.chart import ALL_SCENARIOS, Helm, Rendered


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def rendered_all(helm: Helm) -> dict[str, Rendered]:
    """Every scenario's manifests, by scenario name."""
    return {scenario.name: helm.render(scenario) for scenario in ALL_SCENARIOS}
