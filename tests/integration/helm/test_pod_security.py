"""Pod Security Standard "restricted" (and more) on every pod the chart can run."""

from __future__ import annotations

import pytest

from tests.integration.helm.chart import ALL_SCENARIOS, PodSpec, Rendered, Scenario, pod_specs

pytestmark = pytest.mark.integration


def problems(pod: PodSpec) -> list[str]:
    found = []
    spec = pod.spec
    pod_security = spec.get("securityContext", {})
    if spec.get("automountServiceAccountToken") is not False:
        found.append("automountServiceAccountToken is not false")
    if pod_security.get("runAsNonRoot") is not True:
        found.append("pod runAsNonRoot is not true")
    if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        found.append("pod seccompProfile is not RuntimeDefault")
    if (pod.is_test and spec.get("restartPolicy") != "Never") or spec.get("hostNetwork"):
        found.append("unexpected restartPolicy/hostNetwork")
    tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    for container in spec["containers"] + spec.get("initContainers", []):
        name = container["name"]
        security = container.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        if security.get("privileged"):
            found.append(f"{name}: privileged")
        if "ALL" not in security.get("capabilities", {}).get("drop", []):
            found.append(f"{name}: capabilities do not drop ALL")
        if security.get("capabilities", {}).get("add"):
            found.append(f"{name}: adds capabilities")
        if security.get("readOnlyRootFilesystem") is not True:
            found.append(f"{name}: root filesystem is writable")
        if security.get("runAsNonRoot") is False or security.get("runAsUser") == 0:
            found.append(f"{name}: runs as root")
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        if mounts.get("/tmp") not in tmp_volumes:  # noqa: S108 - a path in a manifest
            found.append(f"{name}: no emptyDir at /tmp")
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(bound, {}):
                    found.append(f"{name}: no {resource} {bound}")
        if not pod.is_test:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe not in container:
                    found.append(f"{name}: no {probe}")
    return found


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_every_pod_is_restricted(rendered_all: dict[str, Rendered], scenario: Scenario) -> None:
    pods = list(pod_specs(rendered_all[scenario.name]))
    assert len([pod for pod in pods if not pod.is_test]) == 2, [pod.owner for pod in pods]
    assert [pod for pod in pods if pod.is_test], "no helm test Pod rendered"
    report = {pod.owner: problems(pod) for pod in pods}
    assert not any(report.values()), {owner: found for owner, found in report.items() if found}


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=lambda s: s.name)
def test_model_outlives_its_drain(rendered_all: dict[str, Rendered], scenario: Scenario) -> None:
    """terminationGracePeriodSeconds > preStop sleep + OCR_MODEL_GRACE_PERIOD_S."""
    for pod in pod_specs(rendered_all[scenario.name]):
        if pod.is_test:
            continue
        for container in pod.spec["containers"]:
            grace = {e["name"]: e.get("value") for e in container["env"]}.get(
                "OCR_MODEL_GRACE_PERIOD_S"
            )
            if grace is None:
                continue
            sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
            assert pod.spec["terminationGracePeriodSeconds"] > sleep + int(grace), pod.owner
