"""Render and read argocd/: the app-of-apps chart (real helm), values files, CRD schemas, and
the Applications' charts inflated as Argo CD inflates them (upstream charts from
tests/data/upstream-charts)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without libyaml: the same, slower
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

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
#: The upstream charts argocd/apps pins, packaged (see the README there): no chart repository is
#: needed to render them.
UPSTREAM_CHARTS: Final = ROOT / "tests" / "data" / "upstream-charts"

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


class _KubernetesLoader(_BaseLoader):
    """The safe loader without YAML 1.1's `value` type, which makes a bare `=` unloadable
    (prometheus-operator's CRDs list `=` in an enum); Kubernetes reads it as a string."""


_KubernetesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


def load_documents(text: str) -> list[dict[str, Any]]:
    """The non-empty documents of a multi-document YAML stream (helm's output)."""
    return [doc for doc in yaml.load_all(text, Loader=_KubernetesLoader) if doc]


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
        return load_documents(result.stdout)

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


# --- Applications inflated as Argo CD inflates them --------------------------------------------

#: Keys of an Application source's `helm` that `argo_cd_template_args` turns into helm flags.
_HELM_KEYS: Final = {
    "releaseName",
    "namespace",
    "valueFiles",
    "ignoreMissingValueFiles",
    "values",
    "valuesObject",
    "parameters",
    "skipCrds",
    "kubeVersion",
    "apiVersions",
}


def packaged_charts(folder: Path = UPSTREAM_CHARTS) -> dict[tuple[str, str], Path]:
    """(chart name, chart version) -> .tgz of `folder`, read from each archive's Chart.yaml."""
    charts: dict[tuple[str, str], Path] = {}
    for archive in sorted(folder.glob("*.tgz")):
        meta = yaml.safe_load(chart_file(archive, "Chart.yaml"))
        charts[(str(meta["name"]), str(meta["version"]))] = archive
    return charts


def chart_file(archive: Path, name: str) -> str:
    """The text of `name` (e.g. values.yaml) in the top folder of a packaged chart."""
    with tarfile.open(archive) as tar:
        top = [m for m in tar.getmembers() if m.name.partition("/")[2] == name]
        assert len(top) == 1, f"{archive.name}: expected one <chart>/{name}"
        member = tar.extractfile(top[0])
        assert member is not None
        return member.read().decode("utf-8")


def chart_of(app: Mapping[str, Any], charts: Mapping[tuple[str, str], Path]) -> Path:
    """What helm renders for an Application: its chart from `charts` (by the pinned name and
    version), or its path in this repository. A failed test when the pinned version is missing."""
    (source,) = [s for s in sources(app) if "ref" not in s]
    if "chart" not in source:
        return ROOT / str(source["path"])
    key = (str(source["chart"]), str(source["targetRevision"]))
    if key not in charts:
        packaged = sorted(f"{name} {version}" for name, version in charts)
        raise AssertionError(
            f"Application {app['metadata']['name']} pins chart {key[0]} {key[1]} "
            f"({source['repoURL']}), and {UPSTREAM_CHARTS.relative_to(ROOT)} has no package of "
            f"that version (it has: {', '.join(packaged)}). Either the version does not exist "
            "upstream (check the repository's index.yaml or tags) or its .tgz was not added: "
            f"see {UPSTREAM_CHARTS.relative_to(ROOT)}/README.md."
        )
    return charts[key]


def argo_cd_template_args(
    app: Mapping[str, Any], *, kube_version: str, api_versions: Sequence[str], workdir: Path
) -> list[str]:
    """The `helm template` arguments (after the chart) Argo CD uses for a Helm Application:
    release name, destination namespace, the value files in order (`$ref/` resolved to this
    repository, missing ones skipped with ignoreMissingValueFiles), then values/valuesObject,
    then parameters (Argo CD's precedence), the cluster's version and API versions, and the CRDs
    (Argo CD passes --include-crds unless skipCrds). An unhandled `helm` key fails the test."""
    name = str(app["metadata"]["name"])
    (source,) = [s for s in sources(app) if "ref" not in s]
    refs = {str(s["ref"]) for s in sources(app) if "ref" in s}
    helm: Mapping[str, Any] = source.get("helm") or {}
    unknown = set(helm) - _HELM_KEYS
    assert not unknown, f"{name}: the test does not know how Argo CD applies helm.{unknown}"
    namespace = helm.get("namespace") or app["spec"]["destination"]["namespace"]
    args = [str(helm.get("releaseName") or name), "--namespace", str(namespace)]
    for value_file in helm.get("valueFiles") or []:
        ref, _, rest = str(value_file).partition("/")
        assert ref.startswith("$"), f"{name}: {value_file} is not read from a ref source"
        assert ref[1:] in refs, f"{name}: {value_file} names no ref source"
        path = ROOT / rest
        if path.is_file():
            args += ["--values", str(path)]
        else:
            assert helm.get("ignoreMissingValueFiles"), f"{name}: {value_file} is missing"
    inline = helm.get("valuesObject")
    if inline is None and helm.get("values"):
        inline = yaml.safe_load(str(helm["values"]))
    if inline:
        path = workdir / f"{name}-inline-values.yaml"
        path.write_text(yaml.safe_dump(inline), encoding="utf-8")
        args += ["--values", str(path)]
    for parameter in helm.get("parameters") or []:
        flag = "--set-string" if parameter.get("forceString") else "--set"
        args += [flag, f"{parameter['name']}={parameter['value']}"]
    args += ["--kube-version", str(helm.get("kubeVersion") or kube_version)]
    for api_version in helm.get("apiVersions") or api_versions:
        args += ["--api-versions", str(api_version)]
    if not helm.get("skipCrds"):
        args.append("--include-crds")
    return args
