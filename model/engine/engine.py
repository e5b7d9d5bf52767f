"""The OCR engine: bytes and options in, text, confidence and words out, stage by stage.

Synchronous and thread-safe (the backend keeps per-thread state); `pool.EnginePool` runs it off
the event loop. Knows nothing of KServe, gRPC or HTTP.
"""

from __future__ import annotations

import time

from opentelemetry import trace

from . import image as image_codec
from .backends import Backend
from .types import OcrOptions, OcrResult, StageTimings, mean_confidence

_tracer = trace.get_tracer(__name__)


class OcrEngine:
    """Decode, prepare and recognise one image with a Tesseract backend."""

    def __init__(self, backend: Backend, max_pixels: int, max_frames: int = 64) -> None:
        self.backend = backend
        self.max_pixels = max_pixels
        self.max_frames = max_frames
        self._languages = backend.languages()

    @property
    def languages(self) -> frozenset[str]:
        """Installed language codes."""
        return self._languages

    def recognize(
        self, data: bytes, options: OcrOptions, timeout_s: float | None = None
    ) -> OcrResult:
        """OCR one encoded image within `timeout_s` (None: no limit).

        Raises EngineInputError for anything the client must fix and EngineTimeoutError when
        recognition runs out of time.
        """
        options.validate(self._languages)
        # One span per real stage (a no-op unless tracing is configured).
        t0 = time.perf_counter()
        with _tracer.start_as_current_span("ocr.decode") as span:
            span.set_attribute("ocr.input_bytes", len(data))
            decoded = image_codec.decode(data, self.max_pixels, self.max_frames)
            span.set_attribute("ocr.format", decoded.format or "unknown")
            span.set_attribute("ocr.pixels", decoded.width * decoded.height)
        t1 = time.perf_counter()
        with _tracer.start_as_current_span("ocr.preprocess") as span:
            span.set_attribute("ocr.mode", decoded.mode)
            prepared = image_codec.prepare(decoded)
        t2 = time.perf_counter()
        with _tracer.start_as_current_span("ocr.recognize") as span:
            span.set_attribute("ocr.engine", self.backend.name)
            span.set_attribute("ocr.lang", options.lang)
            span.set_attribute("ocr.psm", options.psm)
            span.set_attribute("ocr.oem", options.oem)
            text, words = self.backend.recognize(prepared, options, timeout_s)
            confidence = round(mean_confidence(words), 2)
            span.set_attribute("ocr.words", len(words))
            span.set_attribute("ocr.confidence", confidence)
        t3 = time.perf_counter()
        return OcrResult(
            text=text,
            confidence=confidence,
            words=words,
            width=prepared.width,
            height=prepared.height,
            timings=StageTimings(decode_s=t1 - t0, preprocess_s=t2 - t1, recognize_s=t3 - t2),
        )
