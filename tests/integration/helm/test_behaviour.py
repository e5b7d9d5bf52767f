"""What the rendered objects do: service discovery, exposure, scaling, isolation, settings."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import GatewaySettings
from model.settings import ModelSettings
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
    kserve_predictor_labels,
    pod_labels,
    pod_specs,
    values,
)
from tests.support.processes import ROOT

pytestmark = pytest.mark.integration

GATEWAY = "ocr-platform-gateway"
MODEL = "ocr-platform-model"
#: The chart's headless Service over KServe's predictor pods (inferenceservice mode, Standard).
PREDICTOR_GRPC = f"{MODEL}-grpc"
#: Labels KServe puts on every predictor pod besides predictor.labels.
KSERVE_PREDICTOR_LABELS = kserve_predictor_labels(MODEL)
H2C = "kubernetes.io/h2c"
MIB = 1024 * 1024
ENVIRONMENTS = ROOT / "argocd" / "environments"


def container(doc: Manifest) -> Manifest:
    spec = doc["spec"]["predictor"] if doc["kind"] == "InferenceService" else doc["spec"]
    pod = spec if doc["kind"] == "InferenceService" else spec["template"]["spec"]
    (first,) = pod["containers"]
    found: Manifest = first
    return found


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def cpu_cores(quantity: str | int | float) -> float:
    """A Kubernetes CPU quantity ("2", "500m", 2) in cores."""
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def routes(rule: Manifest, request_path: str) -> bool:
    """Whether an Ingress path rule sends `request_path` to its backend (Kubernetes semantics:
    Exact is equality, Prefix matches whole path elements; ImplementationSpecific is a prefix
    for ingress-nginx, so it is treated as one)."""
    if rule["pathType"] == "Exact":
        return bool(request_path == rule["path"])
    prefix = str(rule["path"]).rstrip("/")
    return request_path == prefix or request_path.startswith(prefix + "/")


def ingress_paths(rendered: Rendered) -> list[Manifest]:
    (ingress,) = rendered.kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    paths: list[Manifest] = rule["http"]["paths"]
    return paths


def nginx_size(text: str) -> int:
    """An ingress-nginx size ("21m", "1g", "512k", bytes) in bytes."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", text)
    assert match, f"not an nginx size: {text!r}"
    factor = {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}[match.group(2).lower()]
    return int(match.group(1)) * factor


def max_upload_bytes(gateway_values: Manifest) -> int:
    """The gateway's upload limit: OCR_GATEWAY_MAX_UPLOAD_BYTES from gateway.env, else the
    default of gateway/settings.py."""
    configured = gateway_values.get("env", {}).get("OCR_GATEWAY_MAX_UPLOAD_BYTES")
    if configured is not None:
        return int(configured)
    default: int = GatewaySettings.model_fields["max_upload_bytes"].default
    return default


def test_model_service_is_headless_and_selects_the_model_pods(
    rendered_all: dict[str, Rendered],
) -> None:
    rendered = rendered_all["default"]
    service = rendered.one("Service", MODEL)
    assert service["spec"]["clusterIP"] == "None"
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {"http": (8080, "http"), "grpc": (8081, "grpc")}
    # The standard value for HTTP/2 cleartext (what KServe gives its predictor ports), not "grpc".
    (grpc,) = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
    assert grpc["appProtocol"] == H2C
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
        # KServe 0.16's name; 0.17+ would rewrite RawDeployment to it (endless GitOps drift).
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    model = container(isvc)
    assert model["name"] == "kserve-container"
    assert model["ports"] == [{"name": "h2c", "containerPort": 8081, "protocol": "TCP"}]
    # The engine sets it itself (model/engine/backends.py); the chart leaves it to the engine.
    assert "OMP_THREAD_LIMIT" not in env_of(model)


