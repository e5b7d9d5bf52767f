"""helm lint --strict and helm template for every scenario; the values schema refuses mistakes."""

from __future__ import annotations

import pytest

from tests.integration.helm.chart import ALL_SCENARIOS, CHART, Helm, Rendered, Scenario

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_lint_strict(helm: Helm, scenario: Scenario) -> None:
    result = helm.run("lint", "--strict", str(CHART), *scenario.args())
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_template_renders_named_objects(
    rendered_all: dict[str, Rendered], scenario: Scenario
) -> None:
    docs = rendered_all[scenario.name].docs
    assert docs, f"{scenario.name} rendered nothing"
    for doc in docs:
        assert doc.get("apiVersion"), doc
        assert doc.get("kind"), doc
        assert doc["metadata"]["name"], doc
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == "ocr-platform", doc


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("gateway.servce.type=NodePort", "additional properties 'servce' not allowed"),
        ("model.mode=knative", "model/mode"),
        ("gateway.service.type=External", "gateway/service/type"),
        ("model.workers=-1", "model/workers"),
        ("otel.protocol=thrift", "otel/protocol"),
        ("observability.podMonitor.interval=15", "observability/podMonitor/interval"),
        ("model.env.OCR_MODEL_WORKERS=3", "invalid propertyName 'OCR_MODEL_WORKERS'"),
        # API keys: gateway.apiKeys only, and no comma inside a key (the gateway splits at commas).
        ("gateway.env.OCR_GATEWAY_API_KEYS=k", "invalid propertyName 'OCR_GATEWAY_API_KEYS'"),
        ("gateway.apiKeys.plaintext={a\\,b}", "gateway/apiKeys/plaintext/0"),
        ("gateway.ingress.paths[0].path=gateway", "gateway/ingress/paths/0/path"),
        ("model.inferenceService.deploymentMode=Raw", "model/inferenceService/deploymentMode"),
        # The model token: from a Secret only (no plain-text option), never through env.
        ("model.auth.token=0123456789abcdef", "additional properties 'token' not allowed"),
        ("model.auth.existingSecret=Model_Token", "model/auth/existingSecret"),
        ("model.env.OCR_MODEL_AUTH_TOKEN=t", "invalid propertyName 'OCR_MODEL_AUTH_TOKEN'"),
        ("gateway.env.OCR_GATEWAY_MODEL_TOKEN=t", "invalid propertyName 'OCR_GATEWAY_MODEL_TOKEN'"),
        # The key id secret: from a Secret only, never through env; proxies only as addresses.
        ("gateway.keyIdSecret.value=0123456789abcdef", "additional properties 'value' not allowed"),
        ("gateway.keyIdSecret.existingSecret=Key_Id", "gateway/keyIdSecret/existingSecret"),
        (
            "gateway.env.OCR_GATEWAY_KEY_ID_SECRET=0123456789abcdef",
            "invalid propertyName 'OCR_GATEWAY_KEY_ID_SECRET'",
        ),
        (
            "gateway.env.OCR_GATEWAY_TRUSTED_PROXIES=10.0.0.0/8",
            "invalid propertyName 'OCR_GATEWAY_TRUSTED_PROXIES'",
        ),
        ("gateway.trustedProxies={ingress-nginx}", "gateway/trustedProxies/0"),
        ("gateway.trustedProxies={10.0.0.0/8\\,10.1.0.0/16}", "gateway/trustedProxies/0"),
        ("gateway.trustedProxies=10.0.0.0/8", "gateway/trustedProxies"),
        ("networkPolicy.gateway.ingressControllerNamespace=Ingress", "ingressControllerNamespace"),
        ("networkPolicy.dns.to=none", "networkPolicy/dns/to"),
        (
            "model.inferenceService.annotations.serving\\.kserve\\.io/deploymentMode=Standard",
            "invalid propertyName 'serving.kserve.io/deploymentMode'",
        ),
    ],
)
def test_values_schema_rejects_typos_and_bad_values(
    helm: Helm, override: str, message: str
) -> None:
    result = helm.template("--set", override)
    assert result.returncode != 0, f"--set {override} was accepted"
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["observability.serviceMonitor.enabled=true"],
            "enable observability.podMonitor or observability.serviceMonitor, not both",
        ),
        (
            ["observability.prometheusRule.enabled=true"],
            "observability.prometheusRule.runbookBaseUrl is required",
        ),
        (["model.terminationGracePeriodSeconds=30"], "model.terminationGracePeriodSeconds"),
        (
            ["gateway.apiKeys.existingSecret=keys", "gateway.apiKeys.plaintext={k}"],
            "set gateway.apiKeys.existingSecret or gateway.apiKeys.plaintext, not both",
        ),
        (["gateway.trustedProxies={*}"], "gateway.trustedProxies: * trusts every address"),
        (
            ["gateway.ingress.paths[0].path=/", "gateway.ingress.paths[0].pathType=Prefix"],
            "would publish /metrics",
        ),
        (
            ["gateway.ingress.paths[0].path=/metrics", "gateway.ingress.paths[0].pathType=Exact"],
            "would publish /metrics",
        ),
        (
            ["model.mode=inferenceservice", "model.inferenceService.scaleMetric=concurrency"],
            "scaleMetric concurrency needs Knative",
        ),
        (
            [
                "model.mode=inferenceservice",
                "model.inferenceService.deploymentMode=Knative",
                "model.inferenceService.scaleMetric=cpu",
            ],
            "scaleMetric cpu needs an HPA",
        ),
    ],
)
def test_contradicting_values_fail_with_a_reason(
    helm: Helm, overrides: list[str], message: str
) -> None:
    args = [arg for override in overrides for arg in ("--set", override)]
    result = helm.template(*args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    "overrides",
    [
        # KServe >= 0.16 names the modes Standard and Knative (0.17+ rewrites the legacy ones).
        ["model.mode=inferenceservice", "model.inferenceService.deploymentMode=Standard"],
        [
            "model.mode=inferenceservice",
            "model.inferenceService.deploymentMode=Knative",
            "model.inferenceService.scaleMetric=concurrency",
        ],
        ["gateway.ingress.enabled=true", "gateway.ingress.rootPath=true"],
        ["gateway.apiKeys.existingSecret=ocr-keys", "gateway.apiKeys.existingSecretKey=keys"],
        ["model.auth.existingSecret=ocr-model-token", "model.auth.existingSecretKey=bearer"],
        ["gateway.keyIdSecret.existingSecret=ocr-gateway-key-id"],
        ["gateway.trustedProxies={10.244.0.0/16,fd00::/8,192.168.49.2}"],
        ["networkPolicy.gateway.ingressControllerNamespace=ingress-nginx"],
    ],
)
def test_values_schema_accepts(helm: Helm, overrides: list[str]) -> None:
    args = [arg for override in overrides for arg in ("--set", override)]
    result = helm.template(*args)
    assert result.returncode == 0, result.stderr
