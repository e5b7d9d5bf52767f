"""Split an upload into one-page files: the gateway's unit is the document, the model's the page.

The gateway sends one ``ModelInfer`` per page, so each call carries only its own page's bytes
and a document's pages spread over every engine worker and model replica. This module decides
what an upload is from its bytes (never its name) and takes pages out of it:

- **PDF** (``%PDF-`` within the first 1024 bytes, as PDF readers accept it): page *n* becomes a
  one-page PDF holding only the objects that page references, copied by qpdf (pikepdf) without
  decoding or rasterising anything; the page's boxes, ``/Rotate`` and the attributes it inherits
  from the page tree (``/Resources``, ``/MediaBox``, ``/CropBox``, ``/Rotate``) end up on the
  copy, its content streams byte for byte. Password-protected and broken PDFs are refused.
- **TIFF**: frame *n* becomes a single-frame TIFF with the same pixels, mode and resolution
  (Pillow, lossless compression: the frame's own when it is lossless). A one-frame TIFF passes
  through unchanged.
- **Other images** (PNG, JPEG, GIF, BMP, WebP): a one-page document, bytes unchanged.

Bounds come before work: pages are counted only up to ``max_pages`` + 1 (a TIFF's frames by
walking its IFD chain, a PDF's by walking its page tree, never Pillow's or qpdf's full count),
the structures Pillow and qpdf would walk per page are bounded, and a TIFF frame's pixels are
checked before it is decoded. qpdf's process-wide parsing limits (:func:`limit_pdf_parsing`) keep
a small hostile PDF from inflating into gigabytes.

Everything here is synchronous CPU work, split so that the route runs it in a worker thread
without blocking the event loop, one page at a time and only when that page is wanted::

    document = await anyio.to_thread.run_sync(partial(open_document, data, max_pages=...))
    try:
        numbers = select_pages(parse_pages(form_value, max_pages=...), document.page_count)
        for number in numbers:
            page = await anyio.to_thread.run_sync(document.page, number)
            ...  # one ModelInfer with page.data
    finally:
        document.close()

Opening costs milliseconds (a PDF's cross-reference table, a TIFF's IFD chain); each PDF page
costs well under a millisecond plus its bytes, each TIFF frame a decode and a lossless encode.
A :class:`Document` serialises its own calls (neither qpdf nor an open Pillow file may be used
from two threads at once), so pages may be asked for from several threads.
"""

from __future__ import annotations

import abc
import functools
import io
import re
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, Final, Literal, Self, TypeAlias

import pikepdf
import pikepdf.settings
from PIL import Image

from contract.formats import (
    ACCEPTED_DOCUMENT_FORMAT_NAMES,
    ImageFormat,
    sniff_document_format,
    sniff_image_format,
)
from gateway.errors import (
    EmptyFileError,
    EncryptedDocumentError,
    GatewayError,
    InvalidRequestError,
    TooManyPagesError,
    UnreadableDocumentError,
    UnreadablePageError,
    UnsupportedMediaTypeError,
)

# --- the `pages` form field ----------------------------------------------------------------------

#: Every page of the document: the `pages` field was not sent (or is blank).
ALL_PAGES: Final = "all"
PageSelection: TypeAlias = tuple[int, ...] | Literal["all"]
"""Pages to read: 1-based numbers, ascending, each once; or every page."""

#: Longest `pages` value accepted, in characters.
MAX_PAGES_FIELD_CHARS: Final = 256
#: Most comma-separated items (page numbers or ranges) in a `pages` value.
MAX_PAGE_RANGES: Final = 64

_PAGES_SYNTAX: Final = (
    "use page numbers from 1 and ascending ranges, comma-separated, such as 1-3,7"
)
# ASCII digits only: `\d` and int() would also take other scripts' digits.
_PAGE_RANGE = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", re.ASCII)


