"""Domain types of the OCR engine: options in, result out, and the errors a caller can fix.

Nothing here knows about KServe, gRPC or HTTP (the limits of the options come from the pure
`contract` package); the predictor maps these errors to protocol errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import contract
from contract.parameters import MAX_LANG_CODES

#: Tesseract page-segmentation modes are 0..13 (see `tesseract --help-psm`).
PSM_RANGE = contract.PSM.values
#: Tesseract OCR engine modes are 0..3 (legacy, LSTM, both, default).
OEM_RANGE = contract.OEM.values
#: Tesseract's orientation and script detection data (`osd.traineddata`), which rotate=auto needs.
OSD_LANGUAGE = "osd"
#: What InvalidOptionError says when rotate=auto meets a tessdata without osd.traineddata.
OSD_MISSING = (
    "rotate=auto needs Tesseract's orientation and script data (osd.traineddata, Debian "
    "package tesseract-ocr-osd), which is not installed on this model server"
)
#: A language spec: 1 to 3 installed model names joined by "+", e.g. "eng" or "eng+deu".
_LANG_RE = re.compile(contract.LANG_PATTERN)


class EngineInputError(ValueError):
    """The request cannot be served as sent; the message is safe to show to the client."""


class InvalidImageError(EngineInputError):
    """The bytes are not a decodable image of a supported format."""


class InvalidOptionError(EngineInputError):
    """An OCR option (language, psm, oem, rotate, page, dpi) is malformed, out of range or not
    installed."""


class EngineBusyError(RuntimeError):
    """Every worker is busy and the queue is full: the request is refused at once."""


class EngineTimeoutError(RuntimeError):
    """The request's time ran out while it waited or while Tesseract worked on it."""


class EngineMemoryError(InvalidImageError):
    """Reading the page took more memory than a worker may use: the page is refused."""


class EngineMemoryShortError(EngineBusyError):
    """The model's processes together held more than its container may: the worker reading the
    page that took the most was stopped, and the page is refused until memory is back."""


class EngineWorkerLostError(RuntimeError):
    """The worker reading the page died or failed unexpectedly (it is restarted)."""


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """How to recognise one image."""

    lang: str = "eng"
    psm: int = 3
    oem: int = 3
    rotate: str = contract.ROTATE.default
    """`auto`: turn the page upright by Tesseract's orientation detection first; `none`."""
    deskew: bool = contract.DESKEW.default
    """Measure the page's skew and straighten it before it is read."""
    page: int = 1
    """The page of a multi-page file to read (a PDF page, a TIFF or GIF frame), from 1."""
    dpi: int = contract.DEFAULT_DPI
    """The resolution a PDF page is rendered at (images are read at their own pixels)."""
    pdf_text: str = contract.PDF_TEXT.default
    """`keep`: a PDF page's own text is returned instead of OCR, when it has some; `ocr`."""

    def validate(self, installed: frozenset[str]) -> None:
        """Raise InvalidOptionError unless every option is usable with `installed` languages."""
        if not _LANG_RE.match(self.lang):
            raise InvalidOptionError(
                f"lang {self.lang!r} is malformed: use 1 to {MAX_LANG_CODES} installed language "
                "codes joined by '+', e.g. 'eng' or 'eng+deu'"
            )
        codes = self.lang.split("+")
        if "osd" in codes:
            raise InvalidOptionError(
                "'osd' is Tesseract's orientation and script data, not a language: name the "
                "language(s) of the text, e.g. 'eng'"
            )
        if len(set(codes)) < len(codes):
            raise InvalidOptionError(f"lang {self.lang!r} names a language twice")
        missing = [code for code in codes if code not in installed]
        if missing:
            raise InvalidOptionError(
                f"language {'+'.join(missing)!r} is not installed; installed: "
                + ", ".join(sorted(installed - {"osd"}))
            )
        if self.psm not in PSM_RANGE:
            raise InvalidOptionError(f"psm {self.psm} is out of range: use 0..13")
        if self.oem not in OEM_RANGE:
            raise InvalidOptionError(f"oem {self.oem} is out of range: use 0..3")
        if self.rotate not in contract.ROTATE.choices:
            raise InvalidOptionError(
                f"rotate {self.rotate!r} is not one of " + ", ".join(contract.ROTATE.choices)
            )
        if self.pdf_text not in contract.PDF_TEXT.choices:
            raise InvalidOptionError(
                f"pdf_text {self.pdf_text!r} is not one of " + ", ".join(contract.PDF_TEXT.choices)
            )
        if self.rotate == "auto" and OSD_LANGUAGE not in installed:
            raise InvalidOptionError(OSD_MISSING)
        for spec, value in ((contract.PAGE_NUMBER, self.page), (contract.DPI, self.dpi)):
            if value not in spec.values:
                raise InvalidOptionError(
                    f"{spec.name} {value} is out of range: use {spec.minimum}..{spec.maximum}"
                )


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with its confidence (0..100) and pixel bounding box.

    `block` counts from 1 on the page, `paragraph` and `line` from 1 within the block.
    """

    text: str
    confidence: float
    left: int
    top: int
    width: int
    height: int
    block: int
    line: int
    paragraph: int = 1


@dataclass(frozen=True, slots=True)
class Box:
    """A pixel rectangle: left, top, width, height."""

    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class TextLine:
    """One line of text as Tesseract segmented it, with its words in reading order."""

    box: Box
    words: tuple[Word, ...]


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One paragraph: its box and lines."""

    box: Box
    lines: tuple[TextLine, ...]