def test_inferenceservice_gateway_balances_over_the_predictor_pods(
    rendered_all: dict[str, Rendered],
) -> None:
    """Standard mode: KServe's <isvc>-predictor Service has a cluster IP (one HTTP/2 connection
    per gateway pod would pin it to one predictor pod); a headless Service over the predictor
    pods gives the gateway's round_robin one subchannel per pod."""
    rendered = rendered_all["inferenceservice"]
    service = rendered.one("Service", PREDICTOR_GRPC)
    spec = service["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["ports"] == [
        {"name": "grpc", "port": 8081, "targetPort": 8081, "protocol": "TCP", "appProtocol": H2C}
    ]
    # Selected by the labels KServe itself puts on predictor pods, whatever predictor.labels say.
    assert spec["selector"] == KSERVE_PREDICTOR_LABELS
    isvc = rendered.one("InferenceService", MODEL)
    predictor_pod = {**pod_labels(isvc), **KSERVE_PREDICTOR_LABELS}
    assert selects(spec["selector"], predictor_pod)
    for other in (
        {**predictor_pod, "component": "transformer"},
        pod_labels(rendered.one("Deployment", GATEWAY)),
    ):
        assert not selects(spec["selector"], other)
    # No port named http: the ServiceMonitor (port http) never scrapes through it.
    assert "http" not in [p["name"] for p in spec["ports"]]
    env = env_of(container(rendered.one("Deployment", GATEWAY)))
    assert env["OCR_GATEWAY_MODEL_ADDRESS"] == (
        f"dns:///{PREDICTOR_GRPC}.{NAMESPACE}.svc.cluster.local:8081"
    )
    assert env["OCR_GATEWAY_LB_POLICY"] == "round_robin"


@pytest.mark.parametrize("scenario", ["default", "production", "inferenceservice"])
def test_model_ages_connections_so_gateways_find_new_pods(
    rendered_all: dict[str, Rendered], scenario: str
) -> None:
    """round_robin over a headless Service resolves DNS again only when a connection ends: the
    model's GOAWAY after OCR_MODEL_MAX_CONNECTION_AGE_S is how gateways reach pods added later."""
    rendered = rendered_all[scenario]
    env = env_of(container(model_workload(rendered)))
    assert "max_connection_age_s" in ModelSettings.model_fields
    assert float(env["OCR_MODEL_MAX_CONNECTION_AGE_S"]) > 0
    gateway = env_of(container(rendered.one("Deployment", GATEWAY)))
    assert gateway["OCR_GATEWAY_LB_POLICY"] == "round_robin"


def test_knative_gateway_dials_the_predictor_route(rendered_all: dict[str, Rendered]) -> None:
    """Knative mode: the activator and queue-proxy balance per request (and scale from zero);
    dialling the pods directly would bypass them, so no headless Service there."""
    rendered = rendered_all["inferenceservice-servicemonitor"]
    assert PREDICTOR_GRPC not in [s["metadata"]["name"] for s in rendered.kind("Service")]
    env = env_of(container(rendered.one("Deployment", GATEWAY)))
    assert env["OCR_GATEWAY_MODEL_ADDRESS"] == (
        f"dns:///{MODEL}-predictor.{NAMESPACE}.svc.cluster.local:80"
    )


@pytest.mark.parametrize(
    ("mode", "metric", "target"),
    [
        ("Standard", "cpu", 70),
        ("Standard", "memory", 80),
        ("RawDeployment", "cpu", 70),
        ("Knative", "concurrency", 4),
        ("Serverless", "rps", 20),
    ],
)
def test_inferenceservice_autoscaling_has_the_form_its_mode_validates(
    helm: Helm, mode: str, metric: str, target: int
) -> None:
    """Standard/RawDeployment: an HPA through spec.predictor.autoScaling (KServe 0.16 refuses
    scaleMetric: cpu under RawDeployment: it validates it as a Knative metric); Knative/
    Serverless: scaleMetric/scaleTarget for the Knative Pod Autoscaler."""
    rendered = helm.render(
        Scenario(
            f"isvc-{mode}",
            "ci/inferenceservice-values.yaml",
            (
                f"model.inferenceService.deploymentMode={mode}",
                f"model.inferenceService.scaleMetric={metric}",
                f"model.inferenceService.scaleTarget={target}",
            ),
        )
    )
    isvc = rendered.one("InferenceService", MODEL)
    annotations = isvc["metadata"]["annotations"]
    predictor = isvc["spec"]["predictor"]
    assert annotations["serving.kserve.io/deploymentMode"] == mode
    if mode in ("Standard", "RawDeployment"):
        assert annotations["serving.kserve.io/autoscalerClass"] == "hpa"
        assert "scaleMetric" not in predictor
        assert "scaleTarget" not in predictor
        assert predictor["autoScaling"] == {
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": metric,
                        "target": {"type": "Utilization", "averageUtilization": target},
                    },
                }
            ]
        }
        assert rendered.one("Service", PREDICTOR_GRPC)
    else:
        assert "serving.kserve.io/autoscalerClass" not in annotations
        assert "autoScaling" not in predictor
        assert (predictor["scaleMetric"], predictor["scaleTarget"]) == (metric, target)
        assert container(isvc)["livenessProbe"]["grpc"] == {"port": 8081}


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


