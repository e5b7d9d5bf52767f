"""One document out of per-page model outputs: text, hOCR, TSV, ALTO and searchable PDF.

The page is the model's unit and the document the gateway's: the gateway sends each page of an
upload to the model on its own (one `ModelInfer` per page, several at once) and gets back one
output per page, each a complete one-page document written as if that page were the whole file
(page number 1, ids `page_1`, `word_1_15`, ...). The functions here join those outputs, in page
order, into the one document the client asked for, renumbering whatever the page's place in the
document changes (`page_num`, ids, `ppageno`, `PHYSICAL_IMG_NR`) so the result reads as if the
model's writers had been given every page at once.

A page the model did not read (its call failed) keeps its place in the document, so page
numbers and counts stay true: text gets an empty page (the `\\f` separators still count pages);
hOCR an empty `ocr_page` and ALTO an empty `Page` of the page's size when the caller knows it
(without a size otherwise: both formats allow it); TSV only its page-level row (width and height
0 when unknown); a PDF made from images the page image itself, unresampled and without text,
when the caller passes it as `PageOutput.fallback` (the page is left out when it does not); a
PDF grafted onto an original PDF the original page as it was.

Everything here is pure: bytes in, bytes out, no I/O and no web or gRPC imports, so the
functions can run in a worker thread and be tested alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass
from typing import Final

import pikepdf
from lxml import etree
from pikepdf import Array, Dictionary, Name
from PIL import Image

from contract.output_formats import (
    ALTO_XML,
    HOCR_DOCUMENT,
    SEARCHABLE_PDF,
    TEXT_PLAIN,
    TSV_COLUMNS,
    TSV_TABLE,
)

__all__ = [
    "PageImage",
    "PageOutput",
    "assemble",
    "assemble_alto",
    "assemble_hocr",
    "assemble_text",
    "assemble_tsv",
    "graft_pdf",
    "merge_pdf",
]

#: What separates the pages of a text answer (as Tesseract's own page separator).
PAGE_SEPARATOR: Final = b"\f"
#: Tesseract's TSV columns, the header used when no page produced one.
TSV_HEADER: Final = TSV_COLUMNS
#: Resolution assumed for a fallback page image that declares none (as the model assumes).
DEFAULT_DPI: Final = 300.0
#: zlib level of fallback page images: zlib's default balance of size and time.
IMAGE_COMPRESSION: Final = 6

XHTML_NS: Final = "http://www.w3.org/1999/xhtml"
ALTO_NS: Final = "http://www.loc.gov/standards/alto/ns-v4#"
XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"
_XHTML_DOCTYPE: Final = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">'
)
_PLATFORM: Final = "ocr-platform"


@dataclass(frozen=True, slots=True)
class PageImage:
    """A page's image as uploaded (a TIFF frame, a PNG, a JPEG...) and its resolution."""

    data: bytes
    dpi: float | None = None
    """Dots per inch; None: the image's own, else 300."""


@dataclass(frozen=True, slots=True)
class PageOutput:
    """What the model returned for one page of the document.

    `number` is the page's number in the document (from 1). `data` is the model's output for
    the asked format (UTF-8 text, hOCR, TSV or ALTO; a one-page PDF, text-only when it is to be
    grafted onto an original PDF), or None when the page failed. `width` and `height` are the
    page's size in pixels as read (for a PDF page: its visible size at the dpi it is rendered
    at); they size the empty page a failed page leaves. `rotation` is the clockwise turn (0, 90,
    180, 270) the model applied to set the page upright (the page facts' `rotation`): the graft
    undoes it. `fallback` is the page image a PDF made from images shows when the page failed.
    """

    number: int
    data: bytes | None
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    fallback: PageImage | None = None


def _in_order(pages: Iterable[PageOutput]) -> list[PageOutput]:
    """`pages` by number (they arrive as their calls complete); each number once."""
    ordered = sorted(pages, key=lambda page: page.number)
    numbers = [page.number for page in ordered]
    if numbers and numbers[0] < 1:
        raise ValueError(f"page numbers count from 1, not {numbers[0]}")
    if len(set(numbers)) != len(numbers):
        raise ValueError("a page number appears twice")
    return ordered


# --- text ----------------------------------------------------------------------------------


def assemble_text(pages: Iterable[PageOutput]) -> bytes:
    """The pages' texts (UTF-8) joined by a form feed; a failed page is an empty page."""
    return PAGE_SEPARATOR.join(page.data or b"" for page in _in_order(pages))


# --- TSV -----------------------------------------------------------------------------------


