"""Writers of the layout formats (hOCR, TSV, ALTO, searchable PDF), all from one recognition.

Each writer takes the pages of one answer (one page for an image; several for a document) as
`FormatPage`s and returns the encoded document. They read only `OcrResult` (text, words and the
block/paragraph/line layout) and, for the PDF, the upright page image that was read: nothing
here calls Tesseract again.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from ..engine.types import OcrResult


@dataclass(frozen=True, slots=True)
class FormatPage:
    """One page of an answer: its number (from 1), what was read, and the page image read
    (kept only when a PDF is asked for; None otherwise)."""

    number: int
    result: OcrResult
    image: Image.Image | None = None
