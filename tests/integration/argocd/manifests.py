"""Render and read argocd/: the app-of-apps chart (real helm), values files, CRD schemas."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

ROOT: Final = Path(__file__).resolve().parents[3]
ARGOCD: Final = ROOT / "argocd"
APPS_CHART: Final = ARGOCD / "apps"
STACK: Final = ARGOCD / "stack"
ENVIRONMENTS: Final = ARGOCD / "environments"
ARGO_CD_VALUES: Final = ARGOCD / "bootstrap" / "argo-cd.yaml"
PLATFORM_CHART: Final = ROOT / "helm" / "ocr-platform"
HELM: Final = ROOT / ".tools" / "bin" / "helm"
CRD_SCHEMAS: Final = ROOT / "tests" / "data" / "crd-schemas"
BOOTSTRAP_SCRIPT: Final = ROOT / "scripts" / "bootstrap-cluster.sh"

ARGO_GROUP: Final = "argoproj.io"
ARGO_KINDS: Final = {
    "Application": "application",
    "AppProject": "appproject",
    "ApplicationSet": "applicationset",
}

_QUANTITY: Final = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$")
_FACTORS: Final = {
    None: 1 / 2**20,
    "Ki": 1 / 1024,
    "Mi": 1.0,
    "Gi": 1024.0,
    "K": 1e3 / 2**20,
    "M": 1e6 / 2**20,
    "G": 1e9 / 2**20,
}


def load_yaml(path: Path) -> Any:
    """The single YAML document of `path` (safe loader)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def mebibytes(quantity: str | int) -> float:
    """A Kubernetes memory quantity (`448Mi`, `1Gi`, `1G`, bytes) in MiB."""
    match = _QUANTITY.match(str(quantity))
    if match is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return float(match.group(1)) * _FACTORS[match.group(2)]


@dataclass(frozen=True)
class Helm:
    """The helm binary of `make tools`, with its cache, config and data kept in a temp dir."""

    binary: Path
    home: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `helm args...` from the repository root; the caller checks the exit code."""
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        return subprocess.run(
            [str(self.binary), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def template(self, *args: str) -> list[dict[str, Any]]:
        """`helm template args...`; the rendered documents, or a failed test with helm's error."""
        result = self.run("template", *args)
        if result.returncode != 0:
            raise AssertionError(f"helm template {' '.join(args)} failed:\n{result.stderr}")
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def render_apps(self, *sets: str) -> list[dict[str, Any]]:
        """argocd/apps rendered as Argo CD (and the bootstrap script) render it."""
        flags = [flag for item in sets for flag in ("--set-string", item)]
        return self.template("ocr-platform-apps", str(APPS_CHART), "-n", "argocd", *flags)


def applications(docs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The Application documents of `docs`."""
    return [doc for doc in docs if doc.get("kind") == "Application"]


def the_project(docs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The single AppProject of `docs`."""
    projects = [doc for doc in docs if doc.get("kind") == "AppProject"]
    assert len(projects) == 1, f"expected one AppProject, found {len(projects)}"
    return projects[0]


def sources(app: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The sources of an Application, single-source or multi-source."""
    spec = app["spec"]
    return list(spec["sources"]) if "sources" in spec else [spec["source"]]


def sync_wave(doc: Mapping[str, Any]) -> int:
    """The argocd.argoproj.io/sync-wave of a resource (0 when unset, as Argo CD reads it)."""
    annotations = doc.get("metadata", {}).get("annotations") or {}
    return int(annotations.get("argocd.argoproj.io/sync-wave", "0"))


def strict(schema: Any) -> Any:
    """A copy of `schema` where every object with `properties` (and no
    x-kubernetes-preserve-unknown-fields) refuses unknown keys, so a typo fails validation."""
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
                and "additionalProperties" not in node
            ):
                node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return schema


def crd_schema(kind: str, version: str) -> dict[str, Any]:
    """The strict JSON schema of an argoproj.io custom resource from tests/data/crd-schemas."""
    path = CRD_SCHEMAS / ARGO_GROUP / f"{ARGO_KINDS[kind]}_{version}.json"
    schema: dict[str, Any] = strict(json.loads(path.read_text(encoding="utf-8")))
    return schema


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (key path, value) pair of a nested mapping, depth first, lists left whole."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, str(key)), value
            yield from walk(value, (*path, str(key)))


def get_path(node: Any, path: Sequence[str]) -> Any:
    """The value at `path` in nested mappings (KeyError when absent)."""
    for key in path:
        node = node[key]
    return node


def override_paths(overrides: Any, defaults: Any, path: tuple[str, ...] = ()) -> list[str]:
    """Key paths of `overrides` that `defaults` does not have. A default that is not a
    non-empty mapping (a scalar, a list, `{}`) is a leaf: anything may go under it."""
    missing: list[str] = []
    if not isinstance(overrides, dict):
        return missing
    for key, value in overrides.items():
        here = (*path, str(key))
        if not isinstance(defaults, dict) or key not in defaults:
            missing.append(".".join(here))
        elif isinstance(defaults[key], dict) and defaults[key]:
            missing.extend(override_paths(value, defaults[key], here))
    return missing


def stack_values(name: str) -> Any:
    """Parsed argocd/stack/<name>.yaml."""
    return load_yaml(STACK / f"{name}.yaml")


def pinned_chart_versions() -> dict[str, str]:
    """Upstream chart name -> version, from argocd/apps/values.yaml and bootstrap-cluster.sh."""
    values = load_yaml(APPS_CHART / "values.yaml")
    versions = {name: str(chart["version"]) for name, chart in values["charts"].items()}
    script = BOOTSTRAP_SCRIPT.read_text(encoding="utf-8")
    match = re.search(r'^ARGO_CD_CHART_VERSION="([^"]*)"', script, flags=re.MULTILINE)
    versions["argo-cd"] = match.group(1) if match else ""
    return versions
