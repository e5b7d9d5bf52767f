"""The answer formats a client may ask the gateway for, each tied to the model output it comes
from and the media type it is served as (the gateway's `format` field and `Accept` header)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from .tensors import ALTO, HOCR, PDF, TSV, TensorSpec

#: Tesseract's 12 TSV columns, in order: the header of the `tsv` output (model) and of a
#: document's TSV joined from its pages (gateway).
TSV_COLUMNS: Final[tuple[str, ...]] = (
    "level", "page_num", "block_num", "par_num", "line_num", "word_num",
    "left", "top", "width", "height", "conf", "text",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """One answer format: its `format` name, media type, file extension and model output."""

    name: str
    media_type: str
    extension: str
    output: TensorSpec | None
    """The model output it is written from; None for `json`, `text` and `ndjson`, which are
    built from the default outputs."""


JSON: Final = OutputFormat("json", "application/json", "json", None)
TEXT_PLAIN: Final = OutputFormat("text", "text/plain; charset=utf-8", "txt", None)
HOCR_DOCUMENT: Final = OutputFormat("hocr", "text/vnd.hocr+html; charset=utf-8", "hocr", HOCR)
TSV_TABLE: Final = OutputFormat("tsv", "text/tab-separated-values; charset=utf-8", "tsv", TSV)
ALTO_XML: Final = OutputFormat("alto", "application/alto+xml; charset=utf-8", "alto.xml", ALTO)
SEARCHABLE_PDF: Final = OutputFormat("pdf", "application/pdf", "pdf", PDF)
#: JSON lines, one per page as soon as it is read, then a summary line (documents).
NDJSON_LINES: Final = OutputFormat("ndjson", "application/x-ndjson", "ndjson", None)

#: Every format, `json` (the default) first.
OUTPUT_FORMATS: Final[tuple[OutputFormat, ...]] = (
    JSON,
    TEXT_PLAIN,
    HOCR_DOCUMENT,
    TSV_TABLE,
    ALTO_XML,
    SEARCHABLE_PDF,
    NDJSON_LINES,
)
OUTPUT_FORMATS_BY_NAME: Final[Mapping[str, OutputFormat]] = MappingProxyType(
    {f.name: f for f in OUTPUT_FORMATS}
)


def format_for_media_type(media_type: str) -> OutputFormat | None:
    """The format served as `media_type` (parameters such as charset ignored), or None."""
    bare = media_type.split(";", 1)[0].strip().lower()
    for output_format in OUTPUT_FORMATS:
        if output_format.media_type.split(";", 1)[0] == bare:
            return output_format
    return None
