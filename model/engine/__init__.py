"""Tesseract OCR engine, independent of any serving framework."""

from .backends import Backend, PytesseractBackend, TesserocrBackend, installed_languages
from .cache import ResultCache
from .engine import OcrEngine, PageRead
from .pool import EnginePool, available_cpus
from .types import (
    EngineBusyError,
    EngineInputError,
    EngineTimeoutError,
    InvalidImageError,
    InvalidOptionError,
    OcrOptions,
    OcrResult,
    Orientation,
    StageTimings,
    Word,
)

__all__ = [
    "Backend",
    "EngineBusyError",
    "EngineInputError",
    "EnginePool",
    "EngineTimeoutError",
    "InvalidImageError",
    "InvalidOptionError",
    "OcrEngine",
    "OcrOptions",
    "OcrResult",
    "Orientation",
    "PageRead",
    "PytesseractBackend",
    "ResultCache",
    "StageTimings",
    "TesserocrBackend",
    "Word",
    "available_cpus",
    "installed_languages",
]
