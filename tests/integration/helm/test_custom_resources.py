"""Custom resources (PodMonitor, ServiceMonitor, PrometheusRule, InferenceService) against their
CRD schemas from tests/data/crd-schemas, made strict so that a misspelt field fails."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft7Validator  # type: ignore[import-untyped, unused-ignore]

from tests.integration.helm.chart import (
    ALL_SCENARIOS,
    CRD_SCHEMAS,
    Helm,
    Manifest,
    Rendered,
    Scenario,
)

pytestmark = pytest.mark.integration

#: (apiVersion, kind) -> schema file, as the folder's README lists them.
SCHEMA_FILES = {
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com/podmonitor_v1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com/servicemonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com/prometheusrule_v1.json",
    (
        "serving.kserve.io/v1beta1",
        "InferenceService",
    ): "serving.kserve.io/inferenceservice_v1beta1.json",
}


def strict(schema: Any) -> Any:
    """A copy that forbids unknown fields wherever the CRD lists the known ones."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@cache
def validator(api_version: str, kind: str) -> Draft7Validator:
    schema = json.loads((CRD_SCHEMAS / SCHEMA_FILES[(api_version, kind)]).read_text())
    return Draft7Validator(strict(schema))


def errors_of(doc: Manifest) -> list[str]:
    found = validator(doc["apiVersion"], doc["kind"]).iter_errors(doc)
    return [f"{'/'.join(map(str, error.path))}: {error.message}" for error in found]


def custom_resources(rendered: Rendered) -> list[Manifest]:
    return [doc for doc in rendered.docs if (doc["apiVersion"], doc["kind"]) in SCHEMA_FILES]


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_custom_resources_match_their_crds(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    for doc in custom_resources(rendered_all[scenario.name]):
        errors = errors_of(doc)
        assert not errors, f"{scenario.name}: {doc['kind']}/{doc['metadata']['name']}: {errors}"


@pytest.mark.parametrize(
    ("mode", "metric"),
    [
        ("Standard", "cpu"),
        ("Standard", "memory"),
        ("RawDeployment", "cpu"),
        ("Knative", "concurrency"),
        ("Serverless", "rps"),
    ],
)
def test_inferenceservice_of_every_deployment_mode_matches_the_crd(
    helm: Helm, mode: str, metric: str
) -> None:
    """Each mode's autoscaling form (autoScaling for an HPA, scaleMetric/scaleTarget for
    Knative) is valid for the CRD in tests/data."""
    rendered = helm.render(
        Scenario(
            f"crd-{mode}-{metric}",
            "ci/inferenceservice-values.yaml",
            (
                f"model.inferenceService.deploymentMode={mode}",
                f"model.inferenceService.scaleMetric={metric}",
            ),
        )
    )
    (isvc,) = rendered.kind("InferenceService")
    assert not errors_of(isvc), errors_of(isvc)


def test_every_custom_kind_is_rendered_somewhere(rendered_all: dict[str, Rendered]) -> None:
    kinds = {doc["kind"] for r in rendered_all.values() for doc in custom_resources(r)}
    assert kinds == {kind for _, kind in SCHEMA_FILES}


@pytest.mark.parametrize(
    ("scenario", "kind", "path"),
    [
        ("production", "PodMonitor", ("spec", "podMetricsEndpoints", 0)),
        ("inferenceservice", "InferenceService", ("spec", "predictor", "containers", 0)),
        ("production", "PrometheusRule", ("spec", "groups", 0, "rules", 0)),
    ],
)
def test_strict_schemas_catch_a_typo(
    rendered_all: dict[str, Rendered], scenario: str, kind: str, path: tuple[str | int, ...]
) -> None:
    doc = copy.deepcopy(rendered_all[scenario].kind(kind)[0])
    node: Any = doc
    for step in path:
        node = node[step]
    node["intervall"] = "15s"
    assert any("intervall" in error for error in errors_of(doc)), "typo not caught"
