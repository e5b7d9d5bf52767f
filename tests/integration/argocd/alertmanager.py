"""Read an Alertmanager configuration without Alertmanager: its structure, and where it routes an
alert. `amtool check-config` is not available here; `problems` checks what Alertmanager would
refuse at load time (for the parts this project uses), `receivers_for` follows its routing tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

#: Where prometheus-operator mounts each Secret of `Alertmanager.spec.secrets` (by name).
SECRETS_MOUNT: Final = "/etc/alertmanager/secrets"
#: The receiver that drops what it gets (the chart's default for every alert).
NULL_RECEIVER: Final = "null"

_TOP_KEYS: Final = {
    "global",
    "route",
    "receivers",
    "inhibit_rules",
    "templates",
    "time_intervals",
    "mute_time_intervals",
}
_ROUTE_KEYS: Final = {
    "receiver",
    "group_by",
    "continue",
    "matchers",
    "routes",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "mute_time_intervals",
    "active_time_intervals",
}
_INHIBIT_KEYS: Final = {"source_matchers", "target_matchers", "equal"}
_INTEGRATIONS: Final = {
    f"{name}_configs"
    for name in (
        "discord",
        "email",
        "incidentio",
        "jira",
        "mattermost",
        "msteams",
        "msteamsv2",
        "opsgenie",
        "pagerduty",
        "pushover",
        "rocketchat",
        "slack",
        "sns",
        "telegram",
        "victorops",
        "webex",
        "webhook",
        "wechat",
    )
}
_WEBHOOK_KEYS: Final = {
    "url",
    "url_file",
    "send_resolved",
    "http_config",
    "max_alerts",
    "timeout",
    "payload",
}
_DURATION: Final = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_MATCHER: Final = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    """One `label op value` matcher of Alertmanager's matcher syntax."""

    label: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        match = _MATCHER.match(text)
        if match is None:
            raise ValueError(f"not a matcher: {text!r}")
        label, op, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        elif '"' in value:
            raise ValueError(f"badly quoted matcher: {text!r}")
        if op in ("=~", "!~"):
            re.compile(value)
        return cls(label, op, value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Alertmanager's semantics: a missing label is the empty string, regexes are anchored."""
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


def matchers(node: Mapping[str, Any], key: str = "matchers") -> list[Matcher]:
    return [Matcher.parse(str(text)) for text in node.get(key) or []]


def receivers_for(labels: Mapping[str, str], route: Mapping[str, Any]) -> list[str]:
    """The receivers Alertmanager notifies for an alert with `labels`: depth first, the first
    matching child route wins unless it has `continue: true`; a route without a matching child
    takes the alert itself; a route without `receiver` inherits its parent's."""

    def visit(node: Mapping[str, Any], inherited: str) -> list[str]:
        receiver = str(node.get("receiver") or inherited)
        found: list[str] = []
        for child in node.get("routes") or []:
            if all(m.matches(labels) for m in matchers(child)):
                found += visit(child, receiver)
                if not child.get("continue", False):
                    break
        return found or [receiver]

    return visit(route, "")


def routes(route: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every route of the tree, the root first."""
    yield route
    for child in route.get("routes") or []:
        yield from routes(child)


def integrations(receiver: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(kind, config) of every notification a receiver sends; none for a receiver like `null`."""
    return [
        (kind, config)
        for kind, configs in receiver.items()
        if kind in _INTEGRATIONS
        for config in configs or []
    ]


def problems(config: Mapping[str, Any]) -> list[str]:
    """What Alertmanager would refuse in `config`, or what makes it do nothing useful."""
    found: list[str] = []
    found += [f"unknown top-level key {key!r}" for key in set(config) - _TOP_KEYS]
    receivers = config.get("receivers") or []
    names = [str(r.get("name", "")) for r in receivers]
    if "" in names or len(set(names)) != len(names):
        found.append(f"receiver names must be set and unique: {names}")
    for receiver in receivers:
        extra = set(receiver) - _INTEGRATIONS - {"name"}
        found += [f"receiver {receiver.get('name')}: unknown key {key!r}" for key in extra]
        for kind, integration in integrations(receiver):
            if kind == "webhook_configs":
                found += _webhook_problems(str(receiver.get("name")), integration)
    route = config.get("route")
    if not isinstance(route, dict):
        return [*found, "no route"]
    if not route.get("receiver"):
        found.append("the root route needs a receiver")
    if route.get("matchers"):
        found.append("the root route matches every alert: no matchers there")
    used: set[str] = set()
    for node in routes(route):
        found += [f"route: unknown key {key!r}" for key in set(node) - _ROUTE_KEYS]
        if node.get("receiver"):
            used.add(str(node["receiver"]))
        found += _matcher_problems(node, "matchers")
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in node and not _DURATION.match(str(node[key])):
                found.append(f"route: {key} {node[key]!r} is not a duration")
    found += [f"route names an undefined receiver {name!r}" for name in used - set(names)]
    found += [f"receiver {name!r} is never used" for name in set(names) - used]
    for rule in config.get("inhibit_rules") or []:
        found += [f"inhibit rule: unknown key {key!r}" for key in set(rule) - _INHIBIT_KEYS]
        found += _matcher_problems(rule, "source_matchers")
        found += _matcher_problems(rule, "target_matchers")
        if not rule.get("target_matchers"):
            found.append(f"inhibit rule without target_matchers mutes nothing: {rule}")
    return found


def _matcher_problems(node: Mapping[str, Any], key: str) -> list[str]:
    try:
        matchers(node, key)
    except (ValueError, re.error) as error:
        return [f"{key}: {error}"]
    return []


def _webhook_problems(receiver: str, webhook: Mapping[str, Any]) -> list[str]:
    unknown = set(webhook) - _WEBHOOK_KEYS
    found = [f"receiver {receiver}: unknown webhook key {key!r}" for key in unknown]
    if ("url" in webhook) == ("url_file" in webhook):
        found.append(f"receiver {receiver}: a webhook needs exactly one of url and url_file")
    return found