@dataclass(frozen=True, slots=True)
class Block:
    """One text block (Tesseract's BLOCK level): its box and paragraphs."""

    box: Box
    paragraphs: tuple[Paragraph, ...]


@dataclass(frozen=True, slots=True)
class Orientation:
    """What orientation detection found: the clockwise turn (0, 90, 180 or 270 degrees) that
    sets the page upright, and Tesseract OSD's confidence in it."""

    degrees: int
    confidence: float


@dataclass(frozen=True, slots=True)
class StageTimings:
    """Seconds spent waiting for a worker and in each engine stage, for one image."""

    queue_s: float = 0.0
    decode_s: float = 0.0
    preprocess_s: float = 0.0
    recognize_s: float = 0.0


@dataclass(frozen=True, slots=True)
class OcrResult:
    """Text of one image, its mean word confidence (0..100, 0 when no words) and its words.

    `blocks` hold the same words in Tesseract's layout (block, paragraph, line), which the
    hOCR, TSV, ALTO and PDF writers read. `width`/`height` and every box are those of the
    upright page that was read: after `rotation` (clockwise degrees, 0/90/180/270) and `skew`
    (degrees of deskew applied) were applied to the upload. `dpi` is the file's declared
    resolution, or for a PDF page the one it was rendered at.
    """

    text: str
    confidence: float
    words: tuple[Word, ...] = ()
    width: int = 0
    height: int = 0
    timings: StageTimings = field(default_factory=StageTimings)
    blocks: tuple[Block, ...] = ()
    dpi: float | None = None
    rotation: int = 0
    rotation_confidence: float | None = None
    skew: float = 0.0
    page: int = 1
    """The page of the file that was read, from 1."""
    page_count: int = 1
    """Pages in the file (PDF pages, TIFF or GIF frames); 1 for a single image."""
    source: Literal["ocr", "pdf"] = "ocr"
    """`ocr`: recognised by Tesseract; `pdf`: a PDF page's own text (`pdf_text=keep`)."""


def words_of(blocks: tuple[Block, ...]) -> tuple[Word, ...]:
    """The words of `blocks` in reading order."""
    return tuple(
        word
        for block in blocks
        for paragraph in block.paragraphs
        for line in paragraph.lines
        for word in line.words
    )


def mean_confidence(words: tuple[Word, ...]) -> float:
    """Mean word confidence; 0.0 when nothing was recognised."""
    if not words:
        return 0.0
    return sum(w.confidence for w in words) / len(words)
