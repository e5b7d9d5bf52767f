"""The wire contract between the gateway and the model server, in one place.

Tensor names and datatypes, request parameters and their limits, the fields of a word, the
image formats accepted and the raw BYTES element encoding. The gateway, the model server and the
tests import it; neither side writes a name or a limit of its own. Adding an output is one
`TensorSpec` in `tensors.OUTPUTS` plus its encoder in the model (`model/codec.py`), which a test
holds to this list. Pure Python plus pydantic: no gRPC, KServe or Tesseract here.
"""

from .bytes_codec import MalformedBytesError, decode_bytes_elements, encode_bytes_element
from .formats import ACCEPTED_FORMAT_NAMES, IMAGE_FORMATS, ImageFormat, sniff_image_format
from .output_formats import (
    OUTPUT_FORMATS,
    OUTPUT_FORMATS_BY_NAME,
    TSV_COLUMNS,
    OutputFormat,
    format_for_media_type,
)
from .page import PageFacts, PageTimings
from .parameters import (
    DEFAULT_DPI,
    DESKEW,
    DPI,
    LANG,
    LANG_PATTERN,
    OEM,
    PAGE_NUMBER,
    PARAMETERS,
    PDF_TEXT,
    PDF_TEXT_ONLY,
    PSM,
    ROTATE,
    TENANT,
    BoolParameter,
    ChoiceParameter,
    IntParameter,
    StringParameter,
)
from .tensors import (
    ALTO,
    CONFIDENCE,
    DEFAULT_OUTPUTS,
    HOCR,
    IMAGE,
    OUTPUTS,
    OUTPUTS_BY_NAME,
    PAGE,
    PDF,
    PREVIEW,
    PREVIEW_MAX_SIDE,
    TEXT,
    TSV,
    WORDS,
    TensorSpec,
)
from .words import WORD_FIELDS, Word

__all__ = [
    "ACCEPTED_FORMAT_NAMES",
    "ALTO",
    "CONFIDENCE",
    "DEFAULT_DPI",
    "DEFAULT_OUTPUTS",
    "DESKEW",
    "DPI",
    "HOCR",
    "IMAGE",
    "IMAGE_FORMATS",
    "LANG",
    "LANG_PATTERN",
    "OEM",
    "OUTPUTS",
    "OUTPUTS_BY_NAME",
    "OUTPUT_FORMATS",
    "OUTPUT_FORMATS_BY_NAME",
    "PAGE",
    "PAGE_NUMBER",
    "PARAMETERS",
    "PDF",
    "PDF_TEXT",
    "PDF_TEXT_ONLY",
    "PREVIEW",
    "PREVIEW_MAX_SIDE",
    "PSM",
    "ROTATE",
    "TENANT",
    "TEXT",
    "TSV",
    "TSV_COLUMNS",
    "WORDS",
    "WORD_FIELDS",
    "BoolParameter",
    "ChoiceParameter",
    "ImageFormat",
    "IntParameter",
    "MalformedBytesError",
    "OutputFormat",
    "PageFacts",
    "PageTimings",
    "StringParameter",
    "TensorSpec",
    "Word",
    "decode_bytes_elements",
    "encode_bytes_element",
    "format_for_media_type",
    "sniff_image_format",
]