def parse_pages(value: str | None, *, max_pages: int) -> PageSelection:
    """The pages the `pages` form field asks for, before the document's page count is known.

    ``None`` or a blank value (an empty form input) is every page. Otherwise the value is
    comma-separated page numbers and ascending ranges (``1-3,7``, spaces allowed), 1-based; the
    result is ascending with each page once. A page beyond ``max_pages`` cannot exist in any
    accepted document and is refused here, which also bounds the result's length.

    Raises :class:`InvalidRequestError` naming the field and the expected syntax.
    """
    if value is None or not value.strip():
        return ALL_PAGES
    if len(value) > MAX_PAGES_FIELD_CHARS:
        raise _pages_error(f"at most {MAX_PAGES_FIELD_CHARS} characters; {_PAGES_SYNTAX}")
    items = value.split(",")
    if len(items) > MAX_PAGE_RANGES:
        raise _pages_error(f"at most {MAX_PAGE_RANGES} pages or ranges; {_PAGES_SYNTAX}")
    pages: set[int] = set()
    for item in items:
        match = _PAGE_RANGE.fullmatch(item)
        if match is None:
            shown = item.strip() or "an empty item"
            raise _pages_error(f"{shown!r} is not a page or a range; {_PAGES_SYNTAX}")
        first = int(match[1])
        last = first if match[2] is None else int(match[2])
        if first < 1:
            raise _pages_error(f"pages are numbered from 1; {_PAGES_SYNTAX}")
        if last < first:
            raise _pages_error(f"the range {first}-{last} is not ascending: write {last}-{first}")
        if last > max_pages:
            raise _pages_error(f"page {last} is beyond the limit of {max_pages} pages per document")
        pages.update(range(first, last + 1))
    return tuple(sorted(pages))


def select_pages(selection: PageSelection, page_count: int) -> tuple[int, ...]:
    """The page numbers to read from a document of `page_count` pages.

    Raises :class:`InvalidRequestError` (field `pages`) for a page the document does not have,
    saying how many pages it has.
    """
    if selection == ALL_PAGES:
        return tuple(range(1, page_count + 1))
    missing = [number for number in selection if number > page_count]
    if missing:
        has = f"{page_count} page" if page_count == 1 else f"{page_count} pages"
        raise _pages_error(f"the document has {has}; there is no page {missing[0]}")
    return selection


def _pages_error(reason: str) -> InvalidRequestError:
    return InvalidRequestError(f"pages: {reason}")


# --- documents -----------------------------------------------------------------------------------


class DocumentKind(StrEnum):
    """What an upload is, decided from its bytes."""

    PDF = "pdf"
    TIFF = "tiff"
    IMAGE = "image"
    """A single image (PNG, JPEG, GIF, BMP, WebP): passed through as a one-page document."""


@dataclass(frozen=True, slots=True)
class PageFile:
    """One page of a document as a standalone file the model reads on its own."""

    number: int
    """1-based position of the page in its document."""
    data: bytes
    """The one-page file."""
    media_type: str
    """Its media type, e.g. ``application/pdf``."""


class Document(abc.ABC):
    """An open upload whose pages are taken out one at a time, only when asked for.

    Thread-safe: calls are serialised by the document's own lock. Close it when done (or use it
    as a context manager); a closed document gives no more pages.
    """

    kind: ClassVar[DocumentKind]
    """PDF, TIFF or a single image."""

    def __init__(self, media_type: str, page_count: int) -> None:
        self.media_type = media_type
        """Media type of the upload itself."""
        self.page_count = page_count
        """Pages (PDF pages, TIFF frames; 1 for an image), at most the ``max_pages`` it was
        opened with."""
        self._lock = threading.Lock()
        self._closed = False

    def page(self, number: int) -> PageFile:
        """Page `number` (1-based) as a standalone one-page file.

        Synchronous CPU work (milliseconds for a PDF page; a decode and an encode for a TIFF
        frame): call it in a worker thread. Raises :class:`UnreadablePageError` when this page
        alone cannot be taken out (the document's other pages may still be fine), IndexError
        for a number outside 1..page_count (check with :func:`select_pages` first).
        """
        if not 1 <= number <= self.page_count:
            raise IndexError(f"page {number} of a {self.page_count}-page document")
        with self._lock:
            if self._closed:
                raise RuntimeError("the document is closed")
            return self._page(number)

    def close(self) -> None:
        """Release what the open document holds (its parser, decoded frames); idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @abc.abstractmethod
    def _page(self, number: int) -> PageFile:
        """Page `number`, already checked to exist; called under the lock."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release resources; called once, under the lock."""


