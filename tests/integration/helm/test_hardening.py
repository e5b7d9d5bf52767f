"""Hardening by default: NetworkPolicies around the model server and the gateway, the model's
bearer token in both containers from one Secret, the gateway's key id secret from a Secret, and
proxies trusted only when named, in every scenario.

What the policies let through is worked out by Kubernetes' rules (tests/support/network_policy.py)
for pods as the cluster runs them: the chart's own, kube-prometheus-stack's Prometheus, CoreDNS,
Knative's pods and strangers in and out of the release's namespace.
"""

from __future__ import annotations

import base64
import string

import pytest
import yaml

from gateway.__main__ import proxy_options
from gateway.settings import MIN_KEY_CHARS, GatewaySettings
from tests.integration.helm.chart import (
    ALL_SCENARIOS,
    CHART,
    NAMESPACE,
    RELEASE,
    Helm,
    Manifest,
    Rendered,
    Scenario,
    pod_labels,
    values,
)
from tests.support.network_policy import (
    Pod,
    egress_allows,
    ingress_allows,
    reachable,
    selects,
)

pytestmark = pytest.mark.integration

GATEWAY = f"{RELEASE}-gateway"
MODEL = f"{RELEASE}-model"
TEST = f"{RELEASE}-test"
#: The chart's own token Secret, when model.auth.existingSecret is empty.
GENERATED_SECRET = f"{MODEL}-token"
#: The variable each container reads the token from: the gateway sends it, the model requires it.
TOKEN_VARIABLE = {GATEWAY: "OCR_GATEWAY_MODEL_TOKEN", MODEL: "OCR_MODEL_AUTH_TOKEN"}
#: The chart's own key id Secret, when gateway.keyIdSecret.existingSecret is empty.
GENERATED_KEY_ID_SECRET = f"{GATEWAY}-key-id"
KEY_ID_VARIABLE = "OCR_GATEWAY_KEY_ID_SECRET"
KEY_ID_TEMPLATE = "templates/gateway-key-id-secret.yaml"
PROXIES_VARIABLE = "OCR_GATEWAY_TRUSTED_PROXIES"
REST, GRPC, API = 8080, 8081, 8001
#: kube-prometheus-stack's Prometheus pod in `monitoring` (labels prometheus-operator sets).
PROMETHEUS = Pod(
    "monitoring",
    {
        "app.kubernetes.io/name": "prometheus",
        "app.kubernetes.io/instance": "kps-prometheus",
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "prometheus": "kps-prometheus",
    },
)
COREDNS = Pod("kube-system", {"k8s-app": "kube-dns", "pod-template-hash": "5d78c9869d"})
COLLECTOR = Pod(
    "observability", {"app.kubernetes.io/name": "opentelemetry-collector", "component": "x"}
)
ACTIVATOR = Pod("knative-serving", {"app": "activator"})
KOURIER = Pod("kourier-system", {"app": "3scale-kourier-gateway"})
INGRESS_NGINX = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
#: Pods that must not reach the model's ports: anything but the gateway and Prometheus.
STRANGERS = (
    Pod(NAMESPACE, {"app": "debug"}),
    Pod(NAMESPACE, {"app.kubernetes.io/name": "ocr-platform", "app.kubernetes.io/component": "x"}),
    Pod("monitoring", {"app.kubernetes.io/name": "grafana"}),
    Pod("default", dict(PROMETHEUS.labels)),
    Pod("default", {"app.kubernetes.io/component": "gateway"}),
    ACTIVATOR,
    KOURIER,
    INGRESS_NGINX,
)


def is_knative(scenario: Scenario) -> bool:
    return any(s.startswith("model.inferenceService.deploymentMode=Knative") for s in scenario.sets)


