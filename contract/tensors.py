"""The v2 tensors of the OCR model: one BYTES input, the outputs in the order they are sent.

`text` stays the first output: clients written for a single-output model read `outputs[0]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

Datatype = Literal["BYTES", "FP32"]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One v2 tensor: its name, datatype and shape, and what it holds."""

    name: str
    datatype: Datatype
    description: str
    shape: tuple[int, ...] = (1,)
    default: bool = True
    """Sent when a request lists no outputs."""

    def metadata(self) -> dict[str, Any]:
        """The tensor as `ModelMetadata` lists it (KServe's get_input/output_types shape)."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


IMAGE: Final = TensorSpec(
    "image",
    "BYTES",
    "The encoded file, one element. A request with exactly one BYTES input is read as the image "
    "whatever the input's name (e.g. `input-0`), as KServe's custom models read `inputs[0]`.",
)

TEXT: Final = TensorSpec("text", "BYTES", "UTF-8 text of the page, lines separated by newlines.")
CONFIDENCE: Final = TensorSpec(
    "confidence", "FP32", "Mean word confidence, 0-100 (0 when no word was found)."
)
WORDS: Final = TensorSpec(
    "words", "BYTES", "UTF-8 JSON list of word objects (see `contract.words.Word`)."
)

HOCR: Final = TensorSpec(
    "hocr",
    "BYTES",
    "A complete hOCR 1.2 document (XHTML, UTF-8): ocr_page, ocr_carea, ocr_par, ocr_line and "
    "ocrx_word elements with bbox and x_wconf.",
    default=False,
)
TSV: Final = TensorSpec(
    "tsv",
    "BYTES",
    "Tesseract's TSV (UTF-8): its header row, then one row per page, block, paragraph, line "
    "and word with the 12 columns level..text.",
    default=False,
)
ALTO: Final = TensorSpec(
    "alto",
    "BYTES",
    "An ALTO 4.4 document (UTF-8 XML), MeasurementUnit pixel, word confidence WC on 0-1.",
    default=False,
)
PDF: Final = TensorSpec(
    "pdf",
    "BYTES",
    "A searchable PDF: the page image as read, with an invisible text layer where the words are.",
    default=False,
)
PAGE: Final = TensorSpec(
    "page",
    "BYTES",
    "UTF-8 JSON page facts (see `contract.page.PageFacts`): size, dpi, the rotation and deskew "
    "applied, text, confidence, words and timings.",
    default=False,
)
#: Longest side, in pixels, of the `preview` image.
PREVIEW_MAX_SIDE: Final = 1600
PREVIEW: Final = TensorSpec(
    "preview",
    "BYTES",
    "A JPEG of the upright page that was read (after rotate=auto and deskew; a PDF page as "
    f"rendered at `dpi`), scaled so its longest side is at most {PREVIEW_MAX_SIDE} px: the "
    "picture the `page` output's word boxes lie on, once scaled from its `width` x `height`.",
    default=False,
)

#: Every output, in the order a response carries them.
OUTPUTS: Final[tuple[TensorSpec, ...]] = (
    TEXT,
    CONFIDENCE,
    WORDS,
    HOCR,
    TSV,
    ALTO,
    PDF,
    PAGE,
    PREVIEW,
)
OUTPUTS_BY_NAME: Final[Mapping[str, TensorSpec]] = MappingProxyType({o.name: o for o in OUTPUTS})
#: Names of the outputs a request that lists none receives.
DEFAULT_OUTPUTS: Final[tuple[str, ...]] = tuple(o.name for o in OUTPUTS if o.default)
