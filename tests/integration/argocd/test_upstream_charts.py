"""Every Application of argocd/apps, in every environment, inflated the way Argo CD inflates it
and checked the way the API server would check it.

For each folder of argocd/environments/, argocd/apps is rendered with that environment; each
Helm Application is then rendered with `helm template` exactly as Argo CD calls it (release
name, destination namespace, value files in order with ignoreMissingValueFiles, inline values,
parameters, --include-crds), at the minimum Kubernetes version and at the newest one
kubernetes-validate knows, with prometheus-operator's API (installed by kube-prometheus-stack in
wave 0) among the cluster's API versions. The upstream charts come from tests/data/upstream-charts
by the pinned name and version: a pinned version without its package fails, so a version that
does not exist upstream cannot reach Argo CD unnoticed.

Every rendered object is validated:
- built-in kinds with kubernetes-validate (strict: unknown fields fail) at that Kubernetes version;
- custom resources against their schema in tests/data/crd-schemas (the catalog), made strict,
  and every monitoring.coreos.com resource also against the CRD the pinned kube-prometheus-stack
  installs (strict too): that is the schema the cluster serves. The catalog has no Prometheus or
  Alertmanager schema: those two are checked against the installed CRD only. No other exemption:
  every field the pinned charts render is in the schemas;
- CustomResourceDefinitions only need to parse into a group, a kind and a schema per version.

Kubernetes 1.30 is the minimum: the charts accept 1.25 and later (kubeVersion of
kube-prometheus-stack, Grafana and helm/ocr-platform; the collector's README says 1.24), and 1.30
is the version tests/integration/helm validates helm/ocr-platform at.

The rendered Alertmanager configuration is checked too (`amtool` is not available): where the
platform's alerts go in each environment, and that production's webhook URL is read from a
mounted Secret, never from Git.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import kubernetes_validate  # type: ignore[import-untyped, unused-ignore]
import pytest
import yaml
from jsonschema import Draft7Validator  # type: ignore[import-untyped, unused-ignore]

from tests.integration.argocd.alertmanager import (
    NULL_RECEIVER,
    SECRETS_MOUNT,
    Matcher,
    integrations,
    problems,
    receivers_for,
)
from tests.integration.argocd.manifests import (
    APPS_CHART,
    BOOTSTRAP_SCRIPT,
    CRD_SCHEMAS,
    ENVIRONMENTS,
    ROOT,
    STACK,
    UPSTREAM_CHARTS,
    Helm,
    applications,
    argo_cd_template_args,
    chart_file,
    chart_of,
    load_yaml,
    packaged_charts,
    sources,
    stack_values,
    strict,
)
from tests.support.network_policy import Pod, egress_allows, ingress_allows, reachable

pytestmark = pytest.mark.integration

MINIMUM_KUBERNETES: Final = "1.30"
NEWEST_KUBERNETES: Final = str(kubernetes_validate.latest_version())
KUBERNETES_VERSIONS: Final = (MINIMUM_KUBERNETES, NEWEST_KUBERNETES)
#: API versions of the cluster beyond the built-in ones: prometheus-operator's, whose CRDs
#: kube-prometheus-stack installs in wave 0 (before the platform's PodMonitor and rules).
EXTRA_API_VERSIONS: Final = ("monitoring.coreos.com/v1",)
ENVIRONMENT_NAMES: Final = sorted(p.name for p in ENVIRONMENTS.iterdir() if p.is_dir())
STACK_APPS: Final = tuple(load_yaml(APPS_CHART / "values.yaml")["charts"])
PLATFORM_APP: Final = "ocr-platform"
ROOT_APP: Final = "ocr-platform-apps"
#: The Application whose chart installs the CRDs of monitoring.coreos.com.
CRD_PROVIDER: Final = "kube-prometheus-stack"
MONITORING_GROUP: Final = "monitoring.coreos.com"
#: Environments whose alerts notify someone, and those where they are only listed in
#: Alertmanager's UI (no integration). Each environment is in exactly one.
NOTIFYING_ENVIRONMENTS: Final = frozenset({"production"})
UI_ONLY_ENVIRONMENTS: Final = frozenset({"minikube"})
#: Alerts that fire on purpose and go to the `null` receiver: Watchdog (always firing, for a
#: dead man's switch) and InfoInhibitor (fires to mute info alerts).
SILENCED_ALERTS: Final = frozenset({"Watchdog", "InfoInhibitor"})
README: Final = ROOT / "README.md"

#: The line of Tempo's chart default `config` that argocd/stack/tempo.yaml replaces.
TEMPO_DEFAULT_RECEIVERS: Final = "{{- toYaml .Values.tempo.receivers | nindent 8 }}"
TEMPO_OUR_RECEIVERS: Final = '{{- toYaml (pick .Values.tempo.receivers "otlp") | nindent 8 }}'


def is_custom(doc: Mapping[str, Any]) -> bool:
    """A custom resource: its API group is a domain that is not Kubernetes' own."""
    group = str(doc["apiVersion"]).rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def errors_of(validator: Draft7Validator, doc: Mapping[str, Any]) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(doc)
    ]


