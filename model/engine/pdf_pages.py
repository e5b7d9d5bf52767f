"""One page of a PDF rendered to pixels with PDFium (pypdfium2), bounded before it is drawn.

A PDF is recognised from its bytes by the contract (`contract.formats.PDF_FORMAT`: `%PDF-`
within the first 1024, where Acrobat and PDFium look for it). Before a pixel is drawn the
document's page count is checked against the frame limit (PDFium counts 150 000 pages in
~40 ms) and the page's size in points at the requested dpi against the pixel and decoded-bytes
limits, so a 200x200-inch page at 600 dpi is refused from its MediaBox alone, in milliseconds.
Rendering then stops at the request's deadline: PDFium renders progressively and asks between
drawing steps whether to pause.

The page is rendered in grayscale (PDFium's 8-bit gray bitmap): Tesseract reads luminance
(its recogniser takes a gray image, and binarises colour pages itself), a gray page takes one
byte a pixel where RGB takes four in Pillow, and PDFium draws it fastest (an A4 scan at 300 dpi:
~0.02-0.04 s gray, ~0.06-0.09 s as RGB then converted). The bitmap's buffer is Python memory that
the page image shares, so the pixels are never copied. Page rotation (`/Rotate`) is applied;
annotations are drawn; no form environment is set up, so scripts and form actions never run.

PDFium is not thread-safe: every call into it (opening, counting, rendering, closing) holds
`_PDFIUM`, one lock per process, and every handle is closed under it (never by a finalizer on
another thread). PDFium's own working memory comes on top of the page's bitmap: it draws
Flate and JPEG images in stripes and decodes JPEG 2000 at the reduced resolution the page needs
(measured: 13 MiB for a 400 MP gray image and 82 MiB for a 100 MP colour one drawn on a letter
page).
"""

from __future__ import annotations

import ctypes
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pypdfium2.raw as pdfium
from PIL import Image

import contract

from .types import EngineTimeoutError, InvalidImageError

if TYPE_CHECKING:
    from .image import DecodeLimits

_POINTS_PER_INCH: Final = 72
_MIB: Final = 1024 * 1024

#: Every call into PDFium holds this lock: PDFium keeps process-wide state and is not
#: thread-safe.
_PDFIUM = threading.Lock()


@dataclass(frozen=True, slots=True)
class PdfPageSize:
    """A PDF page's size in points and in pixels at the dpi it is to be rendered at."""

    #: Pages in the document.
    pages: int
    #: The page to render, from 1.
    page: int
    dpi: int
    width_pt: float
    height_pt: float
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def bitmap_bytes(self) -> int:
        """Bytes of the 8-bit gray bitmap the page is rendered into (the page image shares
        them)."""
        return self.pixels


def measure(data: bytes, page: int, dpi: int, limits: DecodeLimits) -> PdfPageSize:
    """The size of page `page` of the PDF `data` at `dpi`, checked against `limits`; nothing is
    rendered. Raises InvalidImageError for a damaged, encrypted or too costly document."""
    with _PDFIUM:
        document = _open(data)
        try:
            return _measure(document, page, dpi, limits)
        finally:
            pdfium.FPDF_CloseDocument(document)


def render(
    data: bytes, page: int, dpi: int, limits: DecodeLimits, deadline: float | None = None
) -> tuple[Image.Image, PdfPageSize]:
    """Page `page` of the PDF `data` rendered at `dpi` as an 8-bit grayscale image (its `dpi`
    in `info`), after `measure`'s checks. Raises EngineTimeoutError when `deadline` (a
    `time.perf_counter()` value) passes while the page is drawn."""
    with _PDFIUM:
        document = _open(data)
        try:
            size = _measure(document, page, dpi, limits)
            pixels = _render(document, size, deadline)
        finally:
            pdfium.FPDF_CloseDocument(document)
    # The image shares the bitmap's buffer (mode L, packed rows): no copy.
    image = Image.frombuffer("L", (size.width, size.height), pixels, "raw", "L", 0, 1)
    image.info["dpi"] = (float(dpi), float(dpi))
    return image, size


def _open(data: bytes) -> Any:
    """The PDFium document of `data` (close it with FPDF_CloseDocument); the lock is held."""
    document = pdfium.FPDF_LoadMemDocument64(data, len(data), None)
    if not document:
        error = pdfium.FPDF_GetLastError()
        if error == pdfium.FPDF_ERR_PASSWORD:
            raise InvalidImageError(
                "the PDF is password-protected: send it without a password (decrypted)"
            )
        if error == pdfium.FPDF_ERR_SECURITY:
            raise InvalidImageError(
                "the PDF is encrypted with a security handler this server cannot read: send it "
                "decrypted"
            )
        raise InvalidImageError("the PDF is damaged, truncated or not a PDF")
    return document


