"""Every built-in object of every scenario against the Kubernetes 1.30 OpenAPI schemas (strict)."""

from __future__ import annotations

import kubernetes_validate  # type: ignore[import-untyped, unused-ignore]
import pytest

from tests.integration.helm.chart import ALL_SCENARIOS, Rendered, Scenario

pytestmark = pytest.mark.integration

KUBERNETES_VERSION = "1.30"
#: API groups of custom resources: test_custom_resources.py checks those against their CRDs.
CUSTOM_GROUPS = ("monitoring.coreos.com/", "serving.kserve.io/")


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_builtin_objects_match_kubernetes_schemas(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    checked = 0
    for doc in rendered_all[scenario.name].docs:
        if doc["apiVersion"].startswith(CUSTOM_GROUPS):
            continue
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{scenario.name}: {where}: {error.message} at {list(error.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{scenario.name}: {where}: no Kubernetes schema for {doc['apiVersion']}")
        checked += 1
    assert checked >= 5, f"{scenario.name}: only {checked} built-in objects rendered"


def test_strict_validation_catches_a_typo(rendered_all: dict[str, Rendered]) -> None:
    """The check above would notice a misspelt field (strict schemas forbid unknown fields)."""
    deployment = rendered_all["default"].kind("Deployment")[0]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
