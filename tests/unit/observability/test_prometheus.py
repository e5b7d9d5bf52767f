"""Alert rules, their promtool unit tests, runbooks and the local scrape config."""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.unit.observability.helpers import (
    ALERTS,
    ALERTS_TEST,
    OBSERVABILITY,
    PROMETHEUS_CONFIG,
    PROMETHEUS_DIR,
    RUNBOOKS,
    Promtool,
    dump_yaml,
    load_yaml,
    markdown_anchors,
)

pytestmark = pytest.mark.unit


def _rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


ALERT_NAMES = [str(alert["alert"]) for alert in _alerts()]


def test_rule_file_passes_promtool_check(promtool: Promtool) -> None:
    promtool.run("check", "rules", str(ALERTS))


def test_alert_unit_tests_pass(promtool: Promtool) -> None:
    promtool.run("test", "rules", ALERTS_TEST.name, cwd=PROMETHEUS_DIR)


def test_scrape_config_passes_promtool_check(promtool: Promtool) -> None:
    promtool.run("check", "config", str(PROMETHEUS_CONFIG))


def test_scrape_config_scrapes_both_services_every_5s_with_the_alerts() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    assert config["global"]["scrape_interval"] == "5s"
    assert config["rule_files"] == ["alerts.yaml"]
    jobs = {
        job["job_name"]: (job["metrics_path"], job["static_configs"])
        for job in config["scrape_configs"]
    }
    # `namespace` as prometheus-operator sets it in a cluster: the rules and the dashboard
    # select by it, so the same queries work on a local run.
    local = {"namespace": "local"}
    assert jobs == {
        "ocr-gateway": ("/metrics", [{"targets": ["127.0.0.1:8001"], "labels": local}]),
        "ocr-model": ("/metrics", [{"targets": ["127.0.0.1:8080"], "labels": local}]),
    }


def test_rule_names_are_unique() -> None:
    names = [str(rule.get("alert") or rule["record"]) for rule in _rules()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_has_for_severity_and_annotations(name: str) -> None:
    (alert,) = (rule for rule in _alerts() if rule["alert"] == name)
    assert alert["for"], "every alert waits a while before firing"
    assert alert["labels"]["severity"] in {"critical", "warning"}
    annotations = alert["annotations"]
    assert annotations["summary"].strip()
    assert "{{" in annotations["description"], "the description names what fired"
    assert annotations["runbook_url"] == f"observability/runbooks.md#{name.lower()}"


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_has_a_runbook_section(name: str) -> None:
    assert name.lower() in markdown_anchors(RUNBOOKS.read_text(encoding="utf-8"))


def test_every_runbook_section_belongs_to_an_alert() -> None:
    sections = {
        line.removeprefix("## ").strip()
        for line in RUNBOOKS.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    assert sections == set(ALERT_NAMES)


def test_runbook_urls_are_relative_to_the_repository_root() -> None:
    for alert in _alerts():
        path = alert["annotations"]["runbook_url"].split("#")[0]
        assert (OBSERVABILITY.parent / path).is_file()


def test_every_alert_is_tested_firing_and_silent() -> None:
    """alerts_test.yaml has, per alert, a case expecting it and a case expecting silence."""
    outcomes: dict[str, set[bool]] = defaultdict(set)
    for case in load_yaml(ALERTS_TEST)["tests"]:
        for check in case.get("alert_rule_test", []):
            outcomes[check["alertname"]].add(bool(check.get("exp_alerts")))
    missing = {name: outcomes[name] for name in ALERT_NAMES if outcomes[name] != {True, False}}
    assert not missing, f"alerts without a firing and a silent test case: {missing}"


# --- Two releases in one cluster: every rule keeps `namespace`. ---------------------------------

_AGGREGATION = re.compile(
    r"\b(sum|avg|min|max|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)\s*"
    r"(?:(by|without)\s*\(([^)]*)\)\s*)?\("
)
_MATCHING = re.compile(r"\b(on|ignoring)\s*\(([^)]*)\)")


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule.get("alert") or rule["record"])
def test_every_aggregation_and_match_keeps_the_namespace(rule: dict[str, Any]) -> None:
    """`sum by (job)` would merge the releases: `by` and `on` lists name `namespace` too."""
    expr = str(rule["expr"])
    for aggregation in _AGGREGATION.finditer(expr):
        operator, modifier, labels = aggregation.groups()
        assert modifier == "by", f"{operator} without a `by (namespace, ...)`: {expr}"
        assert "namespace" in [label.strip() for label in labels.split(",")], expr
    for matching in _MATCHING.finditer(expr):
        keyword, labels = matching.groups()
        assert keyword == "on", expr
        assert "namespace" in [label.strip() for label in labels.split(",")], expr


def test_recording_rules_name_their_namespace_level() -> None:
    """The level of a recorded series (`namespace_job_route:`) lists the labels it keeps."""
    for rule in _rules():
        if "record" in rule:
            assert str(rule["record"]).startswith("namespace_"), rule["record"]


# --- Target health: a replica down is not a page. -----------------------------------------------


def _critical_alerts() -> list[str]:
    return [str(a["alert"]) for a in _alerts() if a["labels"]["severity"] == "critical"]


def _run_cases(promtool: Promtool, tmp_path: Path, cases: list[dict[str, Any]]) -> None:
    shutil.copy(ALERTS, tmp_path / ALERTS.name)
    tests = tmp_path / "cases_test.yaml"
    dump_yaml({"rule_files": [ALERTS.name], "evaluation_interval": "1m", "tests": cases}, tests)
    promtool.run("test", "rules", tests.name, cwd=tmp_path)


def _up(job: str, instance: str, values: str) -> dict[str, str]:
    labels = f'namespace="ocr", job="{job}", instance="{instance}"'
    return {"series": f"up{{{labels}}}", "values": values}


def test_one_replica_of_three_down_pages_nobody(promtool: Promtool, tmp_path: Path) -> None:
    """A model pod OOM-killed and crash-looping for half an hour, two others serving."""
    series = [
        _up("ocr-model", "10.0.0.1:8080", "1 0x40"),
        _up("ocr-model", "10.0.0.2:8080", "1x40"),
        _up("ocr-model", "10.0.0.3:8080", "1x40"),
        *(_up("ocr-gateway", f"10.0.1.{n}:8001", "1x40") for n in (1, 2, 3)),
    ]
    checks = [
        {"eval_time": f"{minute}m", "alertname": name, "exp_alerts": []}
        for name in _critical_alerts()
        for minute in (2, 5, 10, 20, 40)
    ]
    assert checks
    _run_cases(
        promtool, tmp_path, [{"interval": "1m", "input_series": series, "alert_rule_test": checks}]
    )