def sniff_document_kind(data: bytes) -> DocumentKind | None:
    """What `data` is from its bytes alone, or None when it is no accepted format."""
    image_format = sniff_image_format(data)
    if image_format is not None:
        return DocumentKind.TIFF if image_format.pillow == "TIFF" else DocumentKind.IMAGE
    if sniff_document_format(data) is not None:
        return DocumentKind.PDF
    return None


#: Largest TIFF frame decoded to split it, in pixels: the model's default `max_image_pixels`;
#: a larger frame is one unreadable page (the model would refuse it anyway).
DEFAULT_MAX_FRAME_PIXELS: Final = 40_000_000


def open_document(
    data: bytes, *, max_pages: int, max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
) -> Document:
    """Open the upload `data` as a document and count its pages, up to `max_pages`.

    Synchronous CPU work: call it in a worker thread. Raises :class:`EmptyFileError`,
    :class:`UnsupportedMediaTypeError` (no accepted format), :class:`TooManyPagesError` (more
    than `max_pages`), :class:`EncryptedDocumentError` (a PDF that needs a password) or
    :class:`UnreadableDocumentError` (damaged, truncated, no pages).
    """
    if not data:
        raise EmptyFileError()
    image_format = sniff_image_format(data)
    if image_format is not None and image_format.pillow == "TIFF":
        return _TiffDocument(data, image_format, max_pages, max_frame_pixels)
    if image_format is not None:
        return _ImageDocument(data, image_format)
    document_format = sniff_document_format(data)
    if document_format is not None:
        return _PdfDocument(data, document_format.media_type, max_pages)
    raise UnsupportedMediaTypeError(ACCEPTED_DOCUMENT_FORMAT_NAMES)


class _ImageDocument(Document):
    """A single image: one page, its bytes unchanged."""

    kind = DocumentKind.IMAGE

    def __init__(self, data: bytes, image_format: ImageFormat) -> None:
        super().__init__(image_format.media_type, 1)
        self._data = data

    def _page(self, number: int) -> PageFile:
        return PageFile(number, self._data, self.media_type)

    def _close(self) -> None:
        self._data = b""


# --- PDF -----------------------------------------------------------------------------------------

_MIB: Final = 1024 * 1024
#: qpdf's process-wide limits while the gateway reads PDFs (see :func:`limit_pdf_parsing`).
#: Object and cross-reference streams are inflated to be parsed: a 400 KB PDF can hold an
#: object stream of 200 MB that takes qpdf ~9 s and ~1 GB (measured). Real ones stay below a
#: few MiB, and the gateway decodes no other stream (pages are copied raw).
QPDF_FLATE_MAX_BYTES: Final = 32 * _MIB
#: Items in one array or dictionary (a /Kids array, a /Widths array...).
QPDF_MAX_CONTAINER_ITEMS: Final = 1_000_000
# Not qpdf's `doc_max_warnings`: with it set, qpdf walks every page of the tree as it opens a
# file, before any bound of ours applies.

#: Deepest page tree walked (real ones are a few levels deep).
_MAX_PAGE_TREE_DEPTH: Final = 64
#: Deepest nesting of direct arrays and dictionaries an inherited attribute may have.
_MAX_DIRECT_DEPTH: Final = 32
#: Page attributes a page inherits from its ancestors in the page tree (PDF 32000-1, 7.7.3.4).
_INHERITABLE: Final = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")


@functools.cache
def limit_pdf_parsing() -> None:
    """Apply the ``QPDF_*`` limits above to qpdf, once per process.

    qpdf's limits are process-wide; :func:`open_document` applies them before its first PDF.
    Calling this at start-up, before any thread uses pikepdf, is the tidier order.
    """
    pikepdf.settings.set_qpdf_limits(
        flate_max_memory=QPDF_FLATE_MAX_BYTES,
        parser_max_container_size=QPDF_MAX_CONTAINER_ITEMS,
    )


@dataclass(frozen=True, slots=True)
class _PdfPage:
    """A leaf of the page tree and the attributes it inherits from its ancestors."""

    node: pikepdf.Object
    inherited: Mapping[str, Any]