def _measure(document: Any, page: int, dpi: int, limits: DecodeLimits) -> PdfPageSize:
    pages = pdfium.FPDF_GetPageCount(document)
    if pages < 1:
        raise InvalidImageError("the PDF has no pages")
    if pages > limits.max_frames:
        raise InvalidImageError(
            f"the PDF holds {pages} pages; the limit is {limits.max_frames}: send fewer pages"
        )
    if page > pages:
        raise InvalidImageError(
            f"page {page} was asked for; the PDF has {pages} page{'s' if pages > 1 else ''}"
        )
    found = pdfium.FS_SIZEF()
    # From the page tree alone (MediaBox, CropBox, Rotate): the page's content is not parsed.
    if not pdfium.FPDF_GetPageSizeByIndexF(document, page - 1, found):
        raise InvalidImageError(f"page {page} of the PDF is damaged")
    width_pt, height_pt = float(found.width), float(found.height)
    if not (
        math.isfinite(width_pt) and math.isfinite(height_pt) and width_pt > 0 and height_pt > 0
    ):
        raise InvalidImageError(f"page {page} of the PDF has no area")
    scale = dpi / _POINTS_PER_INCH
    # Python ints: a page of 10^30 points (a float PDFium accepts) overflows nothing here.
    width, height = max(1, round(width_pt * scale)), max(1, round(height_pt * scale))
    size = PdfPageSize(pages, page, dpi, width_pt, height_pt, width, height)
    inches = f"{width_pt / _POINTS_PER_INCH:.1f}x{height_pt / _POINTS_PER_INCH:.1f} inches"
    if size.pixels > limits.max_pixels:
        raise InvalidImageError(
            f"page {page} of the PDF is {inches}: at {dpi} dpi that is {width}x{height} pixels; "
            f"the limit is {limits.max_pixels} pixels: "
            + _lower_dpi(width_pt, height_pt, limits.max_pixels)
        )
    if size.bitmap_bytes > limits.max_decoded_bytes:
        raise InvalidImageError(
            f"rendering page {page} of the PDF ({inches}) at {dpi} dpi would take about "
            f"{math.ceil(size.bitmap_bytes / _MIB)} MiB; the limit is "
            f"{limits.max_decoded_bytes // _MIB} MiB: "
            + _lower_dpi(width_pt, height_pt, limits.max_decoded_bytes)
        )
    return size


def _lower_dpi(width_pt: float, height_pt: float, budget: int) -> str:
    """Advice naming the highest dpi whose render fits `budget` (pixels, or bytes: one a pixel)."""
    square_inches = (width_pt / _POINTS_PER_INCH) * (height_pt / _POINTS_PER_INCH)
    fits = math.floor(math.sqrt(budget / square_inches))
    if fits < contract.DPI.minimum:
        return f"the page is too large to read even at {contract.DPI.minimum} dpi"
    return f"send a lower dpi (at most {min(fits, contract.DPI.maximum)})"


def _render(document: Any, size: PdfPageSize, deadline: float | None) -> bytearray:
    """The page drawn into a gray buffer of our own; the lock is held."""
    page = pdfium.FPDF_LoadPage(document, size.page - 1)
    if not page:
        raise InvalidImageError(f"page {size.page} of the PDF is damaged")
    try:
        buffer = bytearray(size.bitmap_bytes)
        # PDFium draws into our buffer (rows packed: stride = width), which Pillow then maps.
        pointer = (ctypes.c_ubyte * len(buffer)).from_buffer(buffer)
        bitmap = pdfium.FPDFBitmap_CreateEx(
            size.width, size.height, pdfium.FPDFBitmap_Gray, pointer, size.width
        )
        if not bitmap:
            raise InvalidImageError(f"page {size.page} of the PDF could not be rendered")
        try:
            pdfium.FPDFBitmap_FillRect(bitmap, 0, 0, size.width, size.height, 0xFFFFFFFF)
            _draw(page, bitmap, size, deadline)
        finally:
            pdfium.FPDFBitmap_Destroy(bitmap)  # the handle only: the buffer is ours
    finally:
        pdfium.FPDF_ClosePage(page)
    return buffer