def assemble_tsv(pages: Iterable[PageOutput]) -> bytes:
    """One TSV table: one header row, then each page's rows with `page_num` set to its number.

    A failed page gets its page-level row alone (level 1), sized by `width`/`height` (0 when
    unknown), as Tesseract writes a page on which it found nothing.
    """
    header: str | None = None
    rows: list[str] = []
    for page in _in_order(pages):
        if page.data is None:
            size = (page.width or 0, page.height or 0)
            rows.append("\t".join(map(str, (1, page.number, 0, 0, 0, 0, 0, 0, *size, -1, ""))))
            continue
        lines = page.data.decode("utf-8").splitlines()
        if lines and lines[0].startswith("level\t"):
            header = header or lines[0]
            lines = lines[1:]
        for line in lines:
            if not line:
                continue
            columns = line.split("\t")  # text never holds a tab: Tesseract replaces them
            if len(columns) < 2:
                raise ValueError(f"page {page.number}: a TSV row without page_num: {line!r}")
            columns[1] = str(page.number)
            rows.append("\t".join(columns))
    return "\n".join([header or "\t".join(TSV_HEADER), *rows, ""]).encode("utf-8")


# --- ids: a page's ids renumbered for its place in the document ----------------------------

#: An id the model's writers (and Tesseract's) make: kind, page number, counters on the page.
_NUMBERED_ID = re.compile(r"(?P<kind>[A-Za-z][\w.-]*?)_(?P<page>\d+)(?P<rest>(?:_\d+)*)")


