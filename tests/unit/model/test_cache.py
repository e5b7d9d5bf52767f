"""The optional result cache: LRU keyed by image bytes and options, and the model using it."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
from collections.abc import Iterator

import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest
from prometheus_client import CollectorRegistry

import contract
from gateway.codec import build_infer_request
from gateway.protocol import pb
from model.assembly import create_model
from model.codec import parse_tenant
from model.engine import OcrOptions, OcrResult, ResultCache
from model.engine.cache import INLINE_HASH_MAX_BYTES
from model.predictor import OcrModel, tenant_key
from model.settings import ModelSettings
from tests.support.images import TESTDATA, line_png

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
    assert key(b"abc") != key(b"abc", OcrOptions(rotate="auto"))
    assert key(b"abc") != key(b"abc", OcrOptions(deskew=True))
    assert key(b"abc", OcrOptions(rotate="auto")) != key(b"abc", OcrOptions(deskew=True))


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


def request(data: bytes, psm: int | None = None, tenant: str | None = None) -> InferRequest:
    message = build_infer_request(
        data, model_name="ocr-model", request_id="c1", lang="eng", psm=psm, tenant=tenant
    )
    return InferRequest.from_grpc(message)


def predict(model: OcrModel, data: bytes, psm: int | None = None, tenant: str | None = None) -> str:
    response = asyncio.run(model.predict(request(data, psm, tenant)))
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


def test_one_tenant_never_hits_what_another_cached(model_with_cache: OcrModel) -> None:
    """Tenant B must not learn, from a fast answer, that tenant A uploaded the same page."""
    model, image = model_with_cache, line_png(TEXT)
    a, b = f"key:{secrets.token_hex(8)}", f"key:{secrets.token_hex(8)}"
    assert predict(model, image, psm=7, tenant=a) == TEXT
    assert predict(model, image, psm=7, tenant=b) == TEXT
    assert sample(model, "ocr_result_cache_lookups_total", {"result": "miss"}) == 2
    assert sample(model, "ocr_result_cache_lookups_total", {"result": "hit"}) is None
    # The same tenant again is a hit; a caller without a tenant is a tenant of its own.
    assert predict(model, image, psm=7, tenant=a) == TEXT
    assert sample(model, "ocr_result_cache_lookups_total", {"result": "hit"}) == 1
    predict(model, image, psm=7)
    assert sample(model, "ocr_result_cache_lookups_total", {"result": "miss"}) == 3
    assert sample(model, "ocr_stage_duration_seconds_count", {"stage": "recognize"}) == 3


def test_tenant_keys_differ_by_tenant_only() -> None:
    base = key(b"abc")
    assert tenant_key(base, "a") == tenant_key(key(b"abc"), "a")
    assert tenant_key(base, "a") != tenant_key(base, "b")
    assert tenant_key(base, "") != base
    assert tenant_key(base, "a")[1] == base[1]


@pytest.mark.parametrize(
    "raw",
    [
        pb.InferParameter(int64_param=7),
        pb.InferParameter(string_param="x" * 65),
        pb.InferParameter(string_param="key:abc\n"),
        pb.InferParameter(string_param="../etc"),
    ],
    ids=["not a string", "too long", "newline", "slash"],
)
def test_a_malformed_tenant_is_refused(raw: pb.InferParameter) -> None:
    with pytest.raises(InvalidInput, match="tenant"):
        parse_tenant({"tenant": raw})


def test_an_absent_tenant_is_the_shared_default() -> None:
    assert parse_tenant(None) == parse_tenant({}) == contract.TENANT.default == ""
    assert parse_tenant({"tenant": "key:0123abcd"}) == "key:0123abcd"  # REST JSON


def _grpc_request(data: bytes, *outputs: str, **parameters: pb.InferParameter) -> InferRequest:
    message = pb.ModelInferRequest(
        model_name="ocr-model",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])],
        raw_input_contents=[len(data).to_bytes(4, "little") + data],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=n) for n in outputs],
        parameters=parameters,
    )
    return InferRequest.from_grpc(message)


def _holds_an_image(value: object, depth: int = 0) -> bool:
    """Whether a PIL image is reachable from `value` through dataclass fields and tuples."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return True
    if depth > 6:
        return False
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(
            _holds_an_image(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        )
    if isinstance(value, tuple):
        return any(_holds_an_image(item, depth + 1) for item in value[:50])
    return False


def test_rotate_and_deskew_are_entries_of_their_own(model_with_cache: OcrModel) -> None:
    model, image = model_with_cache, line_png(TEXT)
    auto = pb.InferParameter(string_param="auto")
    yes = pb.InferParameter(bool_param=True)
    for parameters in ({}, {"rotate": auto}, {"deskew": yes}, {"rotate": auto, "deskew": yes}):
        asyncio.run(
            model.predict(_grpc_request(image, psm=pb.InferParameter(int64_param=7), **parameters))
        )
    assert sample(model, "ocr_result_cache_lookups_total", {"result": "miss"}) == 4
    assert sample(model, "ocr_result_cache_lookups_total", {"result": "hit"}) is None
    assert sample(model, "ocr_result_cache_entries") == 4


def test_a_pdf_request_is_read_again_and_the_cache_holds_no_image(
    model_with_cache: OcrModel,
) -> None:
    """The PDF needs the page image, which the cache never keeps: a request for `pdf` is
    always read (its result then answers the other outputs from the cache)."""
    model = model_with_cache
    data = (TESTDATA / "phototest.tif").read_bytes()
    for outputs in (("pdf",), ("pdf", "text"), ("hocr",), ("text",)):
        response = asyncio.run(model.predict(_grpc_request(data, *outputs))).to_grpc()
        assert [o.name for o in response.outputs] == [
            spec.name for spec in contract.OUTPUTS if spec.name in outputs
        ]
    assert sample(model, "ocr_stage_duration_seconds_count", {"stage": "recognize"}) == 2
    assert sample(model, "ocr_result_cache_lookups_total", {"result": "hit"}) == 2
    cache = model._cache
    assert cache is not None
    entries = list(cache._entries.values())
    assert len(entries) == 1
    assert all(isinstance(entry, OcrResult) for entry in entries)
    assert not any(_holds_an_image(entry) for entry in entries)
