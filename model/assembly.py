"""The model's composition root: settings in, an `OcrModel` with its whole graph out.

One function per part (backend, engine, pool, cache) and `create_model` joining them, so tests
build the same graph from the same settings (or swap a part for a fake) and `server.py` only
serves. Nothing here starts a thread or loads a language: `OcrModel.load()` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from .engine import (
    Backend,
    EnginePool,
    EngineSpec,
    OcrOptions,
    ProcessWorkers,
    ResultCache,
    Workers,
    available_cpus,
    container_memory_limit,
)
from .formats.pdf import DEFAULT_FONT
from .metrics import ModelMetrics
from .predictor import OcrModel
from .settings import ModelSettings

logger = logging.getLogger(__name__)


def engine_spec(settings: ModelSettings) -> EngineSpec:
    """How each worker builds its engine, from `settings`."""
    return EngineSpec(
        backend=settings.engine,
        tessdata_dir=settings.tessdata_dir,
        max_pixels=settings.max_image_pixels,
        max_frames=settings.max_frames,
        max_jpeg_scans=settings.max_jpeg_scans,
        max_decoded_bytes=settings.max_decoded_bytes,
        layout_s_per_megapixel=settings.layout_s_per_megapixel or None,
    )


def create_backend(settings: ModelSettings) -> Backend:
    """The Tesseract binding named by `settings.engine`."""
    return engine_spec(settings).build_backend()


def default_options(settings: ModelSettings) -> OcrOptions:
    """The options a request that names none is read with."""
    return OcrOptions(
        lang=settings.default_lang,
        psm=settings.default_psm,
        oem=settings.default_oem,
        rotate=settings.default_rotate,
        dpi=settings.default_dpi,
    )


def create_pool(
    settings: ModelSettings,
    backend: Backend | None = None,
    on_worker_stop: Callable[[str], None] | None = None,
) -> EnginePool:
    """The engine on its workers; the default options must be usable here.

    Workers are processes building their engine from the settings (`worker_mode=process`),
    or threads sharing one engine: always when a `backend` object is given, since an object
    cannot be handed to another process.
    """
    spec = engine_spec(settings)
    engine = spec.build(backend)
    defaults = default_options(settings)
    defaults.validate(engine.languages)
    workers = settings.workers or available_cpus()
    runner: Workers | None = None
    if backend is None and settings.worker_mode == "process":
        runner = ProcessWorkers(
            spec,
            workers,
            defaults,
            memory_limit_bytes=settings.worker_memory_bytes or None,
            pod_memory_limit_bytes=settings.container_memory_bytes or container_memory_limit(),
            on_stop=on_worker_stop,
        )
    kind = "processes" if runner else "threads"
    logger.info("OCR engine %s with %d worker %s", engine.backend.name, workers, kind)
    return EnginePool(
        engine,
        workers=workers,
        warm_options=defaults,
        max_queue=settings.max_queue,
        max_queue_bytes=settings.max_queue_bytes,
        runner=runner,
    )


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
    metrics = metrics or ModelMetrics(CollectorRegistry())
    stops = metrics.worker_stops
    pool = create_pool(settings, backend, lambda reason: stops.labels(reason).inc())
    metrics.watch(pool.admission)
    return OcrModel(
        settings.model_name,
        pool,
        default_options(settings),
        metrics,
        settings.max_request_s,
        cache=create_cache(settings),
        pdf_font=pdf_font(settings),
    )


def pdf_font(settings: ModelSettings) -> Path:
    """Tesseract's glyphless font for the searchable PDF: the configured tessdata directory's
    `pdf.ttf`, else the one Debian's libtesseract installs."""
    configured = settings.tessdata_dir / "pdf.ttf"
    return configured if configured.is_file() else DEFAULT_FONT
