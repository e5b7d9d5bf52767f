"""hOCR 1.2: the recognition as an XHTML document, one `ocr_page` per page.

The layout follows Tesseract's own hOCR renderer: `ocr_carea` per block, `ocr_par` per paragraph,
`ocr_line` per line and `ocrx_word` per word, each with its `bbox` (left top right bottom, in
pixels of the upright page read), words with `x_wconf` (0-100). Element ids are unique in the
document: `page_<p>`, then `block_<p>_<n>`, `par_<p>_<n>`, `line_<p>_<n>`, `word_<p>_<n>` with n
counted on page p. The document is built as a tree by lxml, so any text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from ..engine.types import Box, Word
from . import FormatPage
from ._common import PLATFORM, corners, tesseract_version, xml_text

XHTML = "http://www.w3.org/1999/xhtml"
_DOCTYPE = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">'
)
#: The hOCR elements and properties this writer emits.
CAPABILITIES = "ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf"


def _bbox(box: Box | Word) -> str:
    return "bbox {} {} {} {}".format(*corners(box))


def _element(parent: etree._Element, tag: str, cls: str, ident: str, title: str) -> etree._Element:
    return etree.SubElement(
        parent, f"{{{XHTML}}}{tag}", {"class": cls, "id": ident, "title": title}
    )


def hocr_document(pages: Sequence[FormatPage], *, version: str | None = None) -> bytes:
    """A complete hOCR document (UTF-8 XHTML 1.0) of `pages`, in their order.

    `version` is Tesseract's, named in the `ocr-system` meta (default: tesserocr's library).
    """
    html = etree.Element(f"{{{XHTML}}}html", nsmap={None: XHTML})
    head = etree.SubElement(html, f"{{{XHTML}}}head")
    etree.SubElement(head, f"{{{XHTML}}}title").text = ""
    etree.SubElement(
        head,
        f"{{{XHTML}}}meta",
        {"http-equiv": "Content-Type", "content": "text/html;charset=utf-8"},
    )
    system = f"tesseract {version or tesseract_version()} via {PLATFORM}"
    etree.SubElement(head, f"{{{XHTML}}}meta", {"name": "ocr-system", "content": system})
    etree.SubElement(
        head, f"{{{XHTML}}}meta", {"name": "ocr-capabilities", "content": CAPABILITIES}
    )
    body = etree.SubElement(html, f"{{{XHTML}}}body")
    for page in pages:
        _page(body, page)
    for element in body.iter():
        if len(element) == 0 and element.text is None:
            element.text = ""  # <div></div>, not <div/>: HTML parsers read hOCR too
    etree.indent(html, space=" ")
    document: bytes = etree.tostring(
        html, xml_declaration=True, encoding="UTF-8", doctype=_DOCTYPE, pretty_print=True
    )
    return document


def _page(body: etree._Element, page: FormatPage) -> None:
    result, p = page.result, page.number
    title = f'image "{p}"; bbox 0 0 {result.width} {result.height}; ppageno {p - 1}'
    if result.dpi:
        title += f"; scan_res {round(result.dpi)} {round(result.dpi)}"
    page_div = _element(body, "div", "ocr_page", f"page_{p}", title)
    pars = lines = words = 0
    for blocks, block in enumerate(result.blocks, 1):
        area = _element(page_div, "div", "ocr_carea", f"block_{p}_{blocks}", _bbox(block.box))
        for paragraph in block.paragraphs:
            pars += 1
            par = _element(area, "p", "ocr_par", f"par_{p}_{pars}", _bbox(paragraph.box))
            for line in paragraph.lines:
                lines += 1
                span = _element(par, "span", "ocr_line", f"line_{p}_{lines}", _bbox(line.box))
                for word in line.words:
                    words += 1
                    conf = round(min(max(word.confidence, 0.0), 100.0))
                    _element(
                        span,
                        "span",
                        "ocrx_word",
                        f"word_{p}_{words}",
                        f"{_bbox(word)}; x_wconf {conf}",
                    ).text = xml_text(word.text)