class _PdfDocument(Document):
    """A PDF: each page copied into a one-page PDF of its own, nothing decoded."""

    kind = DocumentKind.PDF

    def __init__(self, data: bytes, media_type: str, max_pages: int) -> None:
        limit_pdf_parsing()
        self._stream = io.BytesIO(data)
        try:
            # Page attributes are inherited per page when it is split: pushing them all down
            # at open walks every page, however many there are.
            self._pdf = pikepdf.open(self._stream, inherit_page_attributes=False)
        except pikepdf.PasswordError:
            raise EncryptedDocumentError() from None
        except Exception as error:
            raise UnreadableDocumentError(
                "the PDF is damaged or truncated", log_detail=f"PDF not readable: {error}"
            ) from None
        try:
            self._pages = _page_tree(self._pdf, max_pages)
            if not self._pages:
                raise UnreadableDocumentError("the PDF has no pages")
        except GatewayError:
            self._pdf.close()
            raise
        except Exception as error:
            self._pdf.close()
            raise UnreadableDocumentError(
                "its page tree is damaged", log_detail=f"PDF page tree not readable: {error}"
            ) from None
        self._version = self._pdf.pdf_version
        super().__init__(media_type, len(self._pages))

    def _page(self, number: int) -> PageFile:
        page = self._pages[number - 1]
        try:
            with pikepdf.new() as single:
                if page.node.is_indirect:
                    # qpdf copies what the page references but no other page and not its
                    # /Parent: the page tree stays behind.
                    copy = single.copy_foreign(page.node)
                else:  # a direct page dictionary among the kids (invalid, but readers take it)
                    copy = single.make_indirect(_import(single, page.node, without=("/Parent",)))
                for key, value in page.inherited.items():
                    if key not in copy:
                        copy[key] = _import(single, value)
                single.pages.append(pikepdf.Page(copy))
                out = io.BytesIO()
                single.save(
                    out,
                    min_version=self._version,
                    # Streams as they are: no decoding, no recompression, content bytes kept.
                    stream_decode_level=pikepdf.StreamDecodeLevel.none,
                    compress_streams=False,
                    fix_metadata_version=False,
                    # The same page gives the same bytes: the model's result cache can hit.
                    deterministic_id=True,
                )
        except Exception as error:
            raise UnreadablePageError(
                number, "the PDF page is damaged", log_detail=f"PDF page {number}: {error}"
            ) from None
        return PageFile(number, out.getvalue(), self.media_type)

    def _close(self) -> None:
        self._pdf.close()
        self._stream.close()


def _page_tree(pdf: pikepdf.Pdf, max_pages: int) -> list[_PdfPage]:
    """The leaves of `pdf`'s page tree in order, each with what it inherits.

    Refuses more than `max_pages` before walking further: a kid not yet walked counts as at
    least one page (as it does in any real tree), so a /Kids array too long is refused before
    any of it is walked, and the walk visits at most about `max_pages` nodes per level.
    """
    root = pdf.Root.get("/Pages")
    if not isinstance(root, pikepdf.Dictionary) or not isinstance(root.get("/Kids"), pikepdf.Array):
        raise UnreadableDocumentError("the PDF has no page tree")
    pages: list[_PdfPage] = []
    walked: set[tuple[int, int]] = set()
    stack: list[tuple[pikepdf.Object, Mapping[str, Any], int]] = [(root, {}, 0)]
    while stack:
        node, inherited, depth = stack.pop()
        if not isinstance(node, pikepdf.Dictionary):
            continue  # a null or a number among the kids: no page (qpdf drops it too)
        kids = node.get("/Kids")
        if kids is None and node.get("/Type") != pikepdf.Name.Pages:
            pages.append(_PdfPage(node, inherited))
            continue
        if not isinstance(kids, pikepdf.Array):
            continue  # an intermediate node without kids: no pages
        if node.is_indirect:
            if node.objgen in walked:
                raise UnreadableDocumentError("its page tree has a loop")
            walked.add(node.objgen)
        if depth >= _MAX_PAGE_TREE_DEPTH:
            raise UnreadableDocumentError(
                f"its page tree is more than {_MAX_PAGE_TREE_DEPTH} levels deep"
            )
        if len(pages) + len(stack) + len(kids) > max_pages:
            raise TooManyPagesError(max_pages)
        own = {key: node[key] for key in _INHERITABLE if key in node}
        below = {**inherited, **own} if own else inherited
        stack.extend((kid, below, depth + 1) for kid in reversed(list(kids)))
    return pages