def workload(rendered: Rendered, name: str) -> Manifest:
    found = [
        d
        for d in rendered.docs
        if d["kind"] in ("Deployment", "InferenceService") and d["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"{rendered.scenario.name}: {name}"
    return found[0]


def pod_of(rendered: Rendered, name: str) -> Pod:
    """A pod of the workload `name` as the cluster runs it (KServe's labels on predictors)."""
    doc = workload(rendered, name)
    spec = doc["spec"]["predictor"] if doc["kind"] == "InferenceService" else doc["spec"]
    pod = spec if doc["kind"] == "InferenceService" else spec["template"]["spec"]
    ports = {
        p["name"]: p["containerPort"]
        for c in pod["containers"]
        for p in c.get("ports", [])
        if "name" in p
    }
    return Pod(NAMESPACE, pod_labels(doc), ports)


def helm_test_pod(rendered: Rendered) -> Pod:
    (pod,) = rendered.kind("Pod")
    return Pod(NAMESPACE, pod["metadata"]["labels"])


def container(doc: Manifest) -> Manifest:
    spec = doc["spec"]["predictor"] if doc["kind"] == "InferenceService" else doc["spec"]
    pod = spec if doc["kind"] == "InferenceService" else spec["template"]["spec"]
    (first,) = pod["containers"]
    found: Manifest = first
    return found


def env_entry(doc: Manifest, name: str) -> Manifest:
    entries = [e for e in container(doc).get("env", []) if e["name"] == name]
    assert len(entries) == 1, f"{doc['metadata']['name']}: {name} is set {len(entries)} times"
    entry: Manifest = entries[0]
    return entry


def decoded_token(secret: Manifest, key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def secrets_named(rendered: Rendered, name: str) -> list[Manifest]:
    return [s for s in rendered.kind("Secret") if s["metadata"]["name"] == name]


def gateway_env_names(rendered: Rendered) -> list[str]:
    return [e["name"] for e in container(workload(rendered, GATEWAY)).get("env", [])]


# --- NetworkPolicies --------------------------------------------------------------------------


def test_network_policies_are_on_by_default(helm: Helm) -> None:
    """Plain `helm template`, no values: the model, gateway and test pods are isolated."""
    result = helm.template()
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    names = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "NetworkPolicy")
    assert names == [GATEWAY, MODEL, TEST]
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert defaults["networkPolicy"]["enabled"] is True


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_only_the_gateway_and_prometheus_reach_the_model(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    """Gateway pods: gRPC only; Prometheus (namespace monitoring, app.kubernetes.io/name:
    prometheus): the metrics port only; nobody else reaches either port."""
    rendered = rendered_all[scenario.name]
    policies = rendered.kind("NetworkPolicy")
    assert {p["metadata"]["name"] for p in policies} >= {GATEWAY, MODEL}
    model, gateway = pod_of(rendered, MODEL), pod_of(rendered, GATEWAY)
    assert ingress_allows(policies, model, gateway, GRPC)
    assert not ingress_allows(policies, model, gateway, REST)
    assert reachable(policies, PROMETHEUS, model, REST)
    assert not ingress_allows(policies, model, PROMETHEUS, GRPC)
    for stranger in (*STRANGERS, helm_test_pod(rendered)):
        for port in (REST, GRPC):
            assert not ingress_allows(policies, model, stranger, port), (stranger, port)
    if not is_knative(scenario):
        # Straight to the pods (headless Service): the gateway's egress lets it out too.
        assert reachable(policies, gateway, model, GRPC)


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_the_prometheus_peer_is_configurable_and_defaults_to_kube_prometheus_stack(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    rendered = rendered_all[scenario.name]
    prometheus = values(scenario)["networkPolicy"]["prometheus"]
    assert prometheus == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }
    policy = rendered.one("NetworkPolicy", MODEL)
    (metrics,) = [
        r for r in policy["spec"]["ingress"] if r["ports"] == [{"port": REST, "protocol": "TCP"}]
    ]
    assert metrics["from"] == [prometheus]


def test_another_prometheus_can_be_named(helm: Helm) -> None:
    rendered = helm.render(
        Scenario(
            "other-prometheus",
            sets=(
                "networkPolicy.prometheus.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=observability",
                "networkPolicy.prometheus.podSelector.matchLabels.app=prometheus-server",
            ),
        )
    )
    policies = rendered.kind("NetworkPolicy")
    model = pod_of(rendered, MODEL)
    ours = Pod(
        "observability", {"app": "prometheus-server", "app.kubernetes.io/name": "prometheus"}
    )
    assert ingress_allows(policies, model, ours, REST)
    assert not ingress_allows(policies, model, ours, GRPC)


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_gateway_takes_its_port_and_sends_only_to_the_model_dns_and_collector(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    rendered = rendered_all[scenario.name]
    policies = rendered.kind("NetworkPolicy")
    gateway = pod_of(rendered, GATEWAY)
    for client in (INGRESS_NGINX, Pod("default", {"app": "client"}), PROMETHEUS):
        assert ingress_allows(policies, gateway, client, API), client
        assert not ingress_allows(policies, gateway, client, API + 1), client
    for protocol in ("UDP", "TCP"):
        assert egress_allows(policies, gateway, COREDNS, 53, protocol)
    for other, port in (
        (Pod("default", {"app": "web"}), 443),
        (Pod("default", {"app": "web"}), GRPC),
        (PROMETHEUS, 9090),
        (COREDNS, 9153),
        (Pod(NAMESPACE, {"app": "debug"}), GRPC),
    ):
        assert not egress_allows(policies, gateway, other, port), (other, port)
    endpoint = values(scenario)["otel"]["endpoint"]
    if endpoint:
        port = int(endpoint.rsplit(":", 1)[1])
        assert egress_allows(policies, gateway, COLLECTOR, port)
        assert not egress_allows(policies, gateway, COLLECTOR, port + 1)
    else:
        assert not egress_allows(policies, gateway, COLLECTOR, 4317)
    if is_knative(scenario):
        # The predictor route: Knative's ingress and activator, which reach the queue-proxy.
        model = pod_of(rendered, MODEL)
        assert egress_allows(policies, gateway, KOURIER, 8081)
        assert not egress_allows(policies, gateway, model, GRPC)
        assert ingress_allows(policies, model, ACTIVATOR, 8012)
        assert ingress_allows(policies, model, KOURIER, 8013)
        assert not ingress_allows(policies, model, Pod(NAMESPACE, {"app": "debug"}), 8012)


@pytest.mark.parametrize(
    ("endpoint", "port"),
    [
        ("http://otel-collector.monitoring.svc.cluster.local:4317", 4317),
        ("https://collector.example.com:4318/v1/traces", 4318),
        ("https://collector.example.com", 443),
        ("http://collector", 80),
    ],
)
def test_gateway_reaches_the_collector_on_the_endpoints_port(
    helm: Helm, endpoint: str, port: int
) -> None:
    rendered = helm.render(Scenario("otlp", sets=(f"otel.endpoint={endpoint}",)))
    policies = rendered.kind("NetworkPolicy")
    gateway = pod_of(rendered, GATEWAY)
    assert egress_allows(policies, gateway, COLLECTOR, port)
    assert not egress_allows(policies, gateway, COLLECTOR, port + 1)


def test_collector_peers_narrow_the_traces(helm: Helm) -> None:
    rendered = helm.render(
        Scenario(
            "otlp-peers",
            sets=(
                "otel.endpoint=http://otel-collector.observability:4317",
                "networkPolicy.otelCollector.to[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=observability",
                "networkPolicy.otelCollector.to[0].podSelector.matchLabels.app\\.kubernetes\\.io/name=opentelemetry-collector",
            ),
        )
    )
    policies = rendered.kind("NetworkPolicy")
    gateway = pod_of(rendered, GATEWAY)
    assert egress_allows(policies, gateway, COLLECTOR, 4317)
    assert not egress_allows(policies, gateway, Pod("default", {"app": "sink"}), 4317)


def test_ingress_controller_namespace_narrows_the_gateway(helm: Helm) -> None:
    rendered = helm.render(
        Scenario(
            "ingress-namespace",
            sets=("networkPolicy.gateway.ingressControllerNamespace=ingress-nginx",),
        )
    )
    policies = rendered.kind("NetworkPolicy")
    gateway = pod_of(rendered, GATEWAY)
    for allowed in (INGRESS_NGINX, PROMETHEUS, helm_test_pod(rendered)):
        assert ingress_allows(policies, gateway, allowed, API), allowed
    for refused in (Pod("default", {"app": "client"}), Pod(NAMESPACE, {"app": "debug"})):
        assert not ingress_allows(policies, gateway, refused, API), refused
    # The model's rules do not change with it.
    assert reachable(policies, gateway, pod_of(rendered, MODEL), GRPC)


def test_extra_egress_and_peers_are_added(helm: Helm) -> None:
    rendered = helm.render(
        Scenario(
            "extra-egress",
            sets=(
                "networkPolicy.gateway.from[0].podSelector.matchLabels.role=client",
                "networkPolicy.gateway.extraEgress[0].ports[0].port=9443",
            ),
        )
    )
    policies = rendered.kind("NetworkPolicy")
    gateway = pod_of(rendered, GATEWAY)
    assert ingress_allows(policies, gateway, Pod(NAMESPACE, {"role": "client"}), API)
    assert not ingress_allows(policies, gateway, Pod("default", {"role": "client"}), API)
    assert egress_allows(policies, gateway, Pod("default", {"app": "web"}), 9443)


def test_network_policies_can_be_turned_off(helm: Helm) -> None:
    rendered = helm.render(Scenario("no-policies", sets=("networkPolicy.enabled=false",)))
    assert not rendered.kind("NetworkPolicy")


def test_the_policy_reader_notices_what_matters() -> None:
    """The rules tests/support/network_policy.py applies, on hand-made policies."""
    target = Pod("app", {"role": "db"})
    client = Pod("app", {"role": "api"})
    deny_all: Manifest = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny", "namespace": "app"},
        "spec": {"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Ingress"]},
    }
    assert ingress_allows([], target, client, 5432)
    assert not ingress_allows([deny_all], target, client, 5432)
    allow: Manifest = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow", "namespace": "app"},
        "spec": {
            "podSelector": {},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"role": "api"}}}],
                    "ports": [{"port": 5432}],
                }
            ],
        },
    }
    assert ingress_allows([deny_all, allow], target, client, 5432)
    assert not ingress_allows([deny_all, allow], target, client, 5433)
    assert not ingress_allows([deny_all, allow], target, Pod("other", {"role": "api"}), 5432)
    expression = {"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]}
    assert selects(expression, {"a": "x"})
    assert not selects(expression, {"a": "y"})


# --- the model token --------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_both_containers_read_the_model_token_from_one_secret(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    """OCR_GATEWAY_MODEL_TOKEN (sent) and OCR_MODEL_AUTH_TOKEN (required): the same Secret and
    key, by secretKeyRef, never a literal value; the Deployment or the InferenceService
    predictor alike."""
    rendered = rendered_all[scenario.name]
    auth = values(scenario)["model"]["auth"]
    expected = {
        "name": auth["existingSecret"] or GENERATED_SECRET,
        "key": auth["existingSecretKey"],
    }
    gateway = env_entry(workload(rendered, GATEWAY), TOKEN_VARIABLE[GATEWAY])
    model = env_entry(workload(rendered, MODEL), TOKEN_VARIABLE[MODEL])
    for entry in (gateway, model):
        assert "value" not in entry, entry
        assert entry["valueFrom"] == {"secretKeyRef": expected}, entry


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_the_chart_makes_the_token_secret_only_without_an_existing_one(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    rendered = rendered_all[scenario.name]
    auth = values(scenario)["model"]["auth"]
    if auth["existingSecret"]:
        assert secrets_named(rendered, auth["existingSecret"]) == [], "only referred to"
        assert secrets_named(rendered, GENERATED_SECRET) == []
        return
    (secret,) = secrets_named(rendered, GENERATED_SECRET)
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert secret["type"] == "Opaque"
    assert list(secret["data"]) == [auth["existingSecretKey"]]
    token = decoded_token(secret, auth["existingSecretKey"])
    assert len(token) == 32
    assert set(token) <= set(string.ascii_letters + string.digits)


def test_a_render_without_a_cluster_makes_a_random_32_character_token(helm: Helm) -> None:
    """No cluster to look the Secret up in (`helm template`, Argo CD): a new random token at
    every render, which is why the Argo CD environments name an existing Secret."""
    tokens = []
    for _ in range(2):
        result = helm.template("--show-only", "templates/model-token-secret.yaml")
        assert result.returncode == 0, result.stderr
        tokens.append(decoded_token(yaml.safe_load(result.stdout), "token"))
    for token in tokens:
        assert len(token) == 32
        assert token.isalnum()


def test_the_token_key_is_configurable(helm: Helm) -> None:
    rendered = helm.render(Scenario("token-key", sets=("model.auth.existingSecretKey=bearer",)))
    (secret,) = secrets_named(rendered, GENERATED_SECRET)
    assert len(decoded_token(secret, "bearer")) == 32
    for name, variable in TOKEN_VARIABLE.items():
        reference = env_entry(workload(rendered, name), variable)["valueFrom"]["secretKeyRef"]
        assert reference == {"name": GENERATED_SECRET, "key": "bearer"}


def test_the_gateway_reads_the_token_the_chart_generates(
    helm: Helm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variable the chart sets is the gateway's setting, and the generated token passes the
    gateway's checks (printable ASCII, no spaces)."""
    result = helm.template("--show-only", "templates/model-token-secret.yaml")
    assert result.returncode == 0, result.stderr
    token = decoded_token(yaml.safe_load(result.stdout), "token")
    monkeypatch.setenv(TOKEN_VARIABLE[GATEWAY], token)
    model_token = GatewaySettings().model_token
    assert model_token is not None
    assert model_token.get_secret_value() == token


def test_the_secret_reuses_the_token_in_the_cluster() -> None:
    """An upgrade keeps the token: the template looks the Secret up before generating one
    (`lookup` needs a cluster, which these tests do not have: the template is read)."""
    template = (CHART / "templates" / "model-token-secret.yaml").read_text()
    assert 'lookup "v1" "Secret" .Release.Namespace $name' in template
    assert "randAlphaNum 32" in template


# --- the key id secret --------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_the_gateway_reads_the_key_id_secret_from_a_secret(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    """OCR_GATEWAY_KEY_ID_SECRET by secretKeyRef, never a literal value: the chart's own Secret
    or gateway.keyIdSecret.existingSecret, the same on every replica."""
    rendered = rendered_all[scenario.name]
    settings = values(scenario)["gateway"]["keyIdSecret"]
    entry = env_entry(workload(rendered, GATEWAY), KEY_ID_VARIABLE)
    assert entry == {
        "name": KEY_ID_VARIABLE,
        "valueFrom": {
            "secretKeyRef": {
                "name": settings["existingSecret"] or GENERATED_KEY_ID_SECRET,
                "key": settings["existingSecretKey"],
            }
        },
    }


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_the_chart_makes_the_key_id_secret_only_without_an_existing_one(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    rendered = rendered_all[scenario.name]
    settings = values(scenario)["gateway"]["keyIdSecret"]
    if settings["existingSecret"]:
        assert secrets_named(rendered, settings["existingSecret"]) == [], "only referred to"
        assert secrets_named(rendered, GENERATED_KEY_ID_SECRET) == []
        return
    (secret,) = secrets_named(rendered, GENERATED_KEY_ID_SECRET)
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"
    assert secret["type"] == "Opaque"
    assert list(secret["data"]) == [settings["existingSecretKey"]]
    value = decoded_token(secret, settings["existingSecretKey"])
    assert len(value) == 32
    assert set(value) <= set(string.ascii_letters + string.digits)


def test_an_existing_key_id_secret_and_key_are_referred_to(helm: Helm) -> None:
    """gateway.keyIdSecret.existingSecret / existingSecretKey: a secretKeyRef to that Secret and
    key, and no Secret of the chart's for it (the model token's own Secret is unaffected)."""
    rendered = helm.render(
        Scenario(
            "key-id-existing",
            sets=(
                "gateway.keyIdSecret.existingSecret=ocr-gateway-key-id",
                "gateway.keyIdSecret.existingSecretKey=hmac",
            ),
        )
    )
    reference = env_entry(workload(rendered, GATEWAY), KEY_ID_VARIABLE)["valueFrom"]
    assert reference == {"secretKeyRef": {"name": "ocr-gateway-key-id", "key": "hmac"}}
    names = [s["metadata"]["name"] for s in rendered.kind("Secret")]
    assert names == [GENERATED_SECRET]


def test_the_key_id_secret_key_is_configurable(helm: Helm) -> None:
    rendered = helm.render(
        Scenario("key-id-key", sets=("gateway.keyIdSecret.existingSecretKey=hmac",))
    )
    (secret,) = secrets_named(rendered, GENERATED_KEY_ID_SECRET)
    assert len(decoded_token(secret, "hmac")) == 32
    reference = env_entry(workload(rendered, GATEWAY), KEY_ID_VARIABLE)["valueFrom"]
    assert reference == {"secretKeyRef": {"name": GENERATED_KEY_ID_SECRET, "key": "hmac"}}


def test_the_gateway_accepts_the_key_id_secret_the_chart_generates(
    helm: Helm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variable the chart sets is the gateway's setting, and the generated secret passes
    its length check; two renders without a cluster make two different secrets."""
    generated = []
    for _ in range(2):
        result = helm.template("--show-only", KEY_ID_TEMPLATE)
        assert result.returncode == 0, result.stderr
        generated.append(decoded_token(yaml.safe_load(result.stdout), "secret"))
    assert generated[0] != generated[1]
    monkeypatch.setenv(KEY_ID_VARIABLE, generated[0])
    secret = GatewaySettings().key_id_secret.get_secret_value()
    assert secret == generated[0]
    assert len(secret) >= MIN_KEY_CHARS


