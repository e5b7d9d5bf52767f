"""What rendered NetworkPolicies let through, by Kubernetes' rules (networking.k8s.io/v1).

A connection from one pod to a port of another is allowed when the source's egress and the
target's ingress both allow it. A direction a pod is not isolated in (no policy of its namespace
selects it with that policy type) allows everything; otherwise some rule of a selecting policy
must match the peer (podSelector: pods of the policy's namespace; namespaceSelector: pods of the
selected namespaces; both: pods of those namespaces with those labels; ipBlock: only 0.0.0.0/0
without exceptions counts as matching a pod here) and the port (no ports: every port).
Namespaces carry the label kubernetes.io/metadata.name, as the API server sets it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Manifest = Mapping[str, Any]


@dataclass(frozen=True)
class Pod:
    """A pod somewhere in the cluster: its namespace, labels and named container ports."""

    namespace: str
    labels: Mapping[str, str]
    named_ports: Mapping[str, int] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels; {} selects all."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {operator!r}")
    return True


def peer_matches(peer: Manifest, pod: Pod, policy_namespace: str) -> bool:
    """One NetworkPolicyPeer against a pod."""
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        return bool(block.get("cidr") == "0.0.0.0/0" and not block.get("except"))
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], pod.namespace_labels):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector"), pod.labels)


def port_matches(
    ports: Sequence[Manifest] | None, port: int, protocol: str, target: Pod | None
) -> bool:
    """The ports of a rule against a port number (a named port is looked up on the target)."""
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return True
        number = entry["port"]
        if isinstance(number, str):
            if target is None or number not in target.named_ports:
                continue
            number = target.named_ports[number]
        if number <= port <= entry.get("endPort", number):
            return True
    return False


def _policy_types(policy: Manifest) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _selecting(policies: Iterable[Manifest], pod: Pod, direction: str) -> list[Manifest]:
    return [
        policy
        for policy in policies
        if policy.get("kind") == "NetworkPolicy"
        and policy["metadata"].get("namespace", pod.namespace) == pod.namespace
        and selects(policy["spec"]["podSelector"], pod.labels)
        and direction in _policy_types(policy)
    ]


def ingress_allows(
    policies: Iterable[Manifest], target: Pod, source: Pod, port: int, protocol: str = "TCP"
) -> bool:
    """Whether the target's ingress policies let `source` in on `port`."""
    selecting = _selecting(policies, target, "Ingress")
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from")
            if peers and not any(peer_matches(p, source, target.namespace) for p in peers):
                continue
            if port_matches(rule.get("ports"), port, protocol, target):
                return True
    return False


def egress_allows(
    policies: Iterable[Manifest], source: Pod, target: Pod, port: int, protocol: str = "TCP"
) -> bool:
    """Whether the source's egress policies let it out to `target` on `port`."""
    selecting = _selecting(policies, source, "Egress")
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("egress") or []:
            peers = rule.get("to")
            if peers and not any(peer_matches(p, target, source.namespace) for p in peers):
                continue
            if port_matches(rule.get("ports"), port, protocol, target):
                return True
    return False


def reachable(
    policies: Sequence[Manifest], source: Pod, target: Pod, port: int, protocol: str = "TCP"
) -> bool:
    """Whether a connection from `source` to `target`'s `port` gets through both ends."""
    return egress_allows(policies, source, target, port, protocol) and ingress_allows(
        policies, target, source, port, protocol
    )
