"""ALTO 4.4: the recognition as the library world's layout XML, one `Page` per page.

ALTO has no paragraph level under a text block, so the layout is mapped as Tesseract's own ALTO
renderer maps it: a `ComposedBlock` per block holding a `TextBlock` per paragraph, which keeps
both levels and the reading order. Then `TextLine` per line and a `String` per word, with an `SP`
(the gap) between the words of a line. Positions are pixels of the upright page read
(MeasurementUnit pixel); a word's confidence is WC on 0-1. IDs are unique in the document:
`page_<p>`, then `cblock_<p>_<n>`, `block_<p>_<n>`, `line_<p>_<n>`, `string_<p>_<n>` with n
counted on page p. A line without words is left out (ALTO's TextLine needs a String).
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from ..engine.types import Box, Word
from . import FormatPage
from ._common import PLATFORM, tesseract_version, xml_text

ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{ALTO_NS} http://www.loc.gov/alto/v4/alto-4-4.xsd"
SCHEMA_VERSION = "4.4"


def _tag(name: str) -> str:
    return f"{{{ALTO_NS}}}{name}"


def _sub(parent: etree._Element, name: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, _tag(name), attributes)


def _position(box: Box | Word) -> dict[str, str]:
    return {
        "HPOS": str(box.left),
        "VPOS": str(box.top),
        "WIDTH": str(box.width),
        "HEIGHT": str(box.height),
    }


def alto_document(
    pages: Sequence[FormatPage], *, version: str | None = None, file_name: str | None = None
) -> bytes:
    """An ALTO 4.4 document (UTF-8 XML) of `pages`, in their order.

    `version` is Tesseract's (default: tesserocr's library); `file_name`, when given, is written
    as the source image's name.
    """
    root = etree.Element(_tag("alto"), nsmap={None: ALTO_NS, "xsi": XSI_NS})
    root.set("SCHEMAVERSION", SCHEMA_VERSION)
    root.set(f"{{{XSI_NS}}}schemaLocation", SCHEMA_LOCATION)
    description = _sub(root, "Description")
    _sub(description, "MeasurementUnit").text = "pixel"
    if file_name is not None:
        source = _sub(description, "sourceImageInformation")
        _sub(source, "fileName").text = xml_text(file_name)
    processing = _sub(description, "OCRProcessing", ID="OCR_0")
    step = _sub(processing, "ocrProcessingStep")
    software = _sub(step, "processingSoftware")
    _sub(software, "softwareName").text = "tesseract"
    _sub(software, "softwareVersion").text = version or tesseract_version()
    _sub(software, "applicationDescription").text = PLATFORM
    layout = _sub(root, "Layout")
    for page in pages:
        _page(layout, page)
    etree.indent(root, space=" ")
    document: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return document


def _page(layout: etree._Element, page: FormatPage) -> None:
    result, p = page.result, page.number
    size = {"WIDTH": str(result.width), "HEIGHT": str(result.height)}
    page_element = _sub(layout, "Page", ID=f"page_{p}", PHYSICAL_IMG_NR=str(p), **size)
    space = _sub(page_element, "PrintSpace", HPOS="0", VPOS="0", **size)
    pars = lines = strings = 0
    for blocks, block in enumerate(result.blocks, 1):
        composed = _sub(space, "ComposedBlock", ID=f"cblock_{p}_{blocks}", **_position(block.box))
        for paragraph in block.paragraphs:
            pars += 1
            text_block = _sub(
                composed, "TextBlock", ID=f"block_{p}_{pars}", **_position(paragraph.box)
            )
            for line in paragraph.lines:
                if not line.words:
                    continue
                lines += 1
                text_line = _sub(
                    text_block, "TextLine", ID=f"line_{p}_{lines}", **_position(line.box)
                )
                for index, word in enumerate(line.words):
                    if index:
                        previous = line.words[index - 1]
                        gap_left = previous.left + previous.width
                        _sub(
                            text_line,
                            "SP",
                            HPOS=str(gap_left),
                            VPOS=str(line.box.top),
                            WIDTH=str(max(0, word.left - gap_left)),
                        )
                    strings += 1
                    confidence = min(max(word.confidence, 0.0), 100.0) / 100
                    _sub(
                        text_line,
                        "String",
                        ID=f"string_{p}_{strings}",
                        **_position(word),
                        WC=f"{confidence:.4f}",
                        CONTENT=xml_text(word.text),
                    )