class _Ids:
    """The ids of one document: each page's ids renamed once, none given twice."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def reserve(self, ident: str) -> None:
        self.used.add(ident)

    def renumber(self, old: str, source: int | None, number: int) -> str:
        """The new id of `old`, an id of the page numbered `source` in its own output, now
        page `number`: `word_1_15` becomes `word_3_15`; an id of another shape gets a page
        prefix (`p3_<old>`). A clash with an id already given gets a suffix."""
        match = _NUMBERED_ID.fullmatch(old)
        if match is not None and source is not None and int(match["page"]) == source:
            new = f"{match['kind']}_{number}{match['rest']}"
        else:
            new = f"p{number}_{old}"
        candidate, suffix = new, 1
        while candidate in self.used:
            suffix += 1
            candidate = f"{new}_{suffix}"
        self.used.add(candidate)
        return candidate


def _localname(node: etree._Element) -> str:
    """An element's name without its namespace; "" for a comment or processing instruction."""
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _parse_xml(data: bytes, what: str, number: int) -> etree._Element:
    """A page's XML output, parsed without entities or network (whitespace between elements
    dropped: the document is indented again as a whole)."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, remove_blank_text=True, huge_tree=False
    )
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise ValueError(f"page {number}: the model's {what} is not well-formed: {error}") from None


# --- hOCR ----------------------------------------------------------------------------------

_PPAGENO = re.compile(r"(^|;)(\s*)ppageno\s+\d+")
_IMAGE_PROPERTY = re.compile(r'(^|;)(\s*)image\s+"([^"]*)"')
_PAGE_NUMBER_ID = re.compile(r"page_(\d+)")


#: HTML elements written without an end tag; every other element keeps its end tag.
_VOID: Final = frozenset({"area", "base", "br", "col", "hr", "img", "input", "link", "meta"})


def _x(tag: str) -> str:
    return f"{{{XHTML_NS}}}{tag}"


def _classes(element: etree._Element) -> list[str]:
    return str(element.get("class") or "").split()


def _hocr_source_page(page_div: etree._Element) -> int | None:
    """The number the page had in its own output: from its id `page_<n>`, else `ppageno`."""
    match = _PAGE_NUMBER_ID.fullmatch(str(page_div.get("id") or ""))
    if match is not None:
        return int(match[1])
    ppageno = re.search(r"(?:^|;)\s*ppageno\s+(\d+)", str(page_div.get("title") or ""))
    return int(ppageno[1]) + 1 if ppageno is not None else None


def _hocr_title(title: str, source: int | None, number: int) -> str:
    """`title` with `ppageno` the page's index in the document (from 0); the `image` name too
    when it was the page's number (the model's writer names the image by its page number)."""
    title = _PPAGENO.sub(lambda m: f"{m[1]}{m[2]}ppageno {number - 1}", title)

    def image(match: re.Match[str]) -> str:
        name = str(number) if source is not None and match[3] == str(source) else match[3]
        return f'{match[1]}{match[2]}image "{name}"'

    return _IMAGE_PROPERTY.sub(image, title)


def _hocr_skeleton() -> etree._Element:
    """The head of an hOCR document when no page was read (nothing to take it from)."""
    html = etree.Element(_x("html"), nsmap={None: XHTML_NS})
    head = etree.SubElement(html, _x("head"))
    etree.SubElement(head, _x("title")).text = ""
    etree.SubElement(
        head, _x("meta"), {"http-equiv": "Content-Type", "content": "text/html;charset=utf-8"}
    )
    etree.SubElement(head, _x("meta"), {"name": "ocr-system", "content": _PLATFORM})
    etree.SubElement(head, _x("meta"), {"name": "ocr-capabilities", "content": "ocr_page"})
    etree.SubElement(html, _x("body"))
    return html


def assemble_hocr(pages: Iterable[PageOutput]) -> bytes:
    """One hOCR document: the first read page's head (`ocr-system`, `ocr-capabilities`), then
    each page's `ocr_page` in order.

    Every element id is renumbered for the page's place (`page_3`, `word_3_15`; an id of
    another shape gets a `p3_` prefix) so ids are unique in the document; `ppageno` is the
    page's index in the document (from 0). A failed page is an empty `ocr_page`, with a `bbox`
    when its size is known.
    """
    ordered = _in_order(pages)
    first = next((page for page in ordered if page.data is not None), None)
    if first is not None and first.data is not None:
        parsed = _parse_xml(first.data, "hOCR", first.number)
        doctype = parsed.getroottree().docinfo.doctype or None
        # A copy, without the parsed DTD: with it libxml2 would write in its XHTML mode (and
        # add a Content-Type meta of its own).
        html = deepcopy(parsed)
        namespace = etree.QName(html).namespace
    else:
        html, doctype, namespace = _hocr_skeleton(), _XHTML_DOCTYPE, XHTML_NS
    tag = (lambda name: f"{{{namespace}}}{name}") if namespace else (lambda name: name)
    body = html.find(tag("body"))
    if body is None:
        raise ValueError(f"page {first.number if first else 0}: the hOCR has no body")
    for child in list(body):
        body.remove(child)
    ids = _Ids()
    for element in html.iter():
        if element.get("id") is not None:
            ids.reserve(str(element.get("id")))
    for page in ordered:
        if page.data is None:
            title = f"ppageno {page.number - 1}"
            if page.width is not None and page.height is not None:
                title = f"bbox 0 0 {page.width} {page.height}; {title}"
            attributes = {"class": "ocr_page", "id": ids.renumber("page_1", 1, page.number)}
            etree.SubElement(body, tag("div"), {**attributes, "title": title})
            continue
        page_body = _parse_xml(page.data, "hOCR", page.number).find(tag("body"))
        if page_body is None:
            raise ValueError(f"page {page.number}: the hOCR has no body")
        for child in list(page_body):
            _hocr_renumber(child, ids, page.number)
            body.append(child)
    for element in html.iter(etree.Element):
        if len(element) == 0 and element.text is None and _localname(element) not in _VOID:
            element.text = ""  # <div></div>, not <div/>: HTML parsers read hOCR too
    etree.indent(html, space=" ")
    document: bytes = etree.tostring(
        html, xml_declaration=True, encoding="UTF-8", doctype=doctype, pretty_print=True
    )
    return document


def _hocr_renumber(top: etree._Element, ids: _Ids, number: int) -> None:
    """Renumber the ids and page properties of one page's body element (an `ocr_page`)."""
    page_divs = [top] if "ocr_page" in _classes(top) else []
    page_divs += [e for e in top.iterdescendants() if "ocr_page" in _classes(e)]
    source = _hocr_source_page(page_divs[0]) if page_divs else None
    for element in top.iter():
        old = element.get("id")
        if old is not None:
            element.set("id", ids.renumber(str(old), source, number))
    for page_div in page_divs:
        title = page_div.get("title")
        if title is not None:
            page_div.set("title", _hocr_title(str(title), source, number))


# --- ALTO ----------------------------------------------------------------------------------

#: Attributes holding references (IDREF or IDREFS) to ids of the document, in ALTO 4.
_ALTO_REFERENCES: Final = ("REF", "TAGREFS", "STYLEREFS", "PROCESSINGREFS", "PROCESSING", "IDNEXT")
#: Schema order of the children of `alto`, `Description` and `Styles`.
_ALTO_ORDER: Final = ("Description", "Styles", "Tags", "ReadingOrder", "Layout")
_DESCRIPTION_ORDER: Final = ("MeasurementUnit", "sourceImageInformation", "OCRProcessing")
_STYLES_ORDER: Final = ("TextStyle", "ParagraphStyle")


