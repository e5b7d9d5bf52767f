"""Model metrics: our names never collide with KServe's, and the server can be built twice."""

from __future__ import annotations

import importlib
import pkgutil

import kserve
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from model.engine import OcrResult, StageTimings, Word
from model.metrics import ModelMetrics
from model.server import OcrModelServer, create_model
from model.settings import ModelSettings

pytestmark = pytest.mark.unit


def import_all_of_kserve() -> None:
    """Import every kserve module that imports here, so all its metrics are registered."""
    for module in pkgutil.walk_packages(kserve.__path__, "kserve."):
        try:
            importlib.import_module(module.name)
        except Exception:  # noqa: S112  # optional extras (ray, vllm...) are not installed
            continue


def test_building_the_server_twice_beside_kserve_does_not_collide() -> None:
    import_all_of_kserve()
    settings = ModelSettings()
    for _ in range(2):
        model = create_model(settings)
        OcrModelServer(settings, model.metrics)
        # What /metrics serves while the server runs: KServe's registry plus ours.
        served = CollectorRegistry()
        served.register(REGISTRY)
        served.register(model.metrics.registry)
    names = {metric.name for metric in REGISTRY.collect()}
    assert "request_predict_seconds" in names
    ours = {metric.name for metric in model.metrics.registry.collect()}
    assert ours
    assert all(name.startswith("ocr_") for name in ours)
    assert not ours & names


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