def _draw(page: Any, bitmap: Any, size: PdfPageSize, deadline: float | None) -> None:
    """Render progressively, pausing (and giving up) once `deadline` has passed."""

    def need_to_pause(_pause: Any) -> bool:
        return deadline is not None and time.perf_counter() >= deadline

    pause = pdfium.IFSDK_PAUSE(version=1)
    pause.NeedToPauseNow = type(pause.NeedToPauseNow)(need_to_pause)
    # FPDF_ANNOT: annotations (stamps, filled-in form text) are part of what a reader sees.
    status = pdfium.FPDF_RenderPageBitmap_Start(
        bitmap, page, 0, 0, size.width, size.height, 0, pdfium.FPDF_ANNOT, pause
    )
    try:
        while status == pdfium.FPDF_RENDER_TOBECONTINUED:
            if need_to_pause(pause):
                raise EngineTimeoutError(
                    f"the request's time ran out while page {size.page} of the PDF was rendered"
                )
            status = pdfium.FPDF_RenderPage_Continue(page, pause)
    finally:
        pdfium.FPDF_RenderPage_Close(page)
    if status != pdfium.FPDF_RENDER_DONE:
        raise InvalidImageError(f"page {size.page} of the PDF could not be rendered")


@dataclass(frozen=True, slots=True)
class PdfWord:
    """A word of a PDF page's own text, with its box in pixels of the page rendered at the dpi
    it was measured for, and the line it is on (counted from 1 in PDFium's text order)."""

    text: str
    left: int
    top: int
    right: int
    bottom: int
    line: int


def page_words(
    data: bytes, page: int, dpi: int, limits: DecodeLimits
) -> tuple[PdfPageSize, list[PdfWord]]:
    """The words of page `page`'s own text (empty for a scanned page without a text layer),
    their boxes mapped to the pixels `render` would draw at `dpi` (the page's /Rotate and crop
    applied the same way), after `measure`'s checks. Words are split at whitespace; a new line
    starts where PDFium's text has a line break."""
    with _PDFIUM:
        document = _open(data)
        try:
            size = _measure(document, page, dpi, limits)
            handle = pdfium.FPDF_LoadPage(document, page - 1)
            if not handle:
                raise InvalidImageError(f"page {page} of the PDF is damaged")
            try:
                return size, _words(handle, size)
            finally:
                pdfium.FPDF_ClosePage(handle)
        finally:
            pdfium.FPDF_CloseDocument(document)


def _words(page: Any, size: PdfPageSize) -> list[PdfWord]:
    """The words of a loaded page; the lock is held."""
    text_page = pdfium.FPDFText_LoadPage(page)
    if not text_page:
        return []
    try:
        count = pdfium.FPDFText_CountChars(text_page)
        words: list[PdfWord] = []
        chars: list[str] = []
        box: list[float] = []
        line = 1
        edges = [ctypes.c_double() for _ in range(4)]
        device = [ctypes.c_int(), ctypes.c_int()]

        def to_device(x: float, y: float) -> tuple[int, int]:
            pdfium.FPDF_PageToDevice(
                page, 0, 0, size.width, size.height, 0, x, y, *(ctypes.byref(d) for d in device)
            )
            return device[0].value, device[1].value

        def close_word() -> None:
            if chars:
                (x0, y0), (x1, y1) = to_device(box[0], box[3]), to_device(box[1], box[2])
                words.append(
                    PdfWord(
                        "".join(chars),
                        max(0, min(x0, x1)),
                        max(0, min(y0, y1)),
                        min(size.width, max(x0, x1)),
                        min(size.height, max(y0, y1)),
                        line,
                    )
                )
                chars.clear()
                box.clear()

        for index in range(count):
            code = pdfium.FPDFText_GetUnicode(text_page, index)
            char = chr(code) if 0 < code < 0x110000 else ""
            if char in ("\r", "\n"):
                close_word()
                if words and words[-1].line == line:
                    line += 1
                continue
            if not char or char.isspace():
                close_word()
                continue
            if not pdfium.FPDFText_GetCharBox(text_page, index, *(ctypes.byref(e) for e in edges)):
                continue
            left, right, bottom, top = (e.value for e in edges)
            if box:
                box[:] = [
                    min(box[0], left),
                    max(box[1], right),
                    min(box[2], bottom),
                    max(box[3], top),
                ]
            else:
                box[:] = [left, right, bottom, top]
            chars.append(char)
        close_word()
        return words
    finally:
        pdfium.FPDFText_ClosePage(text_page)
