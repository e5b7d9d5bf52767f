"""Model metrics: our names never collide with KServe's, and the server can be started twice."""

from __future__ import annotations

import importlib
import pkgutil

import kserve
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from model.assembly import create_model
from model.engine import OcrResult, StageTimings, Word
from model.metrics import ModelMetrics
from model.server import OcrModelServer
from model.settings import ModelSettings

pytestmark = pytest.mark.unit


def import_all_of_kserve() -> None:
    """Import every kserve module that imports here, so all its metrics are registered."""
    for module in pkgutil.walk_packages(kserve.__path__, "kserve."):
        try:
            importlib.import_module(module.name)
        except Exception:  # noqa: S112  # optional extras (ray, vllm...) are not installed
            continue


def metric_names(registry: CollectorRegistry) -> set[str]:
    return {metric.name for metric in registry.collect()}


@pytest.fixture
def serving_stubbed(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """`OcrModelServer.start` runs for real, but KServe's serving loop returns at once.

    Each "run" records the metric names KServe's `/metrics` (the default REGISTRY) serves while
    the server is up, and drops the server coroutines it was handed unstarted.
    """
    served: list[set[str]] = []

    def serve_nothing(self: kserve.ModelServer, models: list[object]) -> None:
        served.append(metric_names(REGISTRY))
        for coroutine in self.servers:
            coroutine.close()

    monkeypatch.setattr(kserve.ModelServer, "start", serve_nothing)
    return served


def test_building_the_server_twice_beside_kserve_does_not_collide(
    serving_stubbed: list[set[str]],
) -> None:
    import_all_of_kserve()
    kserves = metric_names(REGISTRY)
    assert "request_predict_seconds" in kserves
    settings = ModelSettings()
    ours: list[set[str]] = []
    for _ in range(2):
        # What `python -m model` does: a new model and server, started, stopped; the second
        # server registers its metrics in the same process's REGISTRY as the first.
        model = create_model(settings)
        ours.append(metric_names(model.metrics.registry))
        OcrModelServer(settings, model.metrics).start([model])
        assert metric_names(REGISTRY) == kserves  # ours left with the server
    assert ours[0] == ours[1]
    assert ours[0]
    assert all(name.startswith("ocr_") for name in ours[0])
    assert not ours[0] & kserves
    # While each server ran, /metrics served KServe's metrics and ours.
    assert serving_stubbed == [kserves | ours[0]] * 2


def test_a_metric_named_like_kserves_is_refused(serving_stubbed: list[set[str]]) -> None:
    """The check above can fail: a colliding name makes the server's registration raise."""
    import_all_of_kserve()
    before = metric_names(REGISTRY)
    registry = CollectorRegistry()
    Histogram("request_predict_seconds", "Collides with KServe's.", registry=registry)
    with pytest.raises(ValueError, match="request_predict_seconds"):
        REGISTRY.register(registry)
    colliding = ModelMetrics(registry)
    with pytest.raises(ValueError, match="request_predict_seconds"):
        OcrModelServer(ModelSettings(), colliding).start([])
    assert serving_stubbed == []  # refused before serving
    assert metric_names(REGISTRY) == before


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str]) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, name
    return value


def test_a_result_updates_every_metric() -> None:
    metrics = ModelMetrics(CollectorRegistry())
    result = OcrResult(
        text="Hello world\n",
        confidence=90.0,
        words=(Word("Hello", 90, 0, 0, 1, 1, 1, 1), Word("world", 90, 2, 0, 1, 1, 1, 1)),
        width=100,
        height=20,
        timings=StageTimings(queue_s=0.001, decode_s=0.002, preprocess_s=0.0, recognize_s=0.02),
    )
    metrics.record_success("eng", result)
    metrics.record_success("eng", OcrResult(text=" \n", confidence=0.0))
    metrics.record_error("invalid")
    r = metrics.registry
    assert sample(r, "ocr_requests_total", {"status": "success", "lang": "eng"}) == 2
    assert sample(r, "ocr_requests_total", {"status": "error", "lang": "invalid"}) == 1
    assert sample(r, "ocr_stage_duration_seconds_count", {"stage": "recognize"}) == 2
    assert sample(r, "ocr_image_pixels_sum", {}) == 2000
    assert sample(r, "ocr_result_words_sum", {}) == 2
    assert sample(r, "ocr_result_characters_sum", {}) == len("Hello world")
    assert sample(r, "ocr_empty_results_total", {}) == 1
    assert sample(r, "ocr_queue_wait_seconds_count", {}) == 2
