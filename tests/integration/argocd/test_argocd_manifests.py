"""argocd/ renders with the real helm into valid Argo CD resources that deploy what they should.

The app-of-apps chart (argocd/apps) is rendered with `.tools/bin/helm` (`make tools`); every
Application and AppProject is validated against its CRD schema from tests/data/crd-schemas with
unknown fields refused. The per-environment overrides are rendered with helm/ocr-platform the way
the ocr-platform Application renders them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from jsonschema import Draft7Validator  # type: ignore[import-untyped, unused-ignore]

from tests.integration.argocd.manifests import (
    APPS_CHART,
    ARGO_CD_VALUES,
    ARGO_KINDS,
    ARGOCD,
    ENVIRONMENTS,
    PLATFORM_CHART,
    STACK,
    Helm,
    applications,
    crd_schema,
    get_path,
    load_yaml,
    mebibytes,
    override_paths,
    pinned_chart_versions,
    sources,
    stack_values,
    sync_wave,
    the_project,
    walk,
)

pytestmark = pytest.mark.integration

#: Memory limits of everything argocd/ and the bootstrap put on a 4 GiB minikube stay under this.
BUDGET_MI: Final = 3 * 1024
PROJECT: Final = "ocr-platform"
STACK_APPS: Final = ("kube-prometheus-stack", "tempo", "opentelemetry-collector")
ENVIRONMENT_FILES: Final = sorted(ENVIRONMENTS.glob("*/values.yaml"))
UNPINNED: Final = {"", "HEAD", "main", "master"}
SEMVER: Final = re.compile(r"^\d+\.\d+\.\d+$")

#: Containers whose memory limit counts against the budget: (values file, key path of the
#: `resources` holder, number of containers sharing those resources).
MEMORY_COMPONENTS: Final[dict[Path, list[tuple[tuple[str, ...], int]]]] = {
    ARGO_CD_VALUES: [
        (("controller",), 1),
        (("repoServer",), 1),
        (("server",), 1),
        (("redis",), 1),
        (("applicationSet",), 1),
    ],
    STACK / "kube-prometheus-stack.yaml": [
        (("prometheus", "prometheusSpec"), 1),
        (("prometheusOperator",), 1),
        # The config-reloader sidecar of the Prometheus pod and of the Alertmanager pod.
        (("prometheusOperator", "prometheusConfigReloader"), 2),
        (("alertmanager", "alertmanagerSpec"), 1),
        (("kube-state-metrics",), 1),
        (("grafana",), 1),
        # The dashboards and the datasources sidecar.
        (("grafana", "sidecar"), 2),
    ],
    STACK / "tempo.yaml": [(("tempo",), 1)],
    STACK / "opentelemetry-collector.yaml": [((), 1)],
    ENVIRONMENTS / "minikube" / "values.yaml": [(("gateway",), 1), (("model",), 1)],
}


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> list[dict[str, Any]]:
    """argocd/apps rendered with its default values."""
    return helm.render_apps()


def argo_documents(docs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [doc for doc in docs if str(doc.get("apiVersion", "")).startswith("argoproj.io/")]


def validate(doc: Mapping[str, Any]) -> list[str]:
    """Schema errors of an argoproj.io resource, against its CRD schema in tests/data."""
    version = str(doc["apiVersion"]).split("/", 1)[1]
    validator = Draft7Validator(crd_schema(str(doc["kind"]), version))
    return [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(doc)
    ]


# --- every manifest is a valid Argo CD resource ----------------------------------------------


def test_every_yaml_file_under_argocd_parses() -> None:
    files = [p for p in ARGOCD.rglob("*.yaml") if "templates" not in p.parts]
    assert files
    for path in files:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert document is None or isinstance(document, dict), path


@pytest.mark.parametrize(
    "sets",
    [
        (),
        ("environment=production",),
        ("repoURL=git@github.com:someone/ocr-platform.git", "targetRevision=v9.9.9"),
    ],
    ids=["defaults", "production", "ssh-repo"],
)
def test_rendered_resources_match_their_crd_schemas(helm: Helm, sets: tuple[str, ...]) -> None:
    docs = helm.render_apps(*sets)
    assert {doc["kind"] for doc in docs} <= set(ARGO_KINDS), (
        "argocd/apps renders only Argo CD kinds"
    )
    for doc in argo_documents(docs):
        assert doc["metadata"].get("name")
        assert doc["metadata"].get("namespace") == "argocd"
        errors = validate(doc)
        assert not errors, f"{doc['kind']}/{doc['metadata']['name']}: {errors}"


def test_plain_manifests_under_argocd_match_their_crd_schemas() -> None:
    for path in ARGOCD.rglob("*.yaml"):
        if "templates" in path.parts:
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith("argoproj.io/"):
                assert not validate(doc), path


def test_strict_schema_catches_a_typo(rendered: list[dict[str, Any]]) -> None:
    app = dict(applications(rendered)[0])
    app["spec"] = {**app["spec"], "syncPolicy": {"automated": {"prun": True}}}
    assert any("prun" in error for error in validate(app))


def test_apps_chart_refuses_an_unpinned_revision(helm: Helm) -> None:
    for revision in ("main", "HEAD"):
        result = helm.run("template", "x", str(APPS_CHART), "--set", f"targetRevision={revision}")
        assert result.returncode != 0
        assert "pinned" in result.stderr


# --- what the Applications do ----------------------------------------------------------------


def test_the_expected_applications_exist(rendered: list[dict[str, Any]]) -> None:
    names = {app["metadata"]["name"] for app in applications(rendered)}
    assert names == {"ocr-platform-apps", "ocr-platform", *STACK_APPS}


def test_every_application_syncs_automatically_with_prune_self_heal_and_retry(
    rendered: list[dict[str, Any]],
) -> None:
    for app in applications(rendered):
        name, policy = app["metadata"]["name"], app["spec"]["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}, name
        assert "CreateNamespace=true" in policy["syncOptions"], name
        retry = policy["retry"]
        assert retry["limit"] > 0, name
        assert set(retry["backoff"]) == {"duration", "factor", "maxDuration"}, name
        assert retry["backoff"]["factor"] >= 2, name


def test_server_side_apply_only_where_crds_need_it(rendered: list[dict[str, Any]]) -> None:
    with_ssa = {
        app["metadata"]["name"]
        for app in applications(rendered)
        if "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    }
    assert with_ssa == {"kube-prometheus-stack"}


def test_every_revision_is_pinned(rendered: list[dict[str, Any]]) -> None:
    for app in applications(rendered):
        for source in sources(app):
            revision = str(source.get("targetRevision", ""))
            assert revision not in UNPINNED, app["metadata"]["name"]
            if "chart" in source:
                assert SEMVER.match(revision), f"{source['chart']} chart version {revision!r}"


def test_every_upstream_chart_version_is_pinned() -> None:
    versions = pinned_chart_versions()
    assert set(versions) == {*STACK_APPS, "argo-cd"}
    for chart, version in versions.items():
        assert SEMVER.match(version), f"{chart}: {version!r} is not an exact chart version"


def test_repository_and_revision_are_set_in_one_place(helm: Helm) -> None:
    docs = helm.render_apps("repoURL=https://git.example/me/ocr.git", "targetRevision=v7.0.1")
    chart_repos = {
        str(s["repoURL"]) for app in applications(docs) for s in sources(app) if "chart" in s
    }
    for app in applications(docs):
        for source in sources(app):
            if "chart" not in source:
                assert source["repoURL"] == "https://git.example/me/ocr.git"
                assert source["targetRevision"] == "v7.0.1"
    root = next(app for app in applications(docs) if app["metadata"]["name"] == "ocr-platform-apps")
    handed_down = root["spec"]["source"]["helm"]["valuesObject"]
    assert handed_down["repoURL"] == "https://git.example/me/ocr.git"
    assert handed_down["targetRevision"] == "v7.0.1"
    assert set(the_project(docs)["spec"]["sourceRepos"]) == {
        "https://git.example/me/ocr.git",
        *chart_repos,
    }
    # No other file of argocd/ names the repository.
    default_repo = str(load_yaml(APPS_CHART / "values.yaml")["repoURL"])
    for path in ARGOCD.rglob("*"):
        if path.is_file() and path != APPS_CHART / "values.yaml":
            assert default_repo not in path.read_text(encoding="utf-8"), path


def test_the_alerts_runbooks_point_at_the_deployed_revision(helm: Helm) -> None:
    docs = helm.render_apps("repoURL=git@github.com:me/ocr.git", "targetRevision=v1.2.3")
    app = next(a for a in applications(docs) if a["metadata"]["name"] == "ocr-platform")
    values = sources(app)[0]["helm"]["valuesObject"]
    assert values["observability"]["prometheusRule"]["runbookBaseUrl"] == (
        "https://github.com/me/ocr/blob/v1.2.3"
    )


def test_every_application_stays_inside_the_project(rendered: list[dict[str, Any]]) -> None:
    project = the_project(rendered)
    assert project["metadata"]["name"] == PROJECT
    allowed = {(d["server"], d["namespace"]) for d in project["spec"]["destinations"]}
    assert {namespace for _, namespace in allowed} == {"ocr-platform", "monitoring", "argocd"}
    assert {server for server, _ in allowed} == {"https://kubernetes.default.svc"}
    repos = set(project["spec"]["sourceRepos"])
    assert "*" not in repos
    for app in applications(rendered):
        name = app["metadata"]["name"]
        assert app["spec"]["project"] == PROJECT, name
        destination = app["spec"]["destination"]
        assert (destination["server"], destination["namespace"]) in allowed, name
        for source in sources(app):
            assert source["repoURL"] in repos, name


def test_project_allows_only_the_cluster_scoped_kinds_needed(
    rendered: list[dict[str, Any]],
) -> None:
    kinds = {
        (k["group"], k["kind"]) for k in the_project(rendered)["spec"]["clusterResourceWhitelist"]
    }
    assert kinds == {
        ("", "Namespace"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    }


def test_sync_waves_put_the_stack_before_the_platform(rendered: list[dict[str, Any]]) -> None:
    waves = {app["metadata"]["name"]: sync_wave(app) for app in applications(rendered)}
    project_wave = sync_wave(the_project(rendered))
    for name in STACK_APPS:
        assert project_wave < waves[name] < waves["ocr-platform"], waves


def test_argo_cd_waits_for_child_applications_to_be_healthy() -> None:
    """Without a health check for Application resources, sync waves of child apps do not wait."""
    check = load_yaml(ARGO_CD_VALUES)["configs"]["cm"][
        "resource.customizations.health.argoproj.io_Application"
    ]
    assert "obj.status.health.status" in check


def test_environment_folders_exist_for_what_the_apps_chart_names(
    rendered: list[dict[str, Any]],
) -> None:
    assert {p.parent.name for p in ENVIRONMENT_FILES} == {"minikube", "production"}
    app = next(a for a in applications(rendered) if a["metadata"]["name"] == "ocr-platform")
    for value_file in sources(app)[0]["helm"]["valueFiles"]:
        assert (ARGOCD.parent / str(value_file).removeprefix("$values/")).is_file()
    for name in STACK_APPS:
        assert (STACK / f"{name}.yaml").is_file()


# --- the monitoring stack ----------------------------------------------------------------------


def test_prometheus_selects_every_monitor_and_keeps_exemplars() -> None:
    spec = stack_values("kube-prometheus-stack")["prometheus"]["prometheusSpec"]
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False
    assert spec["ruleSelectorNilUsesHelmValues"] is False
    assert "exemplar-storage" in spec["enableFeatures"]


def test_grafana_loads_labelled_dashboards_and_links_exemplars_to_tempo() -> None:
    kps, tempo = stack_values("kube-prometheus-stack"), stack_values("tempo")
    grafana = kps["grafana"]
    dashboards = grafana["sidecar"]["dashboards"]
    assert (dashboards["label"], dashboards["labelValue"], dashboards["searchNamespace"]) == (
        "grafana_dashboard",
        "1",
        "ALL",
    )
    tempo_sources = [ds for ds in grafana["additionalDataSources"] if ds["type"] == "tempo"]
    assert len(tempo_sources) == 1
    exemplars = grafana["sidecar"]["datasources"]["exemplarTraceIdDestinations"]
    assert exemplars == {"datasourceUid": tempo_sources[0]["uid"], "traceIdLabelName": "trace_id"}
    assert tempo_sources[0]["url"].startswith(f"http://{tempo['fullnameOverride']}.monitoring.")


def test_grafana_admin_password_is_not_in_git() -> None:
    grafana = stack_values("kube-prometheus-stack")["grafana"]
    assert "adminPassword" not in grafana
    assert grafana["admin"]["existingSecret"]
    bootstrap = (ARGOCD.parent / "scripts" / "bootstrap-cluster.sh").read_text(encoding="utf-8")
    assert grafana["admin"]["existingSecret"] in bootstrap, "the bootstrap script creates it"


def test_no_secret_values_in_argocd() -> None:
    """No Secret and no literal password or token: only names of Secrets made out of band
    (`secrets`: the Secrets Alertmanager mounts, a list of names)."""
    references = {"existingSecret", "secretName", "passwordKey", "userKey", "secrets"}
    for path in ARGOCD.rglob("*.yaml"):
        if "templates" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        assert "kind: Secret" not in text, path
        for document in yaml.safe_load_all(text):
            for key_path, value in walk(document):
                key = key_path[-1]
                if isinstance(value, str) and re.search(r"passw|token|secret", key, re.IGNORECASE):
                    assert key in references, f"{path}: {'.'.join(key_path)}"


def test_collector_takes_otlp_limits_memory_first_and_exports_to_tempo() -> None:
    otel, tempo = stack_values("opentelemetry-collector"), stack_values("tempo")
    assert otel["mode"] == "deployment"
    config = otel["config"]
    pipelines = {name: p for name, p in config["service"]["pipelines"].items() if p is not None}
    assert set(pipelines) == {"traces"}
    traces = pipelines["traces"]
    assert traces["receivers"] == ["otlp"]
    assert traces["processors"][0] == "memory_limiter"
    (exporter,) = traces["exporters"]
    endpoint = config["exporters"][exporter]["endpoint"]
    assert endpoint == f"{tempo['fullnameOverride']}.monitoring.svc.cluster.local:4317"


@pytest.mark.parametrize("values_file", ENVIRONMENT_FILES, ids=lambda p: p.parent.name)
def test_the_platform_sends_traces_to_the_collector(values_file: Path) -> None:
    collector = stack_values("opentelemetry-collector")["fullnameOverride"]
    endpoint = load_yaml(values_file)["otel"]["endpoint"]
    assert endpoint == f"http://{collector}.monitoring.svc.cluster.local:4317"


def test_memory_limits_are_set_and_fit_a_4_gib_minikube() -> None:
    total = 0.0
    for path, components in MEMORY_COMPONENTS.items():
        values = load_yaml(path)
        holders = {key_path[:-1] for key_path, value in walk(values) if key_path[-1] == "resources"}
        holders |= {()} if "resources" in values else set()
        declared = {holder for holder, _ in components}
        assert holders == declared, f"{path.name}: resources at {holders ^ declared} not budgeted"
        for holder, containers in components:
            resources = get_path(values, (*holder, "resources"))
            limit = resources.get("limits", {}).get("memory")
            assert limit, f"{path.name}: {'.'.join(holder) or '(top)'} has no memory limit"
            assert resources.get("requests", {}).get("memory"), f"{path.name}: {holder} request"
            total += containers * mebibytes(limit)
    assert total <= BUDGET_MI, f"memory limits add up to {total:.0f} Mi > {BUDGET_MI} Mi"
    stated = re.search(r"total\s*=\s*(\d+) Mi", (APPS_CHART / "values.yaml").read_text())
    assert stated, "argocd/apps/values.yaml states the budget total"
    assert int(stated.group(1)) == round(total), "update the budget comment"


def test_mebibytes_reads_kubernetes_quantities() -> None:
    assert mebibytes("448Mi") == 448
    assert mebibytes("1Gi") == 1024
    assert mebibytes("512Ki") == 0.5
    assert mebibytes(str(2**20)) == 1
    with pytest.raises(ValueError, match="not a memory quantity"):
        mebibytes("lots")


# --- per-environment overrides with the real chart -------------------------------------------


def platform_defaults() -> dict[str, Any]:
    defaults: dict[str, Any] = load_yaml(PLATFORM_CHART / "values.yaml")
    return defaults


@pytest.mark.parametrize("values_file", ENVIRONMENT_FILES, ids=lambda p: p.parent.name)
def test_environment_values_hold_overrides_only(values_file: Path) -> None:
    defaults = platform_defaults()
    assert override_paths(load_yaml(values_file), defaults) == []


@pytest.mark.parametrize("values_file", ENVIRONMENT_FILES, ids=lambda p: p.parent.name)
def test_environment_values_render_with_the_chart(
    helm: Helm, values_file: Path, tmp_path: Path
) -> None:
    """Render helm/ocr-platform as the ocr-platform Application does: its value files, then
    its valuesObject on top."""
    platform_defaults()
    docs = helm.render_apps(f"environment={values_file.parent.name}")
    app = next(a for a in applications(docs) if a["metadata"]["name"] == "ocr-platform")
    source = sources(app)[0]
    assert source["path"] == str(PLATFORM_CHART.relative_to(ARGOCD.parent))
    value_flags: list[str] = []
    for value_file in source["helm"]["valueFiles"]:
        value_flags += ["-f", str(ARGOCD.parent / str(value_file).removeprefix("$values/"))]
    values_object = tmp_path / "values-object.yaml"
    values_object.write_text(yaml.safe_dump(source["helm"]["valuesObject"]), encoding="utf-8")
    rendered = helm.template(
        "ocr-platform",
        str(PLATFORM_CHART),
        "-n",
        app["spec"]["destination"]["namespace"],
        *value_flags,
        "-f",
        str(values_object),
        # The cluster serves prometheus-operator's API (kube-prometheus-stack, wave 0).
        "--api-versions",
        "monitoring.coreos.com/v1",
    )
    kinds = {doc["kind"] for doc in rendered}
    assert {"Deployment", "Service", "PodMonitor", "PrometheusRule"} <= kinds
    overrides = load_yaml(values_file)
    for doc in rendered:
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            component = overrides[container["name"]]
            assert container["image"].startswith(str(component["image"]["repository"]))
            limits = container["resources"]["limits"]
            assert limits["memory"] == component.get("resources", {}).get("limits", {}).get(
                "memory", limits["memory"]
            )
