"""The OCR engine: bytes and options in, text, confidence and words out, stage by stage.

Synchronous and thread-safe (the backend keeps per-thread state); `pool.EnginePool` runs it off
the event loop. Knows nothing of KServe, gRPC or HTTP.
"""

from __future__ import annotations

import time

from opentelemetry import trace

from . import image as image_codec
from .backends import Backend
from .types import EngineTimeoutError, OcrOptions, OcrResult, StageTimings, mean_confidence

_tracer = trace.get_tracer(__name__)


class OcrEngine:
    """Decode, prepare and recognise one image with a Tesseract backend."""

    def __init__(
        self,
        backend: Backend,
        max_pixels: int,
        max_frames: int = 64,
        *,
        max_jpeg_scans: int = 48,
        max_decoded_bytes: int = image_codec.DEFAULT_MAX_DECODED_BYTES,
    ) -> None:
        self.backend = backend
        self.max_pixels = max_pixels
        self.max_frames = max_frames
        #: What one upload may cost the decoder (see `image.probe`).
        self.limits = image_codec.DecodeLimits(
            max_pixels=max_pixels,
            max_frames=max_frames,
            max_jpeg_scans=max_jpeg_scans,
            max_decoded_bytes=max_decoded_bytes,
        )
        self._languages = backend.languages()

    @property
    def languages(self) -> frozenset[str]:
        """Installed language codes."""
        return self._languages

    def recognize(
        self, data: bytes, options: OcrOptions, timeout_s: float | None = None
    ) -> OcrResult:
        """OCR one encoded image within `timeout_s` (None: no limit).

        The time runs from this call: decoding and preparing the image spend it too, and
        recognition gets what is left. Raises EngineInputError for anything the client must
        fix and EngineTimeoutError when the time runs out.
        """
        options.validate(self._languages)
        # One span per real stage (a no-op unless tracing is configured).
        t0 = time.perf_counter()
        deadline = None if timeout_s is None else t0 + timeout_s
        with _tracer.start_as_current_span("ocr.decode") as span:
            span.set_attribute("ocr.input_bytes", len(data))
            decoded, probe = image_codec.load(data, self.limits)
            span.set_attribute("ocr.format", probe.format)
            span.set_attribute("ocr.pixels", probe.pixels)
            span.set_attribute("ocr.decoded_bytes", probe.decoded_bytes)
        t1 = time.perf_counter()
        with _tracer.start_as_current_span("ocr.preprocess") as span:
            span.set_attribute("ocr.mode", decoded.mode)
            prepared = image_codec.prepare(decoded)
            del decoded  # a converted frame is freed now, not after recognition
        t2 = time.perf_counter()
        remaining = None if deadline is None else deadline - t2
        if remaining is not None and remaining <= 0:
            raise EngineTimeoutError("the request's time ran out while its image was decoded")
        with _tracer.start_as_current_span("ocr.recognize") as span:
            span.set_attribute("ocr.engine", self.backend.name)
            span.set_attribute("ocr.lang", options.lang)
            span.set_attribute("ocr.psm", options.psm)
            span.set_attribute("ocr.oem", options.oem)
            text, words = self.backend.recognize(prepared, options, remaining)
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
