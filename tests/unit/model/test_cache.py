"""The optional result cache: LRU keyed by image bytes and options, and the model using it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator

import pytest
from kserve.protocol.infer_type import InferRequest
from prometheus_client import CollectorRegistry

from gateway.codec import build_infer_request
from model.assembly import create_model
from model.engine import OcrOptions, OcrResult, ResultCache
from model.engine.cache import INLINE_HASH_MAX_BYTES
from model.predictor import OcrModel
from model.settings import ModelSettings
from tests.support.images import line_png

pytestmark = pytest.mark.unit

TEXT = "Cached line 2026"


def key(data: bytes, options: OcrOptions | None = None) -> tuple[bytes, OcrOptions]:
    return asyncio.run(ResultCache.key(data, options or OcrOptions()))


def result(text: str) -> OcrResult:
    return OcrResult(text=text, confidence=90.0)


def test_keys_differ_by_bytes_and_by_options() -> None:
    assert key(b"abc") == key(b"abc")
    assert key(b"abc") != key(b"abd")
    assert key(b"abc") != key(b"abc", OcrOptions(psm=7))
    assert key(b"abc") != key(b"abc", OcrOptions(lang="deu"))


def test_large_uploads_hash_off_the_loop_to_the_same_digest() -> None:
    data = bytes(range(256)) * (INLINE_HASH_MAX_BYTES // 256 + 1)
    assert len(data) > INLINE_HASH_MAX_BYTES
    assert key(data)[0] == hashlib.sha256(data).digest()


def test_least_recently_used_entry_is_evicted_first() -> None:
    cache = ResultCache(2)
    a, b, c = key(b"a"), key(b"b"), key(b"c")
    cache.put(a, result("a"))
    cache.put(b, result("b"))
    assert cache.get(a) == result("a")  # a is now the most recent
    cache.put(c, result("c"))
    assert len(cache) == 2
    assert cache.get(b) is None
    assert cache.get(a) == result("a")
    assert cache.get(c) == result("c")


def test_a_cache_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ResultCache(0)


def request(data: bytes, psm: int | None = None) -> InferRequest:
    message = build_infer_request(
        data, model_name="ocr-model", request_id="c1", lang="eng", psm=psm
    )
    return InferRequest.from_grpc(message)


def predict(model: OcrModel, data: bytes, psm: int | None = None) -> str:
    response = asyncio.run(model.predict(request(data, psm)))
    text = next(o for o in response.outputs if o.name == "text").as_numpy()[0]
    return (text if isinstance(text, str) else bytes(text).decode()).strip()


def sample(model: OcrModel, name: str, labels: dict[str, str] | None = None) -> float | None:
    registry: CollectorRegistry = model.metrics.registry
    return registry.get_sample_value(name, labels or {})


@pytest.fixture
def model_with_cache() -> Iterator[OcrModel]:
    model = create_model(ModelSettings(result_cache_entries=4, workers=1))
    model.load()
    yield model
    model.stop()


def test_a_repeated_upload_is_answered_from_the_cache(model_with_cache: OcrModel) -> None:
    model, image = model_with_cache, line_png(TEXT)
    assert predict(model, image, psm=7) == TEXT
    assert predict(model, image, psm=7) == TEXT
    assert sample(model, "ocr_result_cache_lookups_total", {"result": "miss"}) == 1
    assert sample(model, "ocr_result_cache_lookups_total", {"result": "hit"}) == 1
    assert sample(model, "ocr_result_cache_entries") == 1
    # The engine ran once; both answers count as successes.
    assert sample(model, "ocr_stage_duration_seconds_count", {"stage": "recognize"}) == 1
    assert sample(model, "ocr_requests_total", {"status": "success", "lang": "eng"}) == 2


def test_other_options_are_another_entry(model_with_cache: OcrModel) -> None:
    model, image = model_with_cache, line_png(TEXT)
    predict(model, image, psm=7)
    predict(model, image, psm=6)
    assert sample(model, "ocr_result_cache_lookups_total", {"result": "miss"}) == 2
    assert sample(model, "ocr_result_cache_lookups_total", {"result": "hit"}) is None
    assert sample(model, "ocr_result_cache_entries") == 2


def test_failures_are_not_cached(model_with_cache: OcrModel) -> None:
    from kserve.errors import InvalidInput

    model = model_with_cache
    for _ in range(2):
        with pytest.raises(InvalidInput):
            predict(model, b"\x89PNG\r\n\x1a\n not really a png")
    assert sample(model, "ocr_result_cache_lookups_total", {"result": "miss"}) == 2
    assert sample(model, "ocr_result_cache_entries") == 0


def test_the_cache_is_off_by_default() -> None:
    model = create_model(ModelSettings(workers=1))
    model.load()
    try:
        image = line_png(TEXT)
        predict(model, image, psm=7)
        predict(model, image, psm=7)
        assert sample(model, "ocr_result_cache_lookups_total", {"result": "miss"}) is None
        assert sample(model, "ocr_stage_duration_seconds_count", {"stage": "recognize"}) == 2
    finally:
        model.stop()
