"""Render helm/ocr-platform with the pinned helm binary and look into the rendered objects."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import ROOT

CHART = ROOT / "helm" / "ocr-platform"
TOOLS_BIN = ROOT / ".tools" / "bin"
HELM = TOOLS_BIN / "helm"
CHECKOV = TOOLS_BIN / "checkov"
#: JSON Schemas of the custom resources (kubeconform catalog layout), copied into tests/data.
CRD_SCHEMAS = ROOT / "tests" / "data" / "crd-schemas"
RELEASE = "ocr-platform"
NAMESPACE = "ocr"
#: APIs beyond Kubernetes' own that the test cluster offers: the chart renders its PodMonitors,
#: ServiceMonitors and PrometheusRule only where the cluster serves prometheus-operator's API,
#: and `helm template`, which asks no cluster, must be told (as Argo CD tells it a cluster's).
API_VERSIONS = ("monitoring.coreos.com/v1",)

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    """A way of installing the chart: a ci/ values file and/or --set overrides."""

    name: str
    values_file: str | None = None
    sets: tuple[str, ...] = ()

    def args(self) -> list[str]:
        args = ["--values", str(CHART / self.values_file)] if self.values_file else []
        for item in self.sets:
            args += ["--set", item]
        return args


#: The chart's own scenarios: the defaults and each ci/*-values.yaml.
CI_SCENARIOS = (
    Scenario("default"),
    Scenario("minimal", "ci/minimal-values.yaml"),
    Scenario("production", "ci/production-values.yaml"),
    Scenario("inferenceservice", "ci/inferenceservice-values.yaml"),
)
#: More combinations, so that every optional object is rendered and checked somewhere.
EXTRA_SCENARIOS = (
    Scenario(
        "servicemonitor",
        "ci/production-values.yaml",
        (
            "observability.podMonitor.enabled=false",
            "observability.serviceMonitor.enabled=true",
            "gateway.service.type=NodePort",
        ),
    ),
    Scenario(
        "inferenceservice-servicemonitor",
        "ci/inferenceservice-values.yaml",
        (
            "observability.podMonitor.enabled=false",
            "observability.serviceMonitor.enabled=true",
            "observability.prometheusRule.enabled=true",
            "observability.prometheusRule.runbookBaseUrl=https://runbooks.example.com/ocr",
            "model.inferenceService.deploymentMode=Knative",
            "model.inferenceService.scaleMetric=concurrency",
            "model.inferenceService.scaleTarget=4",
        ),
    ),
)
ALL_SCENARIOS = CI_SCENARIOS + EXTRA_SCENARIOS


def require_tool(path: Path) -> Path:
    """The tool at `path`, or a test failure that says how to install it."""
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"{path.relative_to(ROOT)} is missing: run `make tools` "
            "(bash scripts/install-tools.sh .tools)",
            pytrace=False,
        )
    return path


@dataclass
class Helm:
    """The pinned helm binary with its cache, config and data kept in a temporary home."""

    home: Path
    binary: Path = field(default_factory=lambda: require_tool(HELM))

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def template(
        self, *args: str, api_versions: Sequence[str] = API_VERSIONS
    ) -> subprocess.CompletedProcess[str]:
        apis = [flag for api in api_versions for flag in ("--api-versions", api)]
        return self.run("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *apis, *args)

    def render(self, scenario: Scenario, api_versions: Sequence[str] = API_VERSIONS) -> Rendered:
        result = self.template(*scenario.args(), api_versions=api_versions)
        assert result.returncode == 0, f"helm template ({scenario.name}):\n{result.stderr}"
        return Rendered(scenario, result.stdout)


@dataclass(frozen=True)
class Rendered:
    """The manifests of one scenario, as text (for scanners) and as objects."""

    scenario: Scenario
    text: str

    @cached_property
    def docs(self) -> list[Manifest]:
        """The objects, parsed once; copy one before changing it."""
        return [doc for doc in yaml.safe_load_all(self.text) if doc]

    def kind(self, kind: str) -> list[Manifest]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name: str) -> Manifest:
        found = [doc for doc in self.kind(kind) if doc["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.scenario.name}: expected one {kind}/{name}, got {found}"
        return found[0]


@dataclass(frozen=True)
class PodSpec:
    """A pod spec found in a rendered object, with where it came from."""

    owner: str
    spec: Manifest
    is_test: bool


def pod_specs(rendered: Rendered) -> Iterator[PodSpec]:
    """Pod specs of Deployments, InferenceService predictors and bare Pods (the helm test)."""
    for doc in rendered.docs:
        owner = f"{rendered.scenario.name}: {doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Deployment":
            yield PodSpec(owner, doc["spec"]["template"]["spec"], False)
        elif doc["kind"] == "InferenceService":
            yield PodSpec(owner, doc["spec"]["predictor"], False)
        elif doc["kind"] == "Pod":
            yield PodSpec(owner, doc["spec"], True)


def kserve_predictor_labels(isvc_name: str) -> dict[str, str]:
    """Labels KServe puts on every predictor pod besides predictor.labels, in both deployment
    modes (kserve/kserve pkg/controller/v1beta1/inferenceservice/components/predictor.go,
    buildObjectMeta, 0.16-0.20)."""
    return {"serving.kserve.io/inferenceservice": isvc_name, "component": "predictor"}


def pod_labels(doc: Manifest) -> dict[str, str]:
    """Labels the pods of a Deployment, InferenceService predictor (with KServe's own) or Pod
    carry."""
    if doc["kind"] == "Deployment":
        labels: dict[str, str] = doc["spec"]["template"]["metadata"]["labels"]
    elif doc["kind"] == "InferenceService":
        labels = {
            **doc["spec"]["predictor"]["labels"],
            **kserve_predictor_labels(doc["metadata"]["name"]),
        }
    else:
        labels = doc["metadata"]["labels"]
    return labels


def env_of(container: Manifest) -> dict[str, str]:
    """A container's literal environment (valueFrom entries are left out)."""
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def values(scenario: Scenario) -> Manifest:
    """values.yaml merged with the scenario's values file (no --set; enough for what tests ask)."""
    merged: Manifest = yaml.safe_load((CHART / "values.yaml").read_text())
    if scenario.values_file:
        _merge(merged, yaml.safe_load((CHART / scenario.values_file).read_text()))
    return merged


def _merge(base: Manifest, override: Manifest) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