def _import(pdf: pikepdf.Pdf, value: Any, *, without: tuple[str, ...] = (), depth: int = 0) -> Any:
    """`value`, an object of another PDF, made usable in `pdf`.

    Indirect objects are copied by qpdf with everything they reference (but no other page);
    direct arrays and dictionaries are rebuilt around their copied items, since pikepdf takes
    no direct container of another PDF. Keys in `without` are left out of a dictionary.
    """
    if depth > _MAX_DIRECT_DEPTH:
        raise ValueError(f"direct objects nested more than {_MAX_DIRECT_DEPTH} deep")
    if not isinstance(value, pikepdf.Object):
        return value  # a number, name or string pikepdf already gave as a Python value
    if isinstance(value, pikepdf.Dictionary) and (without or not value.is_indirect):
        return pikepdf.Dictionary(
            {
                key: _import(pdf, item, depth=depth + 1)
                for key, item in value.items()
                if key not in without
            }
        )
    if value.is_indirect:
        return pdf.copy_foreign(value)
    if isinstance(value, pikepdf.Array):
        return pikepdf.Array([_import(pdf, item, depth=depth + 1) for item in value])
    return value


# --- TIFF ----------------------------------------------------------------------------------------

#: Structural limits on every page counted, far above real files: Pillow reads each tag of a page
#: in Python, and keeps strip offsets and numeric values as Python objects.
#: Tags of one page (real ones carry 10 to 40).
_MAX_TIFF_PAGE_TAGS: Final = 1024
#: Tags over all the pages counted.
_MAX_TIFF_TAGS: Final = 131_072
#: Strips or tiles of one page (an uncompressed 40 MP page in 8 KiB strips has 5 000).
_MAX_TIFF_STRIPS: Final = 65_536
#: Values of any other numeric tag (a 16-bit colour map has 196 608).
_MAX_TIFF_VALUES: Final = 262_144
#: Tags holding the offsets and byte counts of strips or tiles.
_TIFF_STRIP_TAGS: Final = frozenset({273, 279, 324, 325})
#: Field types Pillow reads as bytes or text rather than one number per value.
_TIFF_BYTE_TYPES: Final = frozenset({1, 2, 6, 7})
_TIFF_ORIENTATION: Final = 274
#: Pillow's names of lossless TIFF compressions it can also write, as it writes them.
_LOSSLESS_TIFF: Final = MappingProxyType(
    {
        "raw": "raw",
        "packbits": "packbits",
        "tiff_lzw": "tiff_lzw",
        "tiff_adobe_deflate": "tiff_adobe_deflate",
        "tiff_deflate": "tiff_adobe_deflate",
    }
)
#: Bilevel-only compressions (CCITT), kept for mode "1" frames.
_BILEVEL_TIFF: Final = frozenset({"group3", "group4"})


class _TiffDocument(Document):
    """A TIFF: each frame re-encoded alone, losslessly; a one-frame TIFF passed through."""

    kind = DocumentKind.TIFF

    def __init__(
        self, data: bytes, image_format: ImageFormat, max_pages: int, max_frame_pixels: int
    ) -> None:
        page_count = _count_tiff_pages(data, max_pages)
        if page_count == 0:
            raise UnreadableDocumentError("the TIFF has no readable page")
        self._data = data
        self._max_frame_pixels = max_frame_pixels
        self._image: Image.Image | None = None
        if page_count > 1:
            try:
                self._image = Image.open(io.BytesIO(data), formats=("TIFF",))
            except Image.DecompressionBombError:
                raise UnreadableDocumentError(
                    "its first frame has too many pixels to decode"
                ) from None
            except Exception as error:
                raise UnreadableDocumentError(
                    "the TIFF is damaged", log_detail=f"TIFF not readable: {error}"
                ) from None
        super().__init__(image_format.media_type, page_count)

    def _page(self, number: int) -> PageFile:
        if self._image is None:
            return PageFile(number, self._data, self.media_type)
        try:
            self._image.seek(number - 1)
            width, height = self._image.size
            if width * height > self._max_frame_pixels:
                raise UnreadablePageError(
                    number,
                    f"the frame is {width}x{height} pixels; the limit is "
                    f"{self._max_frame_pixels} pixels",
                )
            data = _single_frame_tiff(self._image)
        except GatewayError:
            raise
        except Exception as error:
            raise UnreadablePageError(
                number, "the TIFF frame is damaged", log_detail=f"TIFF frame {number}: {error}"
            ) from None
        return PageFile(number, data, self.media_type)

    def _close(self) -> None:
        if self._image is not None:
            self._image.close()


