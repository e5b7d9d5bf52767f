"""The helm binary every test of argocd/ renders with."""

from __future__ import annotations

import pytest

from tests.integration.argocd.manifests import HELM, Helm


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm from `make tools`; a failed test (not a skip) when it is missing."""
    if not HELM.exists():
        pytest.fail(f"{HELM.relative_to(HELM.parents[2])} is missing: run `make tools` first")
    return Helm(HELM, tmp_path_factory.mktemp("helm-home"))