def test_the_key_id_secret_reuses_the_one_in_the_cluster() -> None:
    """An upgrade keeps the secret (and so every key's id): the template looks the Secret up
    before generating one (read, as for the model token: no cluster here)."""
    template = (CHART / KEY_ID_TEMPLATE).read_text()
    assert 'lookup "v1" "Secret" .Release.Namespace $name' in template
    assert "randAlphaNum 32" in template
    assert "helm.sh/resource-policy: keep" in template


# --- trusted proxies ----------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_trusted_proxies_are_rendered_only_when_set(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    """Unset by default (the gateway then trusts no proxy); ci/production-values.yaml names its
    ingress controller's pod CIDR."""
    rendered = rendered_all[scenario.name]
    proxies = values(scenario)["gateway"]["trustedProxies"]
    if not proxies:
        assert PROXIES_VARIABLE not in gateway_env_names(rendered)
        return
    entry = env_entry(workload(rendered, GATEWAY), PROXIES_VARIABLE)
    assert entry == {"name": PROXIES_VARIABLE, "value": ",".join(proxies)}


def test_no_proxy_is_trusted_by_default(rendered_all: dict[str, Rendered]) -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert defaults["gateway"]["trustedProxies"] == []
    for name in ("default", "minimal", "inferenceservice"):
        assert PROXIES_VARIABLE not in gateway_env_names(rendered_all[name]), name


