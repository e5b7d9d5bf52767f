"""The OCR engine: bytes and options in, text, confidence, words and layout out, stage by stage.

Decode, preprocess (EXIF orientation, mode, then with `rotate=auto` Tesseract's orientation
detection and a quarter turn, with `deskew` the skew straightened: see `upright`), recognise.
Synchronous and thread-safe (the backend keeps per-thread state); `pool.EnginePool` runs it off
the event loop. Knows nothing of KServe, gRPC or HTTP.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from opentelemetry import trace
from PIL import Image

from . import image as image_codec
from . import pdf_pages, upright
from .backends import Backend
from .types import (
    Block,
    Box,
    EngineTimeoutError,
    InvalidImageError,
    OcrOptions,
    OcrResult,
    Paragraph,
    StageTimings,
    TextLine,
    Word,
    mean_confidence,
    words_of,
)

_tracer = trace.get_tracer(__name__)

#: Tesseract OSD's orientation confidence from which `rotate=auto` turns the page; defined,
#: with what it was measured on, in `upright` (the tesserocr backend's first, shorter OSD look
#: is sure from the same confidence).
MIN_ORIENTATION_CONFIDENCE = upright.MIN_ORIENTATION_CONFIDENCE
#: Largest resolution believed from a file's header; beyond it (or 0) the dpi is unknown.
_MAX_DPI = 10_000


@dataclass(frozen=True, slots=True)
class PageRead:
    """What reading one page gave: the result, and the upright page image that was read when
    the caller asked to keep it (for the searchable PDF); None otherwise."""

    result: OcrResult
    image: Image.Image | None = None


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
        """OCR one encoded image within `timeout_s` (None: no limit); see `read`."""
        return self.read(data, options, timeout_s).result

    def read(
        self,
        data: bytes,
        options: OcrOptions,
        timeout_s: float | None = None,
        *,
        keep_image: bool = False,
    ) -> PageRead:
        """OCR one encoded image within `timeout_s` (None: no limit), keeping the upright page
        image that was read when `keep_image` (else it is freed as soon as it was read).

        The time runs from this call: decoding and preparing the image spend it too, and
        recognition gets what is left. Raises EngineInputError for anything the client must
        fix and EngineTimeoutError when the time runs out.
        """
        options.validate(self._languages)
        if options.pdf_text == "keep" and image_codec.is_pdf(data):
            kept = self._pdf_text(data, options, timeout_s, keep_image=keep_image)
            if kept is not None:
                return kept
        # One span per real stage (a no-op unless tracing is configured).
        t0 = time.perf_counter()
        deadline = None if timeout_s is None else t0 + timeout_s
        with _tracer.start_as_current_span("ocr.decode") as span:
            span.set_attribute("ocr.input_bytes", len(data))
            decoded, probe = image_codec.load(
                data, self.limits, page=options.page, dpi=options.dpi, deadline=deadline
            )
            span.set_attribute("ocr.format", probe.format)
            span.set_attribute("ocr.pixels", probe.pixels)
            span.set_attribute("ocr.decoded_bytes", probe.decoded_bytes)
        t1 = time.perf_counter()
        dpi = _dpi(decoded)
        with _tracer.start_as_current_span("ocr.preprocess") as span:
            span.set_attribute("ocr.mode", decoded.mode)
            prepared = image_codec.prepare(decoded)
            del decoded  # a converted frame is freed now, not after recognition
            if deadline is not None and time.perf_counter() >= deadline:
                raise EngineTimeoutError("the request's time ran out while its image was decoded")
            prepared, rotation, rotation_confidence, skew = self._set_upright(prepared, options)
            span.set_attribute("ocr.rotation", rotation)
            span.set_attribute("ocr.skew", skew)
        t2 = time.perf_counter()
        remaining = None if deadline is None else deadline - t2
        if remaining is not None and remaining <= 0:
            raise EngineTimeoutError("the request's time ran out while its image was decoded")
        with _tracer.start_as_current_span("ocr.recognize") as span:
            span.set_attribute("ocr.engine", self.backend.name)
            span.set_attribute("ocr.lang", options.lang)
            span.set_attribute("ocr.psm", options.psm)
            span.set_attribute("ocr.oem", options.oem)
            text, blocks = self.backend.recognize(prepared, options, remaining)
            words = words_of(blocks)
            confidence = round(mean_confidence(words), 2)
            span.set_attribute("ocr.words", len(words))
            span.set_attribute("ocr.confidence", confidence)
        t3 = time.perf_counter()
        result = OcrResult(
            text=text,
            confidence=confidence,
            words=words,
            width=prepared.width,
            height=prepared.height,
            timings=StageTimings(decode_s=t1 - t0, preprocess_s=t2 - t1, recognize_s=t3 - t2),
            blocks=blocks,
            dpi=dpi,
            rotation=rotation,
            rotation_confidence=rotation_confidence,
            skew=skew,
            page=probe.page,
            page_count=probe.pages,
        )
        return PageRead(result, prepared if keep_image else None)

    def _pdf_text(
        self, data: bytes, options: OcrOptions, timeout_s: float | None, *, keep_image: bool
    ) -> PageRead | None:
        """The PDF page's own text as the result (`source` "pdf"), or None when the page has
        none and must be read by OCR. Its words are boxed in the pixels of the page rendered at
        `options.dpi`, confidence 100; one block, one paragraph, PDFium's lines. The page is
        rendered only when its image is wanted (the searchable PDF)."""
        t0 = time.perf_counter()
        with _tracer.start_as_current_span("ocr.decode") as span:
            span.set_attribute("ocr.input_bytes", len(data))
            span.set_attribute("ocr.format", "PDF")
            size, found = pdf_pages.page_words(data, options.page, options.dpi, self.limits)
            span.set_attribute("ocr.pdf_words", len(found))
        if not found:
            return None
        grouped: dict[int, list[pdf_pages.PdfWord]] = {}
        for found_word in found:
            grouped.setdefault(found_word.line, []).append(found_word)
        text_lines = []
        for index, line_words in enumerate(grouped.values(), 1):
            words = tuple(
                Word(
                    text=w.text,
                    confidence=100.0,
                    left=w.left,
                    top=w.top,
                    width=max(1, w.right - w.left),
                    height=max(1, w.bottom - w.top),
                    block=1,
                    line=index,
                    paragraph=1,
                )
                for w in line_words
            )
            text_lines.append(TextLine(_union(tuple(_box(w) for w in words)), words))
        page_box = _union(tuple(line.box for line in text_lines))
        blocks = (Block(page_box, (Paragraph(page_box, tuple(text_lines)),)),)
        image = None
        if keep_image:
            deadline = None if timeout_s is None else t0 + timeout_s
            image, _ = image_codec.load(
                data, self.limits, page=options.page, dpi=options.dpi, deadline=deadline
            )
        result = OcrResult(
            text="".join(" ".join(w.text for w in line.words) + "\n" for line in text_lines),
            confidence=100.0,
            words=words_of(blocks),
            width=size.width,
            height=size.height,
            timings=StageTimings(decode_s=time.perf_counter() - t0),
            blocks=blocks,
            dpi=float(options.dpi),
            page=size.page,
            page_count=size.pages,
            source="pdf",
        )
        return PageRead(result, image)

    def _set_upright(
        self, page: Image.Image, options: OcrOptions
    ) -> tuple[Image.Image, int, float | None, float]:
        """`page` turned upright (rotate=auto) and straightened (deskew), with the clockwise
        turn applied, OSD's confidence (None unless it ran) and the degrees of deskew."""
        rotation, confidence, skew = 0, None, 0.0
        if options.rotate != "auto" and not options.deskew:
            return page, rotation, confidence, skew
        # The upright copies count in the same budget as decoding: the pixels one upload holds.
        held = page.width * page.height * (4 if page.mode == "RGB" else 1)
        needed = held + upright.upright_bytes(page, options.rotate == "auto", options.deskew)
        if needed > self.limits.max_decoded_bytes:
            steps = " and ".join(
                step
                for step, wanted in (
                    ("rotate=auto", options.rotate == "auto"),
                    ("deskew", options.deskew),
                )
                if wanted
            )
            raise InvalidImageError(
                f"{steps} on the {page.width}x{page.height} {page.mode} page would hold about "
                f"{math.ceil(needed / 2**20)} MiB of pixels; the limit is "
                f"{self.limits.max_decoded_bytes // 2**20} MiB: send a smaller page, or without "
                f"{steps}"
            )
        if options.rotate == "auto":
            found = self.backend.orientation(upright.bilevel(page))
            if found is not None:
                confidence = round(found.confidence, 2)
                if found.degrees and found.confidence >= MIN_ORIENTATION_CONFIDENCE:
                    page = upright.turn(page, found.degrees)
                    rotation = found.degrees
        if options.deskew:
            skew = upright.measure_skew(page)
            if skew:
                # Cropped to the ink: the padded corners would cost Tesseract ~20 % at 7 degrees.
                width, height = upright.cropped_size(page, skew)
                if width * height > self.max_pixels:
                    raise InvalidImageError(
                        f"straightening the {page.width}x{page.height} page by {skew} degrees "
                        f"makes it {width}x{height} pixels; the limit is {self.max_pixels} "
                        "pixels: send it without deskew"
                    )
                page = upright.straighten(page, skew, (width, height))
        return page, rotation, confidence, skew


def _box(word: Word) -> Box:
    return Box(word.left, word.top, word.width, word.height)


def _union(boxes: tuple[Box, ...]) -> Box:
    """The smallest box holding `boxes`."""
    left = min(b.left for b in boxes)
    top = min(b.top for b in boxes)
    right = max(b.left + b.width for b in boxes)
    bottom = max(b.top + b.height for b in boxes)
    return Box(left, top, right - left, bottom - top)


def _dpi(image: Image.Image) -> float | None:
    """The horizontal resolution the file declares (dots per inch), if it declares a sane one."""
    declared = image.info.get("dpi")
    if isinstance(declared, tuple) and declared:
        declared = declared[0]
    try:
        dpi = float(declared)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(dpi) or not 0 < dpi <= _MAX_DPI:
        return None
    return round(dpi, 2)