def _content_key(element: etree._Element) -> bytes:
    """What an element says, its own ID aside: two equal keys are the same style or step."""
    copy = deepcopy(element)
    copy.attrib.pop("ID", None)
    return etree.tostring(copy, method="c14n")


def _insert_in_order(parent: etree._Element, element: etree._Element, order: Sequence[str]) -> None:
    """Add `element` after the last child its schema sequence puts before or with it."""
    rank = {name: index for index, name in enumerate(order)}
    own = rank.get(_localname(element), len(order))
    position = 0
    for index, child in enumerate(parent):
        if rank.get(_localname(child), len(order)) <= own:
            position = index + 1
    parent.insert(position, element)


class _Shared:
    """Document-level ALTO elements (processing steps, styles, tags), kept once each."""

    def __init__(self, parent: etree._Element, order: Sequence[str], ids: _Ids) -> None:
        self.parent, self.order, self.ids = parent, order, ids
        self.by_content = {_content_key(c): str(c.get("ID")) for c in parent if c.get("ID")}

    def add(
        self, element: etree._Element, number: int, mapping: dict[str, str], *, keep: bool
    ) -> etree._Element | None:
        """Map `element`'s ID to an equal element's already here, else add it, renamed unless
        `keep` (the first page's IDs are kept) and return it: its own references are remapped
        once the page's mapping is complete."""
        old = element.get("ID")
        if old is None:
            return None
        key = _content_key(element)
        if key in self.by_content:
            mapping[str(old)] = self.by_content[key]
            return None
        if keep and str(old) not in self.ids.used:
            new = str(old)
            self.ids.reserve(new)
        else:
            new = self.ids.renumber(str(old), None, number)
        mapping[str(old)] = new
        element.set("ID", new)
        self.by_content[key] = new
        _insert_in_order(self.parent, element, self.order)
        return element


def _remap(element: etree._Element, mapping: Mapping[str, str], *, deep: bool = True) -> None:
    """Point every ALTO reference of `element` (and under it, when `deep`) at the renamed ids."""
    for node in element.iter() if deep else [element]:
        for name in _ALTO_REFERENCES:
            value = node.get(name)
            if value is not None:
                node.set(name, " ".join(mapping.get(ref, ref) for ref in str(value).split()))


def _alto_skeleton() -> etree._Element:
    """An ALTO 4.4 root with the Description it requires, when no page was read."""
    root = etree.Element(f"{{{ALTO_NS}}}alto", nsmap={None: ALTO_NS, "xsi": XSI_NS})
    root.set("SCHEMAVERSION", "4.4")
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{ALTO_NS} http://www.loc.gov/alto/v4/alto-4-4.xsd")
    description = etree.SubElement(root, f"{{{ALTO_NS}}}Description")
    etree.SubElement(description, f"{{{ALTO_NS}}}MeasurementUnit").text = "pixel"
    return root


def _alto_source_page(page: etree._Element) -> int | None:
    match = _PAGE_NUMBER_ID.fullmatch(str(page.get("ID") or ""))
    if match is not None:
        return int(match[1])
    with contextlib.suppress(TypeError, ValueError):
        return int(float(str(page.get("PHYSICAL_IMG_NR"))))
    return None


