"""The model's composition root: settings in, an `OcrModel` with its whole graph out.

One function per part (backend, engine, pool, cache) and `create_model` joining them, so tests
build the same graph from the same settings (or swap a part for a fake) and `server.py` only
serves. Nothing here starts a thread or loads a language: `OcrModel.load()` does.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry

from .engine import (
    Backend,
    EnginePool,
    OcrEngine,
    OcrOptions,
    PytesseractBackend,
    ResultCache,
    TesserocrBackend,
    available_cpus,
)
from .metrics import ModelMetrics
from .predictor import OcrModel
from .settings import ModelSettings

logger = logging.getLogger(__name__)


def create_backend(settings: ModelSettings) -> Backend:
    """The Tesseract binding named by `settings.engine`."""
    if settings.engine == "pytesseract":
        return PytesseractBackend(settings.tessdata_dir)
    return TesserocrBackend(
        settings.tessdata_dir, layout_s_per_megapixel=settings.layout_s_per_megapixel or None
    )


def default_options(settings: ModelSettings) -> OcrOptions:
    """The options a request that names none is read with."""
    return OcrOptions(
        lang=settings.default_lang,
        psm=settings.default_psm,
        oem=settings.default_oem,
        rotate=settings.default_rotate,
    )


def create_pool(settings: ModelSettings, backend: Backend) -> EnginePool:
    """The engine on its worker threads; the default options must be usable here."""
    engine = OcrEngine(
        backend,
        max_pixels=settings.max_image_pixels,
        max_frames=settings.max_frames,
        max_jpeg_scans=settings.max_jpeg_scans,
        max_decoded_bytes=settings.max_decoded_bytes,
    )
    defaults = default_options(settings)
    defaults.validate(engine.languages)
    workers = settings.workers or available_cpus()
    logger.info("OCR engine %s with %d worker threads", backend.name, workers)
    return EnginePool(engine, workers=workers, warm_options=defaults, max_queue=settings.max_queue)


def create_cache(settings: ModelSettings) -> ResultCache | None:
    """The result cache, or None when `result_cache_entries` is 0 (the default)."""
    if not settings.result_cache_entries:
        return None
    logger.info("result cache of %d entries", settings.result_cache_entries)
    return ResultCache(settings.result_cache_entries)


def create_model(
    settings: ModelSettings,
    metrics: ModelMetrics | None = None,
    backend: Backend | None = None,
) -> OcrModel:
    """The OCR model (not yet loaded): backend → pool → cache → model, all from `settings`.

    `metrics` default to a registry of their own; `backend` to the one `settings.engine` names.
    """
    pool = create_pool(settings, backend or create_backend(settings))
    return OcrModel(
        settings.model_name,
        pool,
        default_options(settings),
        metrics or ModelMetrics(CollectorRegistry()),
        settings.max_request_s,
        cache=create_cache(settings),
    )
