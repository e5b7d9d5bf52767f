"""Request parameters of the OCR model (v2 `parameters`) and their limits.

The gateway validates its form fields with these limits and the engine checks options against
them, so a value the gateway lets through is never refused by the model for being out of range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class StringParameter:
    """A string parameter (v2 `string_param`) matching `pattern`, at most `max_length` long."""

    name: str
    description: str
    pattern: str
    max_length: int
    default: str


@dataclass(frozen=True, slots=True)
class IntParameter:
    """An integer parameter (v2 `int64_param`) within `minimum..maximum`."""

    name: str
    description: str
    minimum: int
    maximum: int

    @property
    def values(self) -> range:
        """The accepted values."""
        return range(self.minimum, self.maximum + 1)


#: Most language codes one request may combine: Tesseract loads a model per code and runs them
#: all on every word (eight codes took the model from 171 to 722 MiB).
MAX_LANG_CODES: Final = 3
#: Installed model names joined by "+": 1 to 3 codes of at most 32 characters each. The engine
#: also refuses a code named twice and `osd` (orientation data, not a language).
LANG_PATTERN: Final = rf"^[A-Za-z0-9_]{{1,32}}(\+[A-Za-z0-9_]{{1,32}}){{0,{MAX_LANG_CODES - 1}}}$"

LANG: Final = StringParameter(
    "lang",
    f"Tesseract language(s): 1 to {MAX_LANG_CODES} distinct installed codes joined by '+', "
    "e.g. `eng` or `eng+deu`.",
    LANG_PATTERN,
    max_length=MAX_LANG_CODES * 33 - 1,
    default="eng",
)
PSM: Final = IntParameter(
    "psm", "Tesseract page-segmentation mode (`tesseract --help-psm`).", minimum=0, maximum=13
)
OEM: Final = IntParameter(
    "oem", "Tesseract engine mode: 0 legacy, 1 LSTM, 2 both, 3 default.", minimum=0, maximum=3
)
#: Named PAGE_NUMBER: `PAGE` is the page-facts output (`contract.tensors`). The maximum only
#: bounds the integer: a file holds at most the model's frame limit (`OCR_MODEL_MAX_FRAMES`).
PAGE_NUMBER: Final = IntParameter(
    "page",
    "Page to read of a multi-page file (a PDF page, a TIFF or GIF frame), from 1; the file's "
    "page count, reported as `page_count` in the page facts, is the real bound.",
    minimum=1,
    maximum=100_000,
)
#: The resolution a PDF page is rendered at when a request sends no `dpi`: Tesseract reads
#: body text best with capitals of 20-40 px (10-12 pt type at 300 dpi). The bounds: 72 dpi is
#: one pixel a point (smaller type becomes unreadable below it); 600 dpi makes an A4 page
#: 35 MP, near the default pixel limit, and gains Tesseract nothing on ordinary type.
DEFAULT_DPI: Final = 300
DPI: Final = IntParameter(
    "dpi",
    "Resolution a PDF page is rendered at, in dots per inch (images are read at their own "
    f"pixels). The model's default (`OCR_MODEL_DEFAULT_DPI`, {DEFAULT_DPI}) when unset.",
    minimum=72,
    maximum=600,
)
#: Who is asking, as an opaque id: the gateway sends an HMAC of the caller's API key (or
#: address). Not an OCR option: the model keeps cached results apart per tenant, so one caller
#: never learns from a cache hit what another uploaded. Callers that send none share "".
TENANT: Final = StringParameter(
    "tenant",
    "Opaque id of the caller; results are cached per tenant.",
    r"^[A-Za-z0-9:._-]{0,64}$",
    max_length=64,
    default="",
)


@dataclass(frozen=True, slots=True)
class ChoiceParameter:
    """A string parameter (v2 `string_param`) that is one of `choices`."""

    name: str
    description: str
    choices: tuple[str, ...]
    default: str


@dataclass(frozen=True, slots=True)
class BoolParameter:
    """A boolean parameter (v2 `bool_param`; the strings `true`/`false` over REST too)."""

    name: str
    description: str
    default: bool


ROTATE: Final = ChoiceParameter(
    "rotate",
    "`auto`: detect the page's orientation (Tesseract OSD) and turn it upright when the "
    "detection is confident; `none`: read the page as it is. The model's default "
    "(`OCR_MODEL_DEFAULT_ROTATE`) when unset.",
    choices=("none", "auto"),
    default="none",
)
DESKEW: Final = BoolParameter(
    "deskew",
    "Measure the page's skew (up to 15 degrees either way) and straighten it before reading.",
    default=False,
)

PDF_TEXT: Final = ChoiceParameter(
    "pdf_text",
    "For a PDF page that carries its own text (born digital): `ocr` reads the rendered page "
    "with Tesseract like any other; `keep` returns the page's own text and its word boxes "
    "(`source: pdf` in the page facts, confidence 100), with no OCR. A page without text is "
    "read by OCR either way.",
    choices=("ocr", "keep"),
    default="ocr",
)
PDF_TEXT_ONLY: Final = BoolParameter(
    "pdf_text_only",
    "The `pdf` output holds only the invisible text layer, on a page of the same size and no "
    "page image (Tesseract's `textonly_pdf`): to lay over the original page.",
    default=False,
)

PARAMETERS: Final = (
    LANG, PSM, OEM, TENANT, ROTATE, DESKEW, PAGE_NUMBER, DPI, PDF_TEXT, PDF_TEXT_ONLY
)  # fmt: skip