def assemble_alto(pages: Iterable[PageOutput]) -> bytes:
    """One ALTO document: the first read page's Description, one `Page` per page in `Layout`.

    IDs are xsd:IDs, unique in the document: every ID is renumbered for its page's place
    (`page_3`, `string_3_15`) and every reference to it (REF, TAGREFS, STYLEREFS,
    PROCESSINGREFS, PROCESSING, IDNEXT) follows. Processing steps, styles and tags of later
    pages are kept once: one equal to an earlier one is merged into it, another is added
    renamed. Reading orders are joined. `PHYSICAL_IMG_NR` is the page's number. A failed page
    is an empty `Page` (with its `PrintSpace` and size when the size is known).
    """
    ordered = _in_order(pages)
    first = next((page for page in ordered if page.data is not None), None)
    source_root = (
        _parse_xml(first.data, "ALTO", first.number)
        if first is not None and first.data is not None
        else _alto_skeleton()
    )
    namespace = etree.QName(source_root).namespace or ""

    def tag(name: str) -> str:
        return f"{{{namespace}}}{name}" if namespace else name

    ids = _Ids()
    root = etree.Element(source_root.tag, dict(source_root.attrib), nsmap=source_root.nsmap)
    description = source_root.find(tag("Description"))
    if description is None:
        description = etree.Element(tag("Description"))
        etree.SubElement(description, tag("MeasurementUnit")).text = "pixel"
    root.append(description)
    for element in description.iter():
        if element.get("ID") is not None:
            ids.reserve(str(element.get("ID")))
    steps = _Shared(description, _DESCRIPTION_ORDER, ids)
    styles = _Shared(etree.Element(tag("Styles")), _STYLES_ORDER, ids)
    tags = _Shared(etree.Element(tag("Tags")), (), ids)
    reading_order = etree.Element(tag("ReadingOrder"))
    source_layout = source_root.find(tag("Layout"))
    layout = etree.Element(
        tag("Layout"), dict(source_layout.attrib) if source_layout is not None else {}
    )

    for page in ordered:
        if page.data is None:
            layout.append(_alto_empty_page(tag, ids, page))
            continue
        page_root = source_root if page is first else _parse_xml(page.data, "ALTO", page.number)
        mapping: dict[str, str] = {}
        added: list[etree._Element | None] = []
        page_description = page_root.find(tag("Description"))
        if page is not first and page_description is not None:
            steps_here = list(page_description)
            added += [steps.add(s, page.number, mapping, keep=False) for s in steps_here]
        for shared, name in ((styles, "Styles"), (tags, "Tags")):
            container = page_root.find(tag(name))
            children = list(container) if container is not None else []
            keep = page is first
            added += [shared.add(c, page.number, mapping, keep=keep) for c in children]
        page_layout = page_root.find(tag("Layout"))
        page_elements = list(page_layout) if page_layout is not None else []
        groups = page_root.find(tag("ReadingOrder"))
        group_elements = list(groups) if groups is not None else []
        page_ids = [e for e in page_elements if _localname(e) == "Page"]
        source = _alto_source_page(page_ids[0]) if page_ids else None
        for top in page_elements + group_elements:
            for element in top.iter():
                old = element.get("ID")
                if old is not None:
                    mapping[str(old)] = ids.renumber(str(old), source, page.number)
                    element.set("ID", mapping[str(old)])
        for element in page_elements:
            if _localname(element) == "Page":
                element.set("PHYSICAL_IMG_NR", str(page.number))
            _remap(element, mapping)
            layout.append(element)
        for group in group_elements:
            _remap(group, mapping)
            reading_order.append(group)
        for new_shared in added:
            if new_shared is not None:
                _remap(new_shared, mapping)
        if page is first:
            _remap(layout, mapping, deep=False)  # the Layout's own STYLEREFS
    for container in (styles.parent, tags.parent, reading_order, layout):
        if len(container) or container is layout:
            _insert_in_order(root, container, _ALTO_ORDER)
    etree.indent(root, space=" ")
    document: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return document


def _alto_empty_page(tag: Callable[[str], str], ids: _Ids, page: PageOutput) -> etree._Element:
    element = etree.Element(tag("Page"))
    element.set("ID", ids.renumber("page_1", 1, page.number))
    element.set("PHYSICAL_IMG_NR", str(page.number))
    if page.width is not None and page.height is not None:
        width, height = str(page.width), str(page.height)
        element.set("WIDTH", width)
        element.set("HEIGHT", height)
        space = etree.SubElement(element, tag("PrintSpace"))
        for name, value in (("HPOS", "0"), ("VPOS", "0"), ("WIDTH", width), ("HEIGHT", height)):
            space.set(name, value)
    return element


# --- PDF: shared pieces --------------------------------------------------------------------


def _open_pdf(data: bytes, stack: contextlib.ExitStack, what: str) -> pikepdf.Pdf:
    """Open a PDF for the length of `stack`: objects copied out of it are read at save time."""
    try:
        return stack.enter_context(pikepdf.open(io.BytesIO(data)))
    except pikepdf.PdfError as error:
        raise ValueError(f"{what} is not a readable PDF: {error}") from None


class _FontStreams:
    """Font programs and maps, one object per distinct content in the output.

    Each of the model's one-page PDFs embeds the same glyphless font; 100 pages would carry 100
    copies. Streams equal in their bytes and dictionary are kept once.
    """

    _KEYS: Final = ("/FontFile", "/FontFile2", "/FontFile3", "/CIDToGIDMap")

    def __init__(self) -> None:
        self.seen: dict[bytes, pikepdf.Object] = {}

    def _one(self, stream: pikepdf.Object) -> pikepdf.Object:
        if not isinstance(stream, pikepdf.Stream):
            return stream
        digest = hashlib.sha256(stream.read_raw_bytes())
        for key in sorted(stream.keys()):
            if key != "/Length":
                digest.update(f"{key}={stream[key]!r}".encode())
        return self.seen.setdefault(digest.digest(), stream)

    def share(self, resources: pikepdf.Object | None) -> None:
        """Replace the font streams under `resources` by equal ones met before."""
        fonts = resources.get("/Font") if isinstance(resources, Dictionary) else None
        if not isinstance(fonts, Dictionary):
            return
        for font in fonts.values():
            if not isinstance(font, Dictionary):
                continue
            if "/ToUnicode" in font:
                font.ToUnicode = self._one(font.ToUnicode)
            parts = [font, *(font.get("/DescendantFonts") or [])]
            for part in parts:
                if not isinstance(part, Dictionary):
                    continue
                if "/CIDToGIDMap" in part:
                    part.CIDToGIDMap = self._one(part.CIDToGIDMap)
                descriptor = part.get("/FontDescriptor")
                if isinstance(descriptor, Dictionary):
                    for key in self._KEYS[:3]:
                        if key in descriptor:
                            descriptor[key] = self._one(descriptor[key])


