"""Alert rules, their promtool unit tests, runbooks and the local scrape config."""

from __future__ import annotations

from collections import defaultdict
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
        job["job_name"]: (job["metrics_path"], job["static_configs"][0]["targets"])
        for job in config["scrape_configs"]
    }
    assert jobs == {
        "ocr-gateway": ("/metrics", ["127.0.0.1:8001"]),
        "ocr-model": ("/metrics", ["127.0.0.1:8080"]),
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
