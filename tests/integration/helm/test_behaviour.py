"""What the rendered objects do: service discovery, exposure, scaling, isolation, settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.integration.helm.chart import (
    ALL_SCENARIOS,
    CHART,
    NAMESPACE,
    RELEASE,
    Helm,
    Manifest,
    Rendered,
    Scenario,
    env_of,
    pod_labels,
    pod_specs,
    values,
)

pytestmark = pytest.mark.integration

GATEWAY = "ocr-platform-gateway"
MODEL = "ocr-platform-model"


def container(doc: Manifest) -> Manifest:
    spec = doc["spec"]["predictor"] if doc["kind"] == "InferenceService" else doc["spec"]
    pod = spec if doc["kind"] == "InferenceService" else spec["template"]["spec"]
    (first,) = pod["containers"]
    found: Manifest = first
    return found


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_model_service_is_headless_and_selects_the_model_pods(
    rendered_all: dict[str, Rendered],
) -> None:
    rendered = rendered_all["default"]
    service = rendered.one("Service", MODEL)
    assert service["spec"]["clusterIP"] == "None"
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {"http": (8080, "http"), "grpc": (8081, "grpc")}
    model = rendered.one("Deployment", MODEL)
    assert selects(service["spec"]["selector"], pod_labels(model))
    gateway = rendered.one("Deployment", GATEWAY)
    assert not selects(service["spec"]["selector"], pod_labels(gateway))


@pytest.mark.parametrize("scenario", ["default", "minimal", "production"])
def test_gateway_balances_over_the_headless_service(
    rendered_all: dict[str, Rendered], scenario: str
) -> None:
    env = env_of(container(rendered_all[scenario].one("Deployment", GATEWAY)))
    assert env["OCR_GATEWAY_MODEL_ADDRESS"] == (
        f"dns:///{MODEL}.{NAMESPACE}.svc.cluster.local:8081"
    )
    assert env["OCR_GATEWAY_LB_POLICY"] == "round_robin"


def test_gateway_service_is_cluster_ip_by_default(rendered_all: dict[str, Rendered]) -> None:
    service = rendered_all["default"].one("Service", GATEWAY)
    assert service["spec"]["type"] == "ClusterIP"
    assert "nodePort" not in service["spec"]["ports"][0]


def test_gateway_node_port_when_asked(rendered_all: dict[str, Rendered], helm: Helm) -> None:
    for rendered in (rendered_all["minimal"], rendered_all["servicemonitor"]):
        service = rendered.one("Service", GATEWAY)
        assert service["spec"]["type"] == "NodePort"
        (port,) = service["spec"]["ports"]
        assert (port["port"], port["nodePort"]) == (8001, 30001)
    other = helm.render(
        Scenario(
            "nodeport-32000",
            sets=("gateway.service.type=NodePort", "gateway.service.nodePort=32000"),
        )
    )
    assert other.one("Service", GATEWAY)["spec"]["ports"][0]["nodePort"] == 32000


@pytest.mark.parametrize("scenario", ["inferenceservice", "inferenceservice-servicemonitor"])
def test_inferenceservice_mode_replaces_the_model_deployment(
    rendered_all: dict[str, Rendered], scenario: str
) -> None:
    rendered = rendered_all[scenario]
    assert [d["metadata"]["name"] for d in rendered.kind("Deployment")] == [GATEWAY]
    assert MODEL not in [s["metadata"]["name"] for s in rendered.kind("Service")]
    assert [h["metadata"]["name"] for h in rendered.kind("HorizontalPodAutoscaler")] in (
        [],
        [GATEWAY],
    )
    isvc = rendered.one("InferenceService", MODEL)
    predictor = isvc["spec"]["predictor"]
    merged = values(rendered.scenario)["model"]["inferenceService"]
    if not rendered.scenario.sets:
        assert (predictor["minReplicas"], predictor["maxReplicas"]) == (
            merged["minReplicas"],
            merged["maxReplicas"],
        )
        assert (
            isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
        )
    model = container(isvc)
    assert model["name"] == "kserve-container"
    assert model["ports"] == [{"name": "h2c", "containerPort": 8081, "protocol": "TCP"}]
    # The engine sets it itself (model/engine/backends.py); the chart leaves it to the engine.
    assert "OMP_THREAD_LIMIT" not in env_of(model)
    gateway_env = env_of(container(rendered.one("Deployment", GATEWAY)))
    assert gateway_env["OCR_GATEWAY_MODEL_ADDRESS"] == (
        f"dns:///{MODEL}-predictor.{NAMESPACE}.svc.cluster.local:80"
    )


def test_model_address_can_be_overridden(helm: Helm) -> None:
    target = "dns:///ocr-platform-model-predictor.ocr.svc.cluster.local:8081"
    rendered = helm.render(
        Scenario(
            "headless-isvc", "ci/inferenceservice-values.yaml", (f"gateway.modelAddress={target}",)
        )
    )
    assert (
        env_of(container(rendered.one("Deployment", GATEWAY)))["OCR_GATEWAY_MODEL_ADDRESS"]
        == target
    )


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_service_account_token_is_never_mounted(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    rendered = rendered_all[scenario.name]
    (account,) = rendered.kind("ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    for pod in pod_specs(rendered):
        assert pod.spec["serviceAccountName"] == account["metadata"]["name"], pod.owner
        assert pod.spec["automountServiceAccountToken"] is False, pod.owner


@pytest.mark.parametrize("scenario", ["production", "inferenceservice"])
def test_only_gateway_pods_reach_the_model_grpc_port(
    rendered_all: dict[str, Rendered], scenario: str
) -> None:
    rendered = rendered_all[scenario]
    workloads = {
        d["metadata"]["name"]: d
        for d in rendered.docs
        if d["kind"] in ("Deployment", "InferenceService")
    }
    model_labels = pod_labels(workloads[MODEL])
    gateway_labels = pod_labels(workloads[GATEWAY])
    policies = [
        p
        for p in rendered.kind("NetworkPolicy")
        if selects(p["spec"]["podSelector"]["matchLabels"], model_labels)
    ]
    assert len(policies) == 1
    (policy,) = policies
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    grpc_rules = [
        r for r in policy["spec"]["ingress"] if {"port": 8081, "protocol": "TCP"} in r["ports"]
    ]
    (grpc_rule,) = grpc_rules
    assert grpc_rule["ports"] == [{"port": 8081, "protocol": "TCP"}]
    (peer,) = grpc_rule["from"]
    assert set(peer) == {"podSelector"}, "gRPC must not be open to other namespaces"
    assert selects(peer["podSelector"]["matchLabels"], gateway_labels)
    assert not selects(peer["podSelector"]["matchLabels"], model_labels)
    metrics_rules = [r for r in policy["spec"]["ingress"] if r is not grpc_rule]
    assert [r["ports"] for r in metrics_rules] == [[{"port": 8080, "protocol": "TCP"}]]
    prometheus = values(rendered.scenario)["networkPolicy"]["prometheus"]
    assert metrics_rules[0]["from"] == [
        {
            "namespaceSelector": prometheus["namespaceSelector"],
            "podSelector": prometheus["podSelector"],
        }
    ]


@pytest.mark.parametrize("scenario", ["production", "inferenceservice"])
def test_network_policies_cover_every_pod(rendered_all: dict[str, Rendered], scenario: str) -> None:
    """The check behind the CKV2_K8S_6 skip: with networkPolicy.enabled no pod is left out."""
    rendered = rendered_all[scenario]
    selectors = [p["spec"]["podSelector"]["matchLabels"] for p in rendered.kind("NetworkPolicy")]
    for doc in rendered.docs:
        if doc["kind"] in ("Deployment", "InferenceService", "Pod"):
            labels = pod_labels(doc)
            assert any(selects(s, labels) for s in selectors), doc["metadata"]["name"]


def test_gateway_port_is_open_and_metrics_reach_prometheus(
    rendered_all: dict[str, Rendered],
) -> None:
    policy = rendered_all["production"].one("NetworkPolicy", GATEWAY)
    assert policy["spec"]["ingress"] == [{"ports": [{"port": 8001, "protocol": "TCP"}]}]


def test_minimal_has_no_optional_objects(rendered_all: dict[str, Rendered]) -> None:
    rendered = rendered_all["minimal"]
    kinds = {doc["kind"] for doc in rendered.docs}
    for absent in (
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "PodMonitor",
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
        "Ingress",
        "ConfigMap",
    ):
        assert absent not in kinds
    for name in (GATEWAY, MODEL):
        assert rendered.one("Deployment", name)["spec"]["replicas"] == 1


def test_production_scales_tolerates_disruption_and_pulls_privately(
    rendered_all: dict[str, Rendered],
) -> None:
    rendered = rendered_all["production"]
    for name in (GATEWAY, MODEL):
        hpa = rendered.one("HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert "replicas" not in rendered.one("Deployment", name)["spec"]
        pdb = rendered.one("PodDisruptionBudget", name)
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] in name
    for pod in pod_specs(rendered):
        assert pod.spec["imagePullSecrets"] == [{"name": "regcred"}], pod.owner
    ingress = rendered.one("Ingress", GATEWAY)
    assert ingress["spec"]["tls"] == [
        {"secretName": "ocr-example-com-tls", "hosts": ["ocr.example.com"]}
    ]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": GATEWAY, "port": {"name": "http"}}


def test_pdb_only_with_more_than_one_replica(rendered_all: dict[str, Rendered]) -> None:
    names = [p["metadata"]["name"] for p in rendered_all["default"].kind("PodDisruptionBudget")]
    assert sorted(names) == [GATEWAY, MODEL]
    assert not rendered_all["minimal"].kind("PodDisruptionBudget")
    isvc = rendered_all["inferenceservice"].one("PodDisruptionBudget", MODEL)
    assert isvc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "model"


@pytest.mark.parametrize("scenario", ["default", "production"])
def test_tracing_env_only_with_an_endpoint(
    rendered_all: dict[str, Rendered], scenario: str
) -> None:
    endpoint = values(rendered_all[scenario].scenario)["otel"]["endpoint"]
    for name, service_name in ((GATEWAY, "ocr-gateway"), (MODEL, "ocr-model")):
        env = env_of(container(rendered_all[scenario].one("Deployment", name)))
        if endpoint:
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint
            assert env["OTEL_SERVICE_NAME"] == service_name
            assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
            assert "k8s.pod.name=$(OTEL_K8S_POD_NAME)" in env["OTEL_RESOURCE_ATTRIBUTES"]
        else:
            assert not [key for key in env if key.startswith("OTEL_")]


@pytest.mark.parametrize("scenario", ["default", "minimal", "production"])
def test_model_threads_match_its_cpu_limit(
    rendered_all: dict[str, Rendered], scenario: str
) -> None:
    """One worker per core of the limit (the engine itself keeps one Tesseract thread each)."""
    model = container(rendered_all[scenario].one("Deployment", MODEL))
    env = env_of(model)
    assert "OMP_THREAD_LIMIT" not in env
    workers = values(rendered_all[scenario].scenario)["model"]["workers"]
    assert env["OCR_MODEL_WORKERS"] == str(workers)
    assert str(model["resources"]["limits"]["cpu"]) == str(workers)


def test_model_probes_use_grpc_health_and_rest_liveness(rendered_all: dict[str, Rendered]) -> None:
    model = container(rendered_all["default"].one("Deployment", MODEL))
    assert model["startupProbe"]["grpc"] == {"port": 8081}
    assert model["startupProbe"]["failureThreshold"] * model["startupProbe"]["periodSeconds"] >= 60
    assert model["readinessProbe"]["grpc"] == {"port": 8081}
    assert model["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    gateway = container(rendered_all["default"].one("Deployment", GATEWAY))
    assert gateway["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_extra_env_is_added(helm: Helm) -> None:
    rendered = helm.render(
        Scenario(
            "env",
            sets=(
                "gateway.env.OCR_GATEWAY_LOG_LEVEL=debug",
                "model.env.OCR_MODEL_ENGINE=pytesseract",
            ),
        )
    )
    assert (
        env_of(container(rendered.one("Deployment", GATEWAY)))["OCR_GATEWAY_LOG_LEVEL"] == "debug"
    )
    assert env_of(container(rendered.one("Deployment", MODEL)))["OCR_MODEL_ENGINE"] == "pytesseract"


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("default", ["kubectl -n ocr port-forward svc/ocr-platform-gateway 8001:8001"]),
        ("minimal", ["NodePort 30001", ":30001"]),
        ("production", ["export GATEWAY_URL=https://ocr.example.com", "Traces: OTLP/grpc"]),
        (
            "inferenceservice",
            [
                "svc/ocr-platform-model-predictor 8081:80",
                "gateway.modelAddress=dns:///ocr-platform-model-predictor.ocr.svc.cluster.local:8081",
            ],
        ),
    ],
)
def test_notes_tell_how_to_reach_the_platform(
    helm: Helm, tmp_path: Path, scenario: str, expected: list[str]
) -> None:
    """NOTES.txt, rendered through a copy of the chart (helm template leaves NOTES out)."""
    chart = tmp_path / "ocr-platform"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n"
        '{{ include "ocr-platform/templates/NOTES.txt" . | indent 4 }}\n'
    )
    (found,) = [s for s in ALL_SCENARIOS if s.name == scenario]
    args = [a.replace(str(CHART), str(chart)) for a in found.args()]
    result = helm.run(
        "template",
        RELEASE,
        str(chart),
        "--namespace",
        NAMESPACE,
        *args,
        "--show-only",
        "templates/zz-notes.yaml",
    )
    assert result.returncode == 0, result.stderr
    notes = yaml.safe_load(result.stdout)["data"]["notes"]
    for line in [*expected, "curl -F image_file=@scan.png", "grpcurl -plaintext localhost:8081"]:
        assert line in notes, notes