def _num(value: float) -> str:
    """A PDF number: at most 4 decimals, no exponent, no negative zero."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _save(pdf: pikepdf.Pdf, min_version: str = "") -> bytes:
    out = io.BytesIO()
    # Every stream is written as it is: none decoded, none (re)compressed; qpdf would otherwise
    # re-encode streams under ASCII or LZW filters (and compress those without a filter) as
    # Flate. The writer drops objects nothing refers to any more.
    pdf.save(
        out,
        compress_streams=False,
        stream_decode_level=pikepdf.StreamDecodeLevel.none,
        min_version=min_version,
        deterministic_id=True,
    )
    return out.getvalue()


# --- PDF from images -----------------------------------------------------------------------


def merge_pdf(pages: Iterable[PageOutput]) -> bytes:
    """One PDF of the model's one-page searchable PDFs, in order, each page as it came (its
    image stream byte for byte; the glyphless font kept once).

    A failed page with a `fallback` image is that image alone, unresampled, on a page of its
    size at its resolution (JPEG passed through, other images as Flate of their pixels); a
    failed page without one is left out. The first read page's document info is kept.
    """
    ordered = _in_order(pages)
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(pikepdf.new())
        fonts = _FontStreams()
        versions = ["1.4"]
        docinfo_done = False
        for page in ordered:
            if page.data is None:
                if page.fallback is not None:
                    out.pages.append(pikepdf.Page(_image_page(out, page.fallback, page.number)))
                continue
            source = _open_pdf(page.data, stack, f"page {page.number}'s PDF")
            versions.append(source.pdf_version)
            if not docinfo_done:
                for key, value in source.docinfo.items():
                    out.docinfo[key] = value
                docinfo_done = True
            for source_page in source.pages:
                out.pages.append(source_page)
                fonts.share(out.pages[-1].obj.get("/Resources"))
        return _save(out, max(versions, key=_version_key))


def _version_key(version: str) -> tuple[int, ...]:
    with contextlib.suppress(ValueError):
        return tuple(int(part) for part in version.split("."))
    return (0,)


def _image_page(pdf: pikepdf.Pdf, fallback: PageImage, number: int) -> Dictionary:
    """A page showing `fallback` full-page, pixel for pixel, sized by its resolution."""
    try:
        image = Image.open(io.BytesIO(fallback.data))
        image.seek(0)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"page {number}'s fallback image is not readable: {error}") from None
    with image:
        stream = _image_xobject(pdf, image, fallback.data)
        dpi = fallback.dpi or _declared_dpi(image) or DEFAULT_DPI
        width, height = image.width * 72 / dpi, image.height * 72 / dpi
    content = f"q {_num(width)} 0 0 {_num(height)} 0 0 cm /Im1 Do Q\n".encode("ascii")
    return Dictionary(
        Type=Name.Page,
        MediaBox=Array([0, 0, round(width, 4), round(height, 4)]),
        Resources=Dictionary(XObject=Dictionary(Im1=stream)),
        Contents=pikepdf.Stream(pdf, content),
    )


def _declared_dpi(image: Image.Image) -> float | None:
    dpi = image.info.get("dpi")
    if not isinstance(dpi, tuple) or not dpi:
        return None
    with contextlib.suppress(TypeError, ValueError):
        value = float(dpi[0])
        return value if value > 0 else None
    return None


#: Pillow modes a PDF image holds as they are: colour space, bits per component, raw mode.
_LOSSLESS_MODES: Final[Mapping[str, tuple[Name, int, str]]] = {
    "1": (Name.DeviceGray, 1, "1"),
    "L": (Name.DeviceGray, 8, "L"),
    "I;16": (Name.DeviceGray, 16, "I;16B"),  # PDF samples are big-endian
    "I;16B": (Name.DeviceGray, 16, "I;16B"),
    "RGB": (Name.DeviceRGB, 8, "RGB"),
    "CMYK": (Name.DeviceCMYK, 8, "CMYK"),
}


def _image_xobject(pdf: pikepdf.Pdf, image: Image.Image, data: bytes) -> pikepdf.Stream:
    """`image` as an image XObject: a JPEG's own bytes (DCTDecode), else Flate of its pixels
    (a mode PDF has no colour space for is converted: palette to RGB, alpha onto white)."""
    if image.format == "JPEG" and image.mode in ("L", "RGB", "CMYK"):
        stream = pikepdf.Stream(pdf, data)
        stream.Filter = Name.DCTDecode
        space, bits = _LOSSLESS_MODES[image.mode][:2]
        if image.mode == "CMYK" and "adobe" in image.info:
            stream.Decode = Array([1, 0] * 4)  # Adobe's CMYK JPEGs store inverted samples
    else:
        if image.mode not in _LOSSLESS_MODES:
            if "A" in image.mode or "a" in image.mode or "transparency" in image.info:
                rgba = image.convert("RGBA")
                flat = Image.new("RGB", image.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba)
                image = flat
            else:
                image = image.convert("RGB" if image.mode in ("P", "YCbCr", "LAB", "HSV") else "L")
        space, bits, raw_mode = _LOSSLESS_MODES[image.mode]
        stream = pikepdf.Stream(pdf, b"")
        pixels = image.tobytes("raw", raw_mode)
        stream.write(zlib.compress(pixels, IMAGE_COMPRESSION), filter=Name.FlateDecode)
    stream.Type = Name.XObject
    stream.Subtype = Name.Image
    stream.Width = image.width
    stream.Height = image.height
    stream.ColorSpace = space
    stream.BitsPerComponent = bits
    return stream


# --- PDF grafted onto the original PDF -----------------------------------------------------

#: Per clockwise turn of the page (its /Rotate plus the model's own turn), how the text page's
#: axes (u right, v up, origin bottom left) lie in the page's user space: x = a u + c v + e,
#: y = b u + d v + f, with e and f picked from the visible box's corners (x0, y0, x1, y1).
_TURNS: Final[Mapping[int, tuple[int, int, int, int, int, int]]] = {
    0: (1, 0, 0, 1, 0, 1),
    90: (0, 1, -1, 0, 2, 1),
    180: (-1, 0, 0, -1, 2, 3),
    270: (0, -1, 1, 0, 0, 3),
}


def _inherited(page: pikepdf.Object, key: str) -> pikepdf.Object | None:
    """A page attribute, looked up the page tree as PDF's inheritable attributes are."""
    node: pikepdf.Object | None = page
    for _ in range(64):  # a deeper (or cyclic) tree is broken
        if not isinstance(node, Dictionary):
            return None
        if key in node:
            return node[key]
        node = node.get("/Parent")
    return None


