"""The OpenTelemetry Collector config: pipelines guarded by memory_limiter, traces to Tempo."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.observability.helpers import COLLECTOR_CONFIG, load_yaml

pytestmark = pytest.mark.unit

KINDS = ("receivers", "processors", "exporters")


def _config() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(COLLECTOR_CONFIG)
    return config


def test_memory_limiter_comes_first_and_batch_after_it_in_every_pipeline() -> None:
    pipelines = _config()["service"]["pipelines"]
    assert pipelines
    for name, pipeline in pipelines.items():
        processors = pipeline["processors"]
        assert processors[0] == "memory_limiter", name
        assert "batch" in processors[1:], name


def test_every_component_a_pipeline_names_is_configured() -> None:
    config = _config()
    for name, pipeline in config["service"]["pipelines"].items():
        for kind in KINDS:
            for component in pipeline[kind]:
                assert component in config[kind], f"{name}: {kind} {component} is not configured"
    for extension in config["service"]["extensions"]:
        assert extension in config["extensions"]


def test_traces_go_from_otlp_to_tempo() -> None:
    config = _config()
    traces = config["service"]["pipelines"]["traces"]
    assert (traces["receivers"], traces["exporters"]) == (["otlp"], ["otlp/tempo"])
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    assert config["exporters"]["otlp/tempo"]["endpoint"] == "tempo:4317"
    assert config["exporters"]["otlp/tempo"]["tls"]["insecure"] is True


def test_health_check_extension_is_on() -> None:
    assert "health_check" in _config()["service"]["extensions"]
