"""Tesseract OCR engine, independent of any serving framework."""

from .backends import Backend, PytesseractBackend, TesserocrBackend, installed_languages
from .engine import OcrEngine
from .pool import EnginePool, available_cpus
from .types import (
    EngineInputError,
    InvalidImageError,
    InvalidOptionError,
    OcrOptions,
    OcrResult,
    StageTimings,
    Word,
)

__all__ = [
    "Backend",
    "EngineInputError",
    "EnginePool",
    "InvalidImageError",
    "InvalidOptionError",
    "OcrEngine",
    "OcrOptions",
    "OcrResult",
    "PytesseractBackend",
    "StageTimings",
    "TesserocrBackend",
    "Word",
    "available_cpus",
    "installed_languages",
]