def _box(value: pikepdf.Object | None) -> tuple[float, float, float, float] | None:
    if not isinstance(value, Array) or len(value) != 4:
        return None
    x0, y0, x1, y1 = (float(v) for v in value)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _visible_box(page: pikepdf.Object) -> tuple[float, float, float, float]:
    """The page's CropBox within its MediaBox (the MediaBox without one): what is rendered."""
    media = _box(_inherited(page, "/MediaBox")) or (0.0, 0.0, 612.0, 792.0)
    crop = _box(_inherited(page, "/CropBox"))
    if crop is None:
        return media
    box = (max(media[0], crop[0]), max(media[1], crop[1]), min(media[2], crop[2]))
    top = min(media[3], crop[3])
    return (*box, top) if box[2] > box[0] and top > box[1] else media


def _page_rotation(page: pikepdf.Object) -> int:
    rotate = _inherited(page, "/Rotate")
    try:
        degrees = int(rotate) if rotate is not None else 0
    except (TypeError, ValueError):
        degrees = 0
    return degrees % 360 if degrees % 90 == 0 else 0


def _placement(
    visible: tuple[float, float, float, float],
    turn: int,
    text_box: tuple[float, float, float, float],
) -> list[float]:
    """The matrix that lays the text page (`text_box`, upright) over the visible box of a page
    shown turned `turn` degrees clockwise, stretched to cover it exactly."""
    a, b, c, d, e_corner, f_corner = _TURNS[turn]
    width, height = visible[2] - visible[0], visible[3] - visible[1]
    shown_width, shown_height = (width, height) if turn in (0, 180) else (height, width)
    sx = shown_width / (text_box[2] - text_box[0])
    sy = shown_height / (text_box[3] - text_box[1])
    e, f = visible[e_corner], visible[f_corner]
    bx, by = text_box[0], text_box[1]
    return [
        a * sx,
        b * sx,
        c * sy,
        d * sy,
        e - a * sx * bx - c * sy * by,
        f - b * sx * bx - d * sy * by,
    ]