@pytest.mark.parametrize("scenario", ["default", "minimal", "production", "inferenceservice"])
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


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_network_policies_cover_every_pod(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    """Every scenario (networkPolicy.enabled is the default): no pod is left out (checkov's
    CKV2_K8S_6 sees Deployments and Pods only, not InferenceService predictors)."""
    rendered = rendered_all[scenario.name]
    selectors = [p["spec"]["podSelector"]["matchLabels"] for p in rendered.kind("NetworkPolicy")]
    for doc in rendered.docs:
        if doc["kind"] in ("Deployment", "InferenceService", "Pod"):
            labels = pod_labels(doc)
            assert any(selects(s, labels) for s in selectors), doc["metadata"]["name"]


def test_ingress_publishes_the_api_only(rendered_all: dict[str, Rendered], helm: Helm) -> None:
    """/gateway (Prefix) by default; /metrics, the API docs and the health endpoints stay
    cluster-internal. `/` can be added as Exact with `/static` (the web page and its assets)."""
    internal = ("/metrics", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz")
    published = ingress_paths(rendered_all["production"])
    assert [(p["path"], p["pathType"]) for p in published] == [("/gateway", "Prefix")]
    with_root = ingress_paths(
        helm.render(
            Scenario(
                "ingress-root",
                sets=("gateway.ingress.enabled=true", "gateway.ingress.rootPath=true"),
            )
        )
    )
    assert [(p["path"], p["pathType"]) for p in with_root] == [
        ("/gateway", "Prefix"),
        ("/", "Exact"),
        ("/static", "Prefix"),
    ]
    for paths in (published, with_root):
        assert any(routes(p, "/gateway/ocr") for p in paths)
        for path in internal:
            assert not any(routes(p, path) for p in paths), path
    assert any(routes(p, "/") for p in with_root)
    assert any(routes(p, "/static/0123abcd/app.js") for p in with_root)
    assert not any(routes(p, "/static/0123abcd/app.js") for p in published)


def test_ingress_body_limit_fits_the_largest_upload(rendered_all: dict[str, Rendered]) -> None:
    """ingress-nginx refuses bodies over proxy-body-size: it must take the gateway's upload limit
    plus 1 MiB of multipart overhead (boundaries, part headers, the form fields)."""
    key = "nginx.ingress.kubernetes.io/proxy-body-size"
    checked = []
    rendered = rendered_all["production"]
    (ingress,) = rendered.kind("Ingress")
    gateway_values = values(rendered.scenario)["gateway"]
    checked.append(
        ("ci/production-values.yaml", ingress["metadata"]["annotations"][key], gateway_values)
    )
    for path in sorted(ENVIRONMENTS.glob("*/values.yaml")):
        gateway = yaml.safe_load(path.read_text()).get("gateway", {})
        limit = gateway.get("ingress", {}).get("annotations", {}).get(key)
        if gateway.get("ingress", {}).get("enabled") and limit is not None:
            checked.append((str(path.relative_to(ROOT)), limit, gateway))
    assert len(checked) >= 2
    for where, limit, gateway in checked:
        assert nginx_size(str(limit)) >= max_upload_bytes(gateway) + MIB, where


def test_api_keys_come_from_a_secret(rendered_all: dict[str, Rendered]) -> None:
    """gateway.apiKeys.existingSecret: OCR_GATEWAY_API_KEYS by secretKeyRef, no literal value."""
    gateway = container(rendered_all["production"].one("Deployment", GATEWAY))
    (entry,) = [e for e in gateway["env"] if e["name"] == "OCR_GATEWAY_API_KEYS"]
    assert entry == {
        "name": "OCR_GATEWAY_API_KEYS",
        "valueFrom": {"secretKeyRef": {"name": "ocr-gateway-api-keys", "key": "api-keys"}},
    }
    default = container(rendered_all["default"].one("Deployment", GATEWAY))
    assert "OCR_GATEWAY_API_KEYS" not in [e["name"] for e in default["env"]]


def test_plaintext_api_keys_reach_the_gateway_as_it_parses_them(
    helm: Helm, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = helm.render(
        Scenario(
            "plain-keys",
            sets=(
                # At least 16 characters each: the gateway refuses shorter keys.
                "gateway.apiKeys.plaintext={key-one-0123456789,key-two-0123456789}",
                "gateway.apiKeys.existingSecretKey=x",
            ),
        )
    )
    env = env_of(container(rendered.one("Deployment", GATEWAY)))
    # The gateway splits the variable at commas (gateway/settings.py, NoDecode: not JSON).
    monkeypatch.setenv("OCR_GATEWAY_API_KEYS", env["OCR_GATEWAY_API_KEYS"])
    settings = GatewaySettings()
    assert [key.get_secret_value() for key in settings.api_keys] == [
        "key-one-0123456789",
        "key-two-0123456789",
    ]


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


def model_workload(rendered: Rendered) -> Manifest:
    found = rendered.kind("InferenceService") or [rendered.one("Deployment", MODEL)]
    return found[0]


@pytest.mark.parametrize("scenario", ["default", "minimal", "production", "inferenceservice"])
def test_model_threads_match_its_cpu_limit(
    rendered_all: dict[str, Rendered], scenario: str
) -> None:
    """One worker per core of the limit (the engine itself keeps one Tesseract thread each):
    OCR_MODEL_WORKERS=0 makes the model count the cores of its cgroup quota, rounded up, so the
    limit must be whole cores; an explicit count must equal the limit."""
    model = container(model_workload(rendered_all[scenario]))
    env = env_of(model)
    assert "OMP_THREAD_LIMIT" not in env
    workers = values(rendered_all[scenario].scenario)["model"]["workers"]
    assert env["OCR_MODEL_WORKERS"] == str(workers)
    cores = cpu_cores(model["resources"]["limits"]["cpu"])
    if workers == 0:
        assert cores == math.ceil(cores) >= 1, f"{cores} CPUs: workers would oversubscribe"
    else:
        assert cores == workers


@pytest.mark.parametrize("scenario", ["default", "production", "inferenceservice"])
def test_model_reserves_the_cores_its_workers_use(
    rendered_all: dict[str, Rendered], scenario: str
) -> None:
    """Requests = limits: every worker's core is reserved (no two Tesseract threads on one core
    of a busy node), the pod is Guaranteed, and the HPA's utilisation of the request is the
    utilisation of the OCR capacity; the workers follow the limit."""
    rendered = rendered_all[scenario]
    model = container(model_workload(rendered))
    resources: dict[str, dict[str, Any]] = model["resources"]
    for resource in ("cpu", "memory"):
        assert str(resources["requests"][resource]) == str(resources["limits"][resource]), resource
    assert env_of(model)["OCR_MODEL_WORKERS"] == "0"
    hpas = [h for h in rendered.kind("HorizontalPodAutoscaler") if h["metadata"]["name"] == MODEL]
    for hpa in hpas:
        (metric,) = hpa["spec"]["metrics"]
        utilisation = metric["resource"]["target"]["averageUtilization"]
        assert 50 <= utilisation <= 90, "a target far from the capacity scales too early or late"


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
        (
            "default",
            [
                "kubectl -n ocr port-forward svc/ocr-platform-gateway 8001:8001",
                "Network policies: the model's ports take the gateway (gRPC 8081) and Prometheus",
                "Model token: Secret ocr-platform-model-token, key token (random, made by",
                "rollout restart deployment ocr-platform-gateway ocr-platform-model",
                "Secret ocr-platform-gateway-key-id, key secret (random, made by the chart",
                "Trusted proxies: none, the client address is the connection's peer.\n",
            ],
        ),
        ("minimal", ["NodePort 30001", ":30001"]),
        (
            "production",
            [
                "export GATEWAY_URL=https://ocr.example.com",
                "Traces: OTLP/grpc",
                "API keys are on",
                "kubectl -n ocr get secret ocr-gateway-api-keys",
                "Model token: Secret ocr-model-token, key token (made out of band)",
                "Secret ocr-gateway-key-id, key secret (made out of band)",
                "Trusted proxies: X-Forwarded-For is believed from 10.244.0.0/16 only.",
            ],
        ),
        (
            "inferenceservice",
            [
                "svc/ocr-platform-model-grpc 8081:8081",
                "dns:///ocr-platform-model-grpc.ocr.svc.cluster.local:8081",
                "rollout restart deployment ocr-platform-gateway ocr-platform-model-predictor",
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
