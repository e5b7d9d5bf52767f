"""How to build an engine, as data: a worker process receives this and builds its own engine.

An `OcrEngine` holds Tesseract handles that cannot cross a process boundary, so the pool ships
this description to each worker process instead, and a restarted worker builds the same engine
again from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import image as image_codec
from .backends import Backend, PytesseractBackend, TesserocrBackend
from .engine import OcrEngine


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """Everything an `OcrEngine` is built from; picklable."""

    backend: Literal["tesserocr", "pytesseract"]
    tessdata_dir: Path
    max_pixels: int
    max_frames: int = 64
    max_jpeg_scans: int = 48
    max_decoded_bytes: int = image_codec.DEFAULT_MAX_DECODED_BYTES
    #: Seconds of layout analysis per megapixel; None: measured when the worker warms.
    layout_s_per_megapixel: float | None = None

    def build_backend(self) -> Backend:
        """The Tesseract binding this spec names (nothing loaded yet)."""
        if self.backend == "pytesseract":
            return PytesseractBackend(self.tessdata_dir)
        return TesserocrBackend(
            self.tessdata_dir, layout_s_per_megapixel=self.layout_s_per_megapixel
        )

    def build(self, backend: Backend | None = None) -> OcrEngine:
        """The engine, on `backend` or a new one of the kind this spec names."""
        return OcrEngine(
            backend or self.build_backend(),
            max_pixels=self.max_pixels,
            max_frames=self.max_frames,
            max_jpeg_scans=self.max_jpeg_scans,
            max_decoded_bytes=self.max_decoded_bytes,
        )