def _own_resources(page: pikepdf.Object) -> Dictionary:
    """The page's resource dictionary, made its own: a page inheriting its resources or
    sharing the dictionary with other pages gets a shallow copy (the fonts and images in it
    stay the same shared objects), so what is added shows on this page only."""
    resources = _inherited(page, "/Resources")
    entries = dict(resources.items()) if isinstance(resources, Dictionary) else {}
    xobjects = entries.get("/XObject")
    entries["/XObject"] = Dictionary(
        dict(xobjects.items()) if isinstance(xobjects, Dictionary) else {}
    )
    own = Dictionary(entries)
    page.Resources = own
    return own


def graft_pdf(original: bytes, pages: Iterable[PageOutput]) -> bytes:
    """The original PDF with each read page's text-only PDF laid over that page, invisibly.

    `pages[i].number` is a page of `original` (from 1) and its `data` the model's text-only
    one-page PDF of it (`pdf_text_only`), sized as the page's visible box (CropBox, else
    MediaBox) as rendered: turned by its /Rotate and then by `rotation`, the model's own turn.
    The text page becomes a Form XObject drawn after the page's own content (wrapped in q/Q so
    that content's graphics state cannot move it), scaled to cover the visible box. Every other
    object — the page's content streams, images, fonts, annotations, the pages not read and
    those that failed — is kept as it was, shared resources once.
    """
    ordered = _in_order(pages)
    with contextlib.ExitStack() as stack:
        pdf = _open_pdf(original, stack, "the original document")
        count = len(pdf.pages)
        fonts = _FontStreams()
        for page in ordered:
            if page.number > count:
                raise ValueError(f"page {page.number} is beyond the document's {count} pages")
            if page.data is None:
                continue
            text_pdf = _open_pdf(page.data, stack, f"page {page.number}'s text layer")
            if len(text_pdf.pages) != 1:
                raise ValueError(f"page {page.number}'s text layer has {len(text_pdf.pages)} pages")
            text_page = text_pdf.pages[0]
            text_box = _box(text_page.obj.get("/MediaBox")) or (0.0, 0.0, 1.0, 1.0)
            form = pdf.copy_foreign(text_page.as_form_xobject())
            if "/Filter" not in form:  # qpdf builds the form's content decoded
                form.write(zlib.compress(form.read_bytes()), filter=Name.FlateDecode)
            target = pdf.pages[page.number - 1]
            turn = (_page_rotation(target.obj) + page.rotation) % 360
            if turn not in _TURNS:
                raise ValueError(
                    f"page {page.number}: rotation {page.rotation} is not a quarter turn"
                )
            form.BBox = Array(list(text_box))
            form.Matrix = Array(
                [round(v, 6) for v in _placement(_visible_box(target.obj), turn, text_box)]
            )
            fonts.share(form.get("/Resources"))
            resources = _own_resources(target.obj)
            name, suffix = "/OCRText", 1
            while name in resources.XObject:
                suffix += 1
                name = f"/OCRText{suffix}"
            resources.XObject[name] = form
            target.contents_add(b"q\n", prepend=True)
            target.contents_add(f"\nQ\nq {name} Do Q\n".encode("ascii"))
        return _save(pdf)


# --- one entry point -------------------------------------------------------------------------


def assemble(
    format_name: str, pages: Iterable[PageOutput], original_pdf: bytes | None = None
) -> bytes:
    """The document of format `format_name` (a name of `contract.output_formats`) made of the
    model's outputs `pages`. For `pdf`, `original_pdf` given means the pages were read from
    that PDF and their text layers are grafted onto it; otherwise the pages' searchable PDFs
    are joined. `json` is not a document assembled here: the gateway builds it from the page
    results."""
    if format_name == TEXT_PLAIN.name:
        return assemble_text(pages)
    if format_name == HOCR_DOCUMENT.name:
        return assemble_hocr(pages)
    if format_name == TSV_TABLE.name:
        return assemble_tsv(pages)
    if format_name == ALTO_XML.name:
        return assemble_alto(pages)
    if format_name == SEARCHABLE_PDF.name:
        return merge_pdf(pages) if original_pdf is None else graft_pdf(original_pdf, pages)
    raise ValueError(f"no document assembly for format {format_name!r}")
