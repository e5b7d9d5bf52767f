"""The KServe model: v2 request in, engine call off the event loop, v2 response out.

The `kserve.Model` contract: `load()` sets `ready`; KServe then calls `predict()` for every
inference over REST and gRPC. This class knows nothing of Tesseract internals: it hands bytes
and options to the engine pool and turns the engine's errors into protocol errors through the
one table in `model.errors`. It computes only the outputs a request wants: the upright page
image is kept only for `pdf` (and not for its text layer alone) and `preview`, and the layout
writers (hOCR, TSV, ALTO, PDF), the preview and the page facts run only when asked for, on a
thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import kserve
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest, InferResponse
from opentelemetry import trace

import contract

from . import codec
from .deadlines import time_left
from .engine import AdmissionRefusedError, EnginePool, OcrOptions, OcrResult, ResultCache
from .engine.cache import CacheKey
from .engine.types import OSD_LANGUAGE
from .errors import to_protocol_error
from .intake import Intake
from .metrics import ModelMetrics

#: Outputs cheap enough to encode on the event loop: the defaults (text, confidence, words).
_INLINE_OUTPUTS = frozenset(contract.DEFAULT_OUTPUTS)


def tenant_key(key: CacheKey, tenant: str) -> CacheKey:
    """`key` for `tenant` alone: a cached result only ever answers the tenant that stored it,
    so no caller learns from a fast answer that another uploaded the same document."""
    digest, options = key
    return hashlib.sha256(tenant.encode() + b"\0" + digest).digest(), options


class OcrModel(kserve.Model):  # type: ignore[misc]  # kserve ships no type information
    """Tesseract OCR served as a KServe v2 model."""

    def __init__(
        self,
        name: str,
        pool: EnginePool,
        defaults: OcrOptions,
        metrics: ModelMetrics,
        max_request_s: float = 60.0,
        cache: ResultCache | None = None,
        pdf_font: Path | None = None,
    ) -> None:
        super().__init__(name)
        self._pdf_font = pdf_font
        self._pool = pool
        self._defaults = defaults
        self.metrics = metrics
        self._max_request_s = max_request_s
        self._cache = cache
        #: Holds each request's bytes from its receipt (the server's protocol guards use it).
        self.intake = Intake(pool.admission, metrics.record_refusal)

    def load(self) -> bool:
        """Start the engine workers and load the default language in each."""
        self._pool.warm()
        self.metrics.workers.set(self._pool.workers)
        self.ready = True
        return True

    def stop(self) -> None:
        """Finish in-flight OCR and stop the workers (KServe calls this on shutdown)."""
        self.ready = False
        self._pool.close(wait=False)

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages a request's `lang` may name, sorted: those installed but `osd`."""
        return tuple(sorted(self._pool.engine.languages - {OSD_LANGUAGE}))

    def get_input_types(self) -> list[dict[str, Any]]:
        return codec.INPUT_TYPES

    def get_output_types(self) -> list[dict[str, Any]]:
        return codec.OUTPUT_TYPES

    def _cached(self, key: CacheKey | None) -> OcrResult | None:
        """The cached result for `key`, counted as a hit or a miss; None without a cache."""
        if self._cache is None or key is None:
            return None
        result = self._cache.get(key)
        self.metrics.cache_lookups.labels("miss" if result is None else "hit").inc()
        return result

    def _remember(self, key: CacheKey | None, result: OcrResult) -> None:
        if self._cache is not None and key is not None:
            self._cache.put(key, result)
            self.metrics.cache_entries.set(len(self._cache))

    async def predict(
        self,
        payload: InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        if not isinstance(payload, InferRequest):
            raise InvalidInput("this model speaks the v2 inference protocol only")
        try:
            image, options = codec.parse_request(payload, self._defaults)
            tenant = codec.parse_tenant(payload.parameters)
            wanted = codec.parse_outputs(payload)
            output_options = codec.parse_output_options(payload.parameters)
            if self._pdf_font is not None:
                output_options = replace(output_options, pdf_font=self._pdf_font)
        except InvalidInput:
            self.metrics.record_error("invalid")
            raise
        # Installed languages only, so the label's values stay few; the rest count as "invalid".
        lang = options.lang if options.lang in self._pool.engine.languages else "invalid"
        span = trace.get_current_span()
        span.set_attributes(
            {
                "ocr.lang": options.lang,
                "ocr.psm": options.psm,
                "ocr.rotate": options.rotate,
                "ocr.deskew": options.deskew,
                "ocr.outputs": list(wanted),
            }
        )
        # The caller's gRPC deadline, capped by our own limit (REST calls carry none).
        remaining = time_left()
        budget = self._max_request_s if remaining is None else min(remaining, self._max_request_s)
        # The searchable PDF (unless it is the text layer alone) and the preview need the page
        # image that was read; the cache keeps results only, so such a request is always read
        # (and its result then cached for the others). The cache key holds every option, `page`
        # and `dpi` too: another page or resolution of the same file is another result.
        keep_image = (
            contract.PDF.name in wanted and not output_options.pdf_text_only
        ) or contract.PREVIEW.name in wanted
        key = (
            None
            if self._cache is None
            else tenant_key(await self._cache.key(image, options), tenant)
        )
        result = None if keep_image else self._cached(key)
        cache_hit = result is not None
        page_image = None
        if result is None:
            self.metrics.in_flight.inc()
            try:
                read = await self._pool.read(image, options, budget, keep_image=keep_image)
            except Exception as exc:
                self.metrics.record_error(lang)
                if isinstance(exc, AdmissionRefusedError):
                    self.metrics.record_refusal(exc.reason)
                raise to_protocol_error(exc) from None
            finally:
                self.metrics.in_flight.dec()
            result, page_image = read.result, read.image
            self._remember(key, result)
        self.metrics.record_success(lang, result, cached=cache_hit)
        span.set_attributes(
            {
                "ocr.pixels": result.width * result.height,
                "ocr.words": len(result.words),
                "ocr.confidence": result.confidence,
                "ocr.cache_hit": cache_hit,
                "ocr.rotation": result.rotation,
                "ocr.skew": result.skew,
            }
        )
        if set(wanted) <= _INLINE_OUTPUTS:
            return codec.build_response(payload, result, self.name, wanted, None, output_options)
        # The writers take milliseconds (hOCR of a dense page) to a second (a large PDF).
        return await asyncio.to_thread(
            codec.build_response, payload, result, self.name, wanted, page_image, output_options
        )
