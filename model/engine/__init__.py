"""Tesseract OCR engine, independent of any serving framework."""

from .admission import CURRENT_HOLD, Admission, AdmissionRefusedError, CostEstimate, Hold
from .admission import REASONS as ADMISSION_REASONS
from .backends import Backend, PytesseractBackend, TesserocrBackend, installed_languages
from .cache import ResultCache
from .engine import OcrEngine, PageRead
from .pool import EnginePool, available_cpus, container_memory_limit
from .spec import EngineSpec
from .types import (
    EngineBusyError,
    EngineInputError,
    EngineMemoryError,
    EngineMemoryShortError,
    EngineTimeoutError,
    EngineWorkerLostError,
    InvalidImageError,
    InvalidOptionError,
    OcrOptions,
    OcrResult,
    Orientation,
    StageTimings,
    Word,
)
from .workers import ProcessWorkers, ThreadWorkers, Workers

__all__ = [
    "ADMISSION_REASONS",
    "CURRENT_HOLD",
    "Admission",
    "AdmissionRefusedError",
    "Backend",
    "CostEstimate",
    "EngineBusyError",
    "EngineInputError",
    "EngineMemoryError",
    "EngineMemoryShortError",
    "EnginePool",
    "EngineSpec",
    "EngineTimeoutError",
    "EngineWorkerLostError",
    "Hold",
    "InvalidImageError",
    "InvalidOptionError",
    "OcrEngine",
    "OcrOptions",
    "OcrResult",
    "Orientation",
    "PageRead",
    "ProcessWorkers",
    "PytesseractBackend",
    "ResultCache",
    "StageTimings",
    "TesserocrBackend",
    "ThreadWorkers",
    "Word",
    "Workers",
    "available_cpus",
    "container_memory_limit",
    "installed_languages",
]