def catalog_validator(api_version: str, kind: str) -> Draft7Validator | None:
    """The strict schema of tests/data/crd-schemas (kubeconform catalog layout), if any."""
    group, _, version = api_version.rpartition("/")
    path = CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    if not path.is_file():
        return None
    return Draft7Validator(strict(json.loads(path.read_text(encoding="utf-8"))))


def crd_problems(doc: Mapping[str, Any]) -> list[str]:
    """A CustomResourceDefinition parses into a group, a kind and a schema per version."""
    spec = doc.get("spec") or {}
    found = [] if spec.get("group") and spec.get("names", {}).get("kind") else ["no group/kind"]
    for version in spec.get("versions") or [None]:
        if not isinstance((version or {}).get("schema", {}).get("openAPIV3Schema"), dict):
            found.append(f"version {version and version.get('name')}: no openAPIV3Schema")
    return found


def crd_validators(docs: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], Draft7Validator]:
    """(apiVersion, kind) -> strict validator, for every version of every CRD in `docs`."""
    validators = {}
    for doc in docs:
        if doc["kind"] != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for version in spec["versions"]:
            key = (f"{spec['group']}/{version['name']}", str(spec["names"]["kind"]))
            validators[key] = Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))
    return validators


@dataclass
class Renderer:
    """argocd/apps and its Applications rendered once per (environment, Kubernetes version)."""

    helm: Helm
    workdir: Path
    charts: dict[tuple[str, str], Path] = field(default_factory=packaged_charts)
    _apps: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    _docs: dict[tuple[str, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    _crds: dict[tuple[str, str], dict[tuple[str, str], Draft7Validator]] = field(
        default_factory=dict
    )

    def applications(self, environment: str) -> list[Mapping[str, Any]]:
        if environment not in self._apps:
            rendered = self.helm.render_apps(f"environment={environment}")
            self._apps[environment] = applications(rendered)
        return self._apps[environment]

    def application(self, environment: str, name: str) -> Mapping[str, Any]:
        (app,) = [a for a in self.applications(environment) if a["metadata"]["name"] == name]
        return app

    def render(self, environment: str, name: str, kube: str = MINIMUM_KUBERNETES) -> list[Any]:
        """What Argo CD applies for Application `name` (a failed test when helm fails or the
        pinned chart is not packaged)."""
        key = (environment, name, kube)
        if key not in self._docs:
            app = self.application(environment, name)
            chart = chart_of(app, self.charts)
            workdir = self.workdir / environment
            workdir.mkdir(exist_ok=True)
            release, *args = argo_cd_template_args(
                app, kube_version=kube, api_versions=EXTRA_API_VERSIONS, workdir=workdir
            )
            self._docs[key] = self.helm.template(release, str(chart), *args)
        return self._docs[key]

    def crd_validators(self, environment: str, kube: str) -> dict[Any, Draft7Validator]:
        if (environment, kube) not in self._crds:
            docs = self.render(environment, CRD_PROVIDER, kube)
            self._crds[(environment, kube)] = crd_validators(docs)
        return self._crds[(environment, kube)]

    def validation_errors(
        self, environment: str, docs: Sequence[Mapping[str, Any]], kube: str
    ) -> list[str]:
        """Every schema error of `docs` (see the module's docstring for what is checked)."""
        found: list[str] = []
        for doc in docs:
            where = f"{doc['kind']}/{doc['metadata']['name']}"
            if doc["kind"] == "CustomResourceDefinition":
                found += [f"{where}: {p}" for p in crd_problems(doc)]
            elif is_custom(doc):
                key = (str(doc["apiVersion"]), str(doc["kind"]))
                catalog, installed = catalog_validator(*key), None
                if key[0].startswith(f"{MONITORING_GROUP}/"):
                    installed = self.crd_validators(environment, kube).get(key)
                    if installed is None:
                        found.append(f"{where}: {CRD_PROVIDER} installs no CRD for {key}")
                elif catalog is None:
                    found.append(f"{where}: no schema for {key} in {CRD_SCHEMAS.name}")
                for origin, validator in (("catalog", catalog), ("installed CRD", installed)):
                    if validator is not None:
                        found += [f"{where} ({origin}): {e}" for e in errors_of(validator, doc)]
            else:
                try:
                    kubernetes_validate.validate(doc, kube, strict=True)
                except kubernetes_validate.ValidationError as error:
                    found.append(f"{where}: {error.message} at {list(error.path)}")
                except kubernetes_validate.SchemaNotFoundError:
                    found.append(f"{where}: no Kubernetes {kube} schema for {doc['apiVersion']}")
        return found


@pytest.fixture(scope="module")
def renderer(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    return Renderer(helm, tmp_path_factory.mktemp("argo-cd-values"))


def pinned(renderer: Renderer, environment: str, name: str) -> tuple[str, str]:
    (source,) = [s for s in sources(renderer.application(environment, name)) if "ref" not in s]
    return str(source["chart"]), str(source["targetRevision"])


# --- every Application renders into objects the cluster accepts ---------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_every_application_is_rendered_here(renderer: Renderer, environment: str) -> None:
    """No Application of argocd/apps escapes the render tests below (the root one renders
    argocd/apps itself, which test_argocd_manifests.py covers)."""
    names = {app["metadata"]["name"] for app in renderer.applications(environment)}
    assert names == {ROOT_APP, PLATFORM_APP, *STACK_APPS}
    for name in STACK_APPS:
        assert "chart" in sources(renderer.application(environment, name))[0], name


@pytest.mark.parametrize("kube", KUBERNETES_VERSIONS, ids=lambda v: f"k8s-{v}")
@pytest.mark.parametrize("name", STACK_APPS)
@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_stack_application_renders_valid_objects(
    renderer: Renderer, environment: str, name: str, kube: str
) -> None:
    docs = renderer.render(environment, name, kube)
    assert any(doc["kind"] in {"Deployment", "StatefulSet"} for doc in docs), name
    errors = renderer.validation_errors(environment, docs, kube)
    assert not errors, f"{environment}/{name} at Kubernetes {kube}:\n" + "\n".join(errors)


@pytest.mark.parametrize("kube", KUBERNETES_VERSIONS, ids=lambda v: f"k8s-{v}")
@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_platform_application_renders_valid_objects(
    renderer: Renderer, environment: str, kube: str
) -> None:
    """helm/ocr-platform with argocd/environments/<env>/values.yaml and the Application's
    valuesObject; its PodMonitor and PrometheusRule also against the CRDs the stack installs."""
    docs = renderer.render(environment, PLATFORM_APP, kube)
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "PodMonitor", "PrometheusRule"} <= kinds
    errors = renderer.validation_errors(environment, docs, kube)
    assert not errors, f"{environment}/{PLATFORM_APP} at Kubernetes {kube}:\n" + "\n".join(errors)


def test_stack_renders_what_the_monitoring_stack_needs(renderer: Renderer) -> None:
    """The CRDs come with kube-prometheus-stack (--include-crds, as Argo CD renders them), so
    the custom resources above were checked against the schemas the cluster will serve."""
    docs = renderer.render(ENVIRONMENT_NAMES[0], CRD_PROVIDER)
    kinds = {doc["kind"] for doc in docs}
    assert {"CustomResourceDefinition", "Prometheus", "Alertmanager", "PrometheusRule"} <= kinds
    installed = {kind for _, kind in crd_validators(docs)}
    assert {"PodMonitor", "PrometheusRule", "ServiceMonitor", "Alertmanager"} <= installed


def test_strict_schemas_catch_a_typo(renderer: Renderer) -> None:
    environment = ENVIRONMENT_NAMES[0]
    docs = renderer.render(environment, CRD_PROVIDER)
    alertmanager = copy.deepcopy(next(d for d in docs if d["kind"] == "Alertmanager"))
    alertmanager["spec"]["replica"] = 1
    monitor = copy.deepcopy(next(d for d in docs if d["kind"] == "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    service = copy.deepcopy(next(d for d in docs if d["kind"] == "Service"))
    service["spec"]["port"] = 80
    errors = renderer.validation_errors(
        environment, [alertmanager, monitor, service], MINIMUM_KUBERNETES
    )
    assert any("replica" in e and "installed CRD" in e for e in errors), errors
    assert any("intervall" in e and "catalog" in e for e in errors), errors
    assert any("intervall" in e and "installed CRD" in e for e in errors), errors
    assert any(e.startswith(f"Service/{service['metadata']['name']}") for e in errors), errors


# --- the pinned chart versions are the packaged ones ---------------------------------------------


def test_a_pinned_version_without_its_package_fails(renderer: Renderer) -> None:
    """opentelemetry-collector 0.158.3 was pinned once: no such chart exists."""
    app = copy.deepcopy(dict(renderer.application(ENVIRONMENT_NAMES[0], "opentelemetry-collector")))
    app["spec"]["sources"][0]["targetRevision"] = "0.158.3"
    with pytest.raises(AssertionError, match=r"opentelemetry-collector 0\.158\.3 .* no package"):
        chart_of(app, renderer.charts)


def test_every_package_is_pinned_and_described(renderer: Renderer) -> None:
    """No stale package stays behind after a version bump; the README says where each is from."""
    wanted = {pinned(renderer, env, name) for env in ENVIRONMENT_NAMES for name in STACK_APPS}
    assert set(renderer.charts) == wanted
    readme = (UPSTREAM_CHARTS / "README.md").read_text(encoding="utf-8")
    for archive in renderer.charts.values():
        assert f"`{archive.name}`" in readme, archive.name


# --- Tempo -------------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_tempo_receives_otlp_only(renderer: Renderer, environment: str) -> None:
    docs = renderer.render(environment, "tempo")
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap" and "tempo.yaml" in d["data"]]
    receivers = yaml.safe_load(config_map["data"]["tempo.yaml"])["distributor"]["receivers"]
    assert receivers == {
        "otlp": {
            "protocols": {
                "grpc": {"endpoint": "0.0.0.0:4317"},
                "http": {"endpoint": "0.0.0.0:4318"},
            }
        }
    }
    (service,) = [d for d in docs if d["kind"] == "Service"]
    ports = {port["name"]: port["port"] for port in service["spec"]["ports"]}
    assert not [name for name in ports if "jaeger" in name], ports
    assert ports["grpc-tempo-otlp"] == 4317
    assert ports["tempo-prom-metrics"] == 3200


def test_tempo_config_is_the_charts_default_but_for_the_receivers(renderer: Renderer) -> None:
    """argocd/stack/tempo.yaml copies the chart's `config` to change one line: a chart upgrade
    that changes the default fails here until the copy follows it."""
    archive = renderer.charts[pinned(renderer, ENVIRONMENT_NAMES[0], "tempo")]
    default = str(yaml.safe_load(chart_file(archive, "values.yaml"))["config"])
    assert default.count(TEMPO_DEFAULT_RECEIVERS) == 1
    ours = str(stack_values("tempo")["config"])
    assert ours == default.replace(TEMPO_DEFAULT_RECEIVERS, TEMPO_OUR_RECEIVERS)


# --- Alertmanager: where alerts go ---------------------------------------------------------------


def alertmanager_of(docs: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any], Any]:
    """The Alertmanager resource and its configuration, from the Secret the chart renders for it
    (`alertmanager-<name>`, key alertmanager.yaml)."""
    (alertmanager,) = [d for d in docs if d["kind"] == "Alertmanager"]
    name = f"alertmanager-{alertmanager['metadata']['name']}"
    (secret,) = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == name]
    if "alertmanager.yaml" in (secret.get("stringData") or {}):
        text = secret["stringData"]["alertmanager.yaml"]
    else:
        text = base64.b64decode(secret["data"]["alertmanager.yaml"]).decode("utf-8")
    assert not alertmanager["spec"].get("configSecret"), "the config is the chart's Secret"
    return alertmanager, yaml.safe_load(text)


def alerts(docs: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Labels of every alerting rule of the PrometheusRules in `docs` (alertname + its labels)."""
    found = []
    for doc in docs:
        if doc["kind"] != "PrometheusRule":
            continue
        for group in doc["spec"]["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    labels = {str(k): str(v) for k, v in (rule.get("labels") or {}).items()}
                    found.append({**labels, "alertname": str(rule["alert"])})
    return found


def by_name(config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(r["name"]): r for r in config.get("receivers") or []}


def test_every_environment_chooses_where_alerts_go() -> None:
    assert not NOTIFYING_ENVIRONMENTS & UI_ONLY_ENVIRONMENTS
    assert set(ENVIRONMENT_NAMES) == NOTIFYING_ENVIRONMENTS | UI_ONLY_ENVIRONMENTS


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_alertmanager_config_is_well_formed(renderer: Renderer, environment: str) -> None:
    _, config = alertmanager_of(renderer.render(environment, CRD_PROVIDER))
    assert problems(config) == []
    # The chart's inhibit rules stay: critical mutes warning/info, warning mutes info.
    sources_ = [rule.get("source_matchers") for rule in config["inhibit_rules"]]
    assert ["severity = critical"] in sources_
    assert ["severity = warning"] in sources_


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_no_alert_of_the_platform_or_the_stack_goes_to_null(
    renderer: Renderer, environment: str
) -> None:
    _, config = alertmanager_of(renderer.render(environment, CRD_PROVIDER))
    platform = alerts(renderer.render(environment, PLATFORM_APP))
    stack = alerts(renderer.render(environment, CRD_PROVIDER))
    assert platform
    assert {alert["alertname"] for alert in stack} >= SILENCED_ALERTS
    for labels in [*platform, *stack, {"alertname": "SomethingNew", "severity": "critical"}]:
        receivers = receivers_for(labels, config["route"])
        if labels["alertname"] in SILENCED_ALERTS:
            assert receivers == [NULL_RECEIVER], labels
        else:
            assert NULL_RECEIVER not in receivers, f"{labels} goes to {NULL_RECEIVER}"


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_platform_alerts_notify_in_notifying_environments_only(
    renderer: Renderer, environment: str
) -> None:
    """Production: every platform alert reaches a receiver that sends it somewhere. The other
    environments: a receiver with no integration, its alerts listed in Alertmanager's UI."""
    _, config = alertmanager_of(renderer.render(environment, CRD_PROVIDER))
    receivers = by_name(config)
    for labels in alerts(renderer.render(environment, PLATFORM_APP)):
        for name in receivers_for(labels, config["route"]):
            sends = integrations(receivers[name])
            if environment in NOTIFYING_ENVIRONMENTS:
                assert sends, f"{labels['alertname']} -> {name}, which notifies nobody"
            else:
                assert not sends, f"{environment} is documented as UI-only, {name} notifies"


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_webhook_urls_come_from_a_mounted_secret(renderer: Renderer, environment: str) -> None:
    """A webhook URL holds its token: Alertmanager reads it from a Secret mounted through
    Alertmanager.spec.secrets (url_file), never from the configuration in Git. No Application
    renders that Secret: it is made out of band."""
    docs = renderer.render(environment, CRD_PROVIDER)
    alertmanager, config = alertmanager_of(docs)
    mounted = set(alertmanager["spec"].get("secrets") or [])
    rendered_secrets = {
        doc["metadata"]["name"]
        for name in (*STACK_APPS, PLATFORM_APP)
        for doc in renderer.render(environment, name)
        if doc["kind"] == "Secret"
    }
    webhooks = [
        hook
        for receiver in config["receivers"]
        for kind, hook in integrations(receiver)
        if kind == "webhook_configs"
    ]
    assert {kind for r in config["receivers"] for kind, _ in integrations(r)} <= {"webhook_configs"}
    if environment in NOTIFYING_ENVIRONMENTS:
        assert webhooks
    for hook in webhooks:
        assert "url" not in hook
        mount, secret, key = str(hook["url_file"]).rsplit("/", 2)
        assert mount == SECRETS_MOUNT, hook
        assert secret in mounted, f"{secret} is not in Alertmanager.spec.secrets {mounted}"
        assert secret not in rendered_secrets, f"{secret} must not be rendered from Git"
        assert key


def test_the_alert_secret_and_the_ui_are_documented(renderer: Renderer) -> None:
    """The command that creates production's Secret is in README.md, in the production values
    file and in the bootstrap script's hint; the port-forward to the UI is in README.md."""
    readme = README.read_text(encoding="utf-8")
    script = BOOTSTRAP_SCRIPT.read_text(encoding="utf-8")
    for environment in NOTIFYING_ENVIRONMENTS:
        alertmanager, config = alertmanager_of(renderer.render(environment, CRD_PROVIDER))
        namespace = alertmanager["metadata"]["namespace"]
        for receiver in config["receivers"]:
            for _, hook in integrations(receiver):
                _, secret, key = str(hook["url_file"]).rsplit("/", 2)
                command = (
                    f"kubectl -n {namespace} create secret generic {secret} --from-literal={key}="
                )
                assert command in readme
                values = ENVIRONMENTS / environment / "stack" / f"{CRD_PROVIDER}.yaml"
                assert command in values.read_text(encoding="utf-8")
                assert f'ALERTMANAGER_SECRET="{secret}"' in script
                assert f"--from-literal={key}=" in script
    docs = renderer.render(ENVIRONMENT_NAMES[0], CRD_PROVIDER)
    alertmanager, _ = alertmanager_of(docs)
    name, namespace = alertmanager["metadata"]["name"], alertmanager["metadata"]["namespace"]
    (service,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == name]
    assert 9093 in {port["port"] for port in service["spec"]["ports"]}
    assert f"kubectl -n {namespace} port-forward svc/{name} 9093" in readme
    assert f"port-forward svc/{name} 9093" in (STACK / f"{CRD_PROVIDER}.yaml").read_text()


# --- the platform's NetworkPolicies and model token, as Argo CD renders them --------------------


def destination(renderer: Renderer, environment: str, name: str) -> str:
    return str(renderer.application(environment, name)["spec"]["destination"]["namespace"])


def workload_pods(renderer: Renderer, environment: str, name: str) -> dict[str, Pod]:
    """The pods of Application `name`'s Deployments and StatefulSets, by workload name."""
    namespace = destination(renderer, environment, name)
    return {
        str(doc["metadata"]["name"]): Pod(
            str(doc["metadata"].get("namespace") or namespace),
            dict(doc["spec"]["template"]["metadata"]["labels"]),
        )
        for doc in renderer.render(environment, name)
        if doc["kind"] in ("Deployment", "StatefulSet")
    }


def prometheus_pod(renderer: Renderer, environment: str) -> Pod:
    """The pod prometheus-operator runs for kube-prometheus-stack's Prometheus, with the labels
    the operator gives it besides spec.podMetadata's."""
    docs = renderer.render(environment, CRD_PROVIDER)
    (prometheus,) = [doc for doc in docs if doc["kind"] == "Prometheus"]
    name = str(prometheus["metadata"]["name"])
    labels = {
        **(prometheus["spec"].get("podMetadata", {}).get("labels") or {}),
        "app.kubernetes.io/name": "prometheus",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "prometheus": name,
        "operator.prometheus.io/name": name,
    }
    return Pod(str(prometheus["metadata"]["namespace"]), labels)


def platform_container(docs: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    found: Mapping[str, Any] = container
    return found


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_only_the_gateway_and_prometheus_reach_the_model(
    renderer: Renderer, environment: str
) -> None:
    """The chart's NetworkPolicies are rendered in every environment: the model's gRPC port
    takes the gateway pods only, its metrics port kube-prometheus-stack's Prometheus only; no
    other pod of the platform or of the monitoring stack reaches either."""
    docs = renderer.render(environment, PLATFORM_APP)
    policies = [doc for doc in docs if doc["kind"] == "NetworkPolicy"]
    names = {str(p["metadata"]["name"]) for p in policies}
    assert {"ocr-platform-gateway", "ocr-platform-model"} <= names
    platform = workload_pods(renderer, environment, PLATFORM_APP)
    gateway, model = platform["ocr-platform-gateway"], platform["ocr-platform-model"]
    prometheus = prometheus_pod(renderer, environment)
    assert prometheus.namespace == destination(renderer, environment, CRD_PROVIDER)
    assert reachable(policies, gateway, model, 8081)
    assert reachable(policies, prometheus, model, 8080)
    assert not ingress_allows(policies, model, prometheus, 8081)
    assert not ingress_allows(policies, model, gateway, 8080)
    strangers = [
        pod for name in STACK_APPS for pod in workload_pods(renderer, environment, name).values()
    ]
    strangers += [Pod(model.namespace, {"app": "debug"}), Pod("default", dict(gateway.labels))]
    assert len(strangers) >= 5
    for stranger in strangers:
        for port in (8080, 8081):
            assert not ingress_allows(policies, model, stranger, port), (stranger, port)


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_the_gateway_sends_traces_to_the_collector_pods_only(
    renderer: Renderer, environment: str
) -> None:
    """The gateway's egress reaches the collector the stack deploys (its pods' labels, in its
    namespace) on the OTLP port of otel.endpoint, and no other pod of the stack."""
    docs = renderer.render(environment, PLATFORM_APP)
    policies = [doc for doc in docs if doc["kind"] == "NetworkPolicy"]
    gateway = workload_pods(renderer, environment, PLATFORM_APP)["ocr-platform-gateway"]
    endpoint = load_yaml(ENVIRONMENTS / environment / "values.yaml")["otel"]["endpoint"]
    port = int(str(endpoint).rsplit(":", 1)[1])
    (collector,) = workload_pods(renderer, environment, "opentelemetry-collector").values()
    assert egress_allows(policies, gateway, collector, port)
    for name in ("kube-prometheus-stack", "tempo"):
        for pod in workload_pods(renderer, environment, name).values():
            assert not egress_allows(policies, gateway, pod, port), pod
    assert egress_allows(policies, gateway, Pod("kube-system", {"k8s-app": "kube-dns"}), 53, "UDP")


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_both_containers_read_the_model_token_from_the_bootstrap_secret(
    renderer: Renderer, environment: str
) -> None:
    """Argo CD renders without cluster access: the chart's generated token would change at
    every render, so every environment names a Secret the bootstrap script creates (random,
    through stdin, only when missing, before the root Application is applied), and no token
    Secret is rendered from Git."""
    docs = renderer.render(environment, PLATFORM_APP)
    assert not [doc for doc in docs if doc["kind"] == "Secret"]
    values_file = ENVIRONMENTS / environment / "values.yaml"
    secret = load_yaml(values_file)["model"]["auth"]["existingSecret"]
    assert secret
    expected = {"secretKeyRef": {"name": secret, "key": "token"}}
    for name, variable in (
        ("ocr-platform-gateway", "OCR_GATEWAY_MODEL_TOKEN"),
        ("ocr-platform-model", "OCR_MODEL_AUTH_TOKEN"),
    ):
        (entry,) = [e for e in platform_container(docs, name)["env"] if e["name"] == variable]
        assert entry == {"name": variable, "valueFrom": expected}, name
    # Documented in the environment's list of Secrets made out of band.
    assert values_file.read_text(encoding="utf-8").count(secret) >= 2
    script = BOOTSTRAP_SCRIPT.read_text(encoding="utf-8")
    namespace = destination(renderer, environment, PLATFORM_APP)
    assert f'MODEL_TOKEN_SECRET="{secret}"' in script
    assert f'APP_NAMESPACE="{namespace}"' in script
    create = script.index('create secret generic "$MODEL_TOKEN_SECRET"')
    assert script.index('get secret "$MODEL_TOKEN_SECRET"') < create
    assert "--from-file=token=/dev/stdin" in script[create : create + 200]
    assert "/dev/urandom" in script[create - 300 : create]
    assert create < script.index("--show-only templates/root.yaml")


def test_the_model_token_secret_is_documented() -> None:
    readme = README.read_text(encoding="utf-8")
    deploy = readme.split("\n## Deploy it\n", 1)[1].split("\n## ", 1)[0]
    chart_readme = (ROOT / "helm" / "ocr-platform" / "README.md").read_text(encoding="utf-8")
    for text in (deploy, chart_readme):
        assert "ocr-model-token" in text
        assert "NetworkPolic" in text
        assert "rollout restart" in text


#: The gateway's key id secret: the HMAC secret naming API keys in logs and tenants in the cache.
KEY_ID_VARIABLE: Final = "OCR_GATEWAY_KEY_ID_SECRET"
#: The name of that Secret in every environment (a name, not a secret).
KEY_ID_SECRET: Final = "ocr-gateway-key-id"  # noqa: S105
#: How an operator makes it by hand (README, chart README, production values): through stdin.
KEY_ID_COMMAND: Final = "create secret generic ocr-gateway-key-id --from-file=secret=/dev/stdin"


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_the_gateway_reads_the_key_id_secret_from_an_existing_secret(
    renderer: Renderer, environment: str
) -> None:
    """Like the model token: a Secret the chart generated would change at every render of
    Argo CD's, so every environment names one made out of band, by secretKeyRef, never a value."""
    docs = renderer.render(environment, PLATFORM_APP)
    assert not [doc for doc in docs if doc["kind"] == "Secret"]
    values_file = ENVIRONMENTS / environment / "values.yaml"
    secret = load_yaml(values_file)["gateway"]["keyIdSecret"]["existingSecret"]
    assert secret == KEY_ID_SECRET
    entries = [
        e
        for e in platform_container(docs, "ocr-platform-gateway")["env"]
        if e["name"] == KEY_ID_VARIABLE
    ]
    assert entries == [
        {"name": KEY_ID_VARIABLE, "valueFrom": {"secretKeyRef": {"name": secret, "key": "secret"}}}
    ]
    # Documented in the environment's list of Secrets made out of band.
    assert values_file.read_text(encoding="utf-8").count(secret) >= 2


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_the_bootstrap_script_creates_the_key_id_secret(
    renderer: Renderer, environment: str
) -> None:
    """Random, through stdin, only when missing, in the platform's namespace, before the root
    Application is applied (the gateway pods wait for it)."""
    secret = load_yaml(ENVIRONMENTS / environment / "values.yaml")["gateway"]["keyIdSecret"][
        "existingSecret"
    ]
    script = BOOTSTRAP_SCRIPT.read_text(encoding="utf-8")
    assert f'KEY_ID_SECRET="{secret}"' in script
    assert f'APP_NAMESPACE="{destination(renderer, environment, PLATFORM_APP)}"' in script
    create = script.index('create secret generic "$KEY_ID_SECRET"')
    assert script.index('get secret "$KEY_ID_SECRET"') < create
    assert "--from-file=secret=/dev/stdin" in script[create : create + 200]
    assert "/dev/urandom" in script[create - 300 : create]
    assert create < script.index("--show-only templates/root.yaml")


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_the_gateway_trusts_the_ingress_controller_only_behind_an_ingress(
    renderer: Renderer, environment: str
) -> None:
    """Behind the Ingress every client arrives from the controller's pods: the environment
    names their CIDR (else all clients share one address for the failed-key throttle). Without
    an Ingress no proxy is trusted and the variable is not set at all."""
    overrides = load_yaml(ENVIRONMENTS / environment / "values.yaml")["gateway"]
    docs = renderer.render(environment, PLATFORM_APP)
    env = {e["name"]: e for e in platform_container(docs, "ocr-platform-gateway")["env"]}
    if overrides.get("ingress", {}).get("enabled"):
        proxies = overrides["trustedProxies"]
        assert proxies
        assert env["OCR_GATEWAY_TRUSTED_PROXIES"] == {
            "name": "OCR_GATEWAY_TRUSTED_PROXIES",
            "value": ",".join(proxies),
        }
    else:
        assert "trustedProxies" not in overrides
        assert "OCR_GATEWAY_TRUSTED_PROXIES" not in env


def test_the_key_id_secret_and_trusted_proxies_are_documented() -> None:
    readme = README.read_text(encoding="utf-8")
    deploy = readme.split("\n## Deploy it\n", 1)[1].split("\n## ", 1)[0]
    chart_readme = (ROOT / "helm" / "ocr-platform" / "README.md").read_text(encoding="utf-8")
    production = (ENVIRONMENTS / "production" / "values.yaml").read_text(encoding="utf-8")
    for text in (deploy, chart_readme, production):
        assert "ocr-gateway-key-id" in text
        assert KEY_ID_COMMAND in text
        assert "trustedProxies" in text
    for text in (deploy, chart_readme):
        assert KEY_ID_VARIABLE in text
        assert "OCR_GATEWAY_TRUSTED_PROXIES" in text


# --- the routing helper itself -------------------------------------------------------------------


def test_routing_follows_alertmanagers_rules() -> None:
    route = {
        "receiver": "root",
        "routes": [
            {"receiver": "null", "matchers": ['alertname =~ "Watchdog|Info"']},
            {"matchers": ["severity = critical"], "continue": True},
            {"receiver": "team", "matchers": ['team != ""']},
            {"receiver": "other", "matchers": ["team=~.+"]},
        ],
    }
    assert receivers_for({"alertname": "Watchdog"}, route) == ["null"]
    assert receivers_for({"alertname": "WatchdogX"}, route) == ["root"]
    assert receivers_for({"alertname": "A", "severity": "critical"}, route) == ["root"]
    assert receivers_for({"alertname": "A", "severity": "critical", "team": "x"}, route) == [
        "root",
        "team",
    ]
    assert receivers_for({"alertname": "A", "team": "x"}, route) == ["team"]
    assert Matcher.parse('a="b c"') == Matcher("a", "=", "b c")
    with pytest.raises(ValueError, match="not a matcher"):
        Matcher.parse("severity")


def test_structure_checks_catch_what_alertmanager_refuses() -> None:
    config = {
        "route": {"receiver": "missing", "group_wait": "soon", "routes": [{"matchers": ["x"]}]},
        "receivers": [
            {"name": "a", "webhook_configs": [{"url": "http://x", "url_file": "/f"}]},
            {"name": "a", "slack_config": []},
        ],
    }
    found = "\n".join(problems(config))
    for expected in (
        "undefined receiver 'missing'",
        "unique",
        "exactly one of url and url_file",
        "unknown key 'slack_config'",
        "not a duration",
        "not a matcher",
    ):
        assert expected in found, found