def test_trusted_proxies_reach_the_gateway_as_it_parses_them(
    helm: Helm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rendered value is what the gateway's setting parses (comma-separated), and it turns
    uvicorn's proxy headers on for those addresses only."""
    proxies = ["10.244.0.0/16", "fd00::/8", "192.168.49.2"]
    rendered = helm.render(
        Scenario("proxies", sets=(f"gateway.trustedProxies={{{','.join(proxies)}}}",))
    )
    value = env_entry(workload(rendered, GATEWAY), PROXIES_VARIABLE)["value"]
    monkeypatch.setenv(PROXIES_VARIABLE, value)
    settings = GatewaySettings()
    assert settings.trusted_proxies == proxies
    assert proxy_options(settings) == {"proxy_headers": True, "forwarded_allow_ips": proxies}
    monkeypatch.delenv(PROXIES_VARIABLE)
    assert proxy_options(GatewaySettings()) == {"proxy_headers": False, "forwarded_allow_ips": []}


@pytest.mark.parametrize("everyone", ["*", "0.0.0.0/0", "::/0"])
def test_trusting_every_address_needs_a_narrowed_gateway_policy(helm: Helm, everyone: str) -> None:
    """Trusting every address while any pod reaches the gateway lets any client pick its
    address with a header: refused unless only the ingress controller (or
    networkPolicy.gateway.from) reaches port 8001, with the policies on."""
    trust = f"gateway.trustedProxies={{{everyone}}}"
    narrowed = "networkPolicy.gateway.ingressControllerNamespace=ingress-nginx"
    for sets in ((trust,), (trust, narrowed, "networkPolicy.enabled=false")):
        result = helm.template(*[arg for item in sets for arg in ("--set", item)])
        assert result.returncode != 0, sets
        assert "gateway.trustedProxies" in result.stderr, result.stderr
    rendered = helm.render(Scenario("trust-all-narrowed", sets=(trust, narrowed)))
    assert env_entry(workload(rendered, GATEWAY), PROXIES_VARIABLE)["value"] == everyone


#: What the model's serving process (KServe, gRPC, no Tesseract) holds beside its workers in
#: ordinary use (~165 MiB idle). A flood of large uploads takes it higher for a moment (~350 MiB
#: from one gateway sending 18.5 MiB uploads, ~450 MiB from two), while the workers' resident
#: memory counts ~110 MiB of pages shared with it twice over: tests/e2e/test_upload_memory.py
#: checks the whole pod against the chart's limit in that case instead, and past the limit the
#: model stops its busiest worker (OCR_MODEL_CONTAINER_MEMORY_BYTES, tests/unit/model/
#: test_workers.py).
SERVING_PROCESS_BYTES = 200 * 2**20
_BINARY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _bytes(quantity: str) -> int:
    for suffix, factor in _BINARY_UNITS.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(quantity)


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_the_worker_memory_limits_keep_the_model_under_its_container_limit(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    """Each worker process is stopped over OCR_MODEL_WORKER_MEMORY_BYTES: all of them at their
    limit, plus the serving process, must fit the container's memory limit."""
    model = container(workload(rendered_all[scenario.name], MODEL))
    env = {entry["name"]: entry.get("value") for entry in model["env"]}
    per_worker = int(env["OCR_MODEL_WORKER_MEMORY_BYTES"])
    assert per_worker > 0, "every environment limits its workers"
    workers = int(env["OCR_MODEL_WORKERS"]) or int(model["resources"]["limits"]["cpu"])
    limit = _bytes(model["resources"]["limits"]["memory"])
    assert workers * per_worker + SERVING_PROCESS_BYTES <= limit