def _single_frame_tiff(image: Image.Image) -> bytes:
    """The current frame of `image` alone, as a TIFF with the same pixels, mode and resolution.

    Saved from a copy: Pillow's TIFF writer would otherwise carry every tag of the source frame
    over (tiling, predictor, JPEG tables...), some of which contradict the new encoding.
    """
    compression = str(image.info.get("compression"))
    if image.mode == "1":
        keep = compression in _BILEVEL_TIFF or compression in _LOSSLESS_TIFF
        compression = _LOSSLESS_TIFF.get(compression, compression) if keep else "group4"
    else:
        compression = _LOSSLESS_TIFF.get(compression, "tiff_adobe_deflate")
    params: dict[str, Any] = {"compression": compression}
    if "dpi" in image.info:
        params["dpi"] = image.info["dpi"]
    elif "resolution" in image.info:  # resolution without a unit
        params["resolution"] = image.info["resolution"]
        params["resolution_unit"] = 1
    if icc := image.info.get("icc_profile"):
        params["icc_profile"] = icc
    with image.copy() as frame:
        # Pillow turns a frame upright as it decodes it and then drops its orientation tag; a
        # tag still there was not applied, and the model applies it.
        tags = getattr(image, "tag_v2", {})
        if _TIFF_ORIENTATION in tags:
            params["tiffinfo"] = {_TIFF_ORIENTATION: tags[_TIFF_ORIENTATION]}
        out = io.BytesIO()
        frame.save(out, format="TIFF", **params)
    return out.getvalue()


def _count_tiff_pages(data: bytes, limit: int) -> int:
    """Pages (IFDs) of the classic TIFF `data`, walked only up to `limit` + 1.

    Pillow's own count reads every page's tags in Python: 150 000 tiny pages would take it
    minutes. Each page walked is checked as Pillow will read it when that page is split. An IFD
    that runs past the end stops the count there; a repeated one ends the chain, as in Pillow.
    """
    order = "<" if data[:2] == b"II" else ">"
    pages = tags = 0
    seen: set[int] = set()
    try:
        (ifd,) = struct.unpack_from(order + "I", data, 4)
        while ifd and ifd not in seen:
            if pages == limit:
                raise TooManyPagesError(limit)
            seen.add(ifd)
            (entries,) = struct.unpack_from(order + "H", data, ifd)
            tags += entries
            if entries > _MAX_TIFF_PAGE_TAGS or tags > _MAX_TIFF_TAGS:
                raise UnreadableDocumentError(
                    f"page {pages + 1} of the TIFF has {entries} tags (the limit is "
                    f"{_MAX_TIFF_PAGE_TAGS}, and {_MAX_TIFF_TAGS} over all pages)"
                )
            for tag, kind, count in struct.iter_unpack(
                order + "HHI4x", data[ifd + 2 : ifd + 2 + 12 * entries]
            ):
                if tag in _TIFF_STRIP_TAGS and count > _MAX_TIFF_STRIPS:
                    raise UnreadableDocumentError(
                        f"page {pages + 1} of the TIFF has {count} strips or tiles; "
                        f"the limit is {_MAX_TIFF_STRIPS}"
                    )
                if kind not in _TIFF_BYTE_TYPES and count > _MAX_TIFF_VALUES:
                    raise UnreadableDocumentError(
                        f"page {pages + 1} of the TIFF has a tag of {count} values; "
                        f"the limit is {_MAX_TIFF_VALUES}"
                    )
            (ifd,) = struct.unpack_from(order + "I", data, ifd + 2 + 12 * entries)
            pages += 1
    except struct.error:
        pass  # this IFD runs past the end: the pages before it are the document
    return pages
