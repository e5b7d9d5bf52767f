"""One document out of per-page outputs (gateway/assemble.py), each read back independently.

The per-page inputs come from the model's own writers, called as the model calls them (one page,
numbered 1); the assembled documents are read by lxml (hOCR), the official ALTO 4.4 schema
(xmlschema, offline), csv (TSV), pikepdf and poppler's `pdftotext` / `pdftotext -bbox` (PDF).
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pikepdf
import pytest
import xmlschema
from lxml import etree, html
from pikepdf import Array, Dictionary, Name
from PIL import Image

import contract
from gateway.assemble import (
    PageImage,
    PageOutput,
    assemble,
    assemble_alto,
    assemble_hocr,
    assemble_text,
    assemble_tsv,
    graft_pdf,
    merge_pdf,
)
from model.engine.types import Block, Box, OcrResult, Paragraph, TextLine, Word
from model.formats import FormatPage
from model.formats.alto import ALTO_NS, alto_document
from model.formats.hocr import XHTML, hocr_document
from model.formats.pdf import pdf_document
from model.formats.tsv import HEADER, tsv_document
from tests.support.images import encode

pytestmark = pytest.mark.unit

SCHEMAS = Path(__file__).resolve().parents[2] / "data" / "schemas"
VERSION = "5.5.4"
#: How far (points) poppler's word box may lie from where the word was placed.
BOX_TOLERANCE_PT = 3.0

# A page layout: blocks -> paragraphs -> lines -> word texts.
Layout = Sequence[Sequence[Sequence[Sequence[str]]]]
LAYOUTS: list[Layout] = [
    [[[["First", "page", "here"], ["second", "line"]], [["then"]]], [[["<b>", "a&b"]]]],
    [[[["Page", "two"]]], [[["alone"]]]],
    [[[["Third", "one,", "Grüße"]]]],
    [[[["fourth"]]]],
]


def _union(boxes: Sequence[Box]) -> Box:
    left, top = min(b.left for b in boxes), min(b.top for b in boxes)
    right = max(b.left + b.width for b in boxes)
    bottom = max(b.top + b.height for b in boxes)
    return Box(left, top, right - left, bottom - top)


def page_result(
    layout: Layout, *, width: int = 1000, height: int = 800, dpi: float | None = 150.0, x0: int = 40
) -> OcrResult:
    """A recognition laid out on a grid: words 30 px high, 18 px a character, from `x0`."""
    words: list[Word] = []
    blocks: list[Block] = []
    y = 40
    for b, block_spec in enumerate(layout, 1):
        paragraphs = []
        for p, paragraph_spec in enumerate(block_spec, 1):
            lines: list[TextLine] = []
            for line_spec in paragraph_spec:
                x, line_words = x0, []
                for text in line_spec:
                    w = 18 * len(text) + 6
                    word = Word(text, 90.0, x, y, w, 30, block=b, line=len(lines) + 1, paragraph=p)
                    line_words.append(word)
                    words.append(word)
                    x += w + 14
                boxes = [Box(w.left, w.top, w.width, w.height) for w in line_words]
                lines.append(TextLine(_union(boxes), tuple(line_words)))
                y += 44
            paragraphs.append(Paragraph(_union([ln.box for ln in lines]), tuple(lines)))
            y += 10
        blocks.append(Block(_union([p.box for p in paragraphs]), tuple(paragraphs)))
        y += 30
    assert y <= height
    assert x0 + 400 <= width
    return OcrResult(
        text="\n".join(" ".join(w.text for w in ln.words) for ln in _lines(blocks)),
        confidence=90.0,
        words=tuple(words),
        width=width,
        height=height,
        blocks=tuple(blocks),
        dpi=dpi,
    )


def _lines(blocks: Sequence[Block]) -> list[TextLine]:
    return [line for block in blocks for par in block.paragraphs for line in par.lines]


def results(count: int = 3) -> list[OcrResult]:
    return [page_result(LAYOUTS[i], width=1000 + 50 * i) for i in range(count)]


def outputs(
    writer: str, numbered: Sequence[tuple[int, OcrResult]], failed: Sequence[int] = ()
) -> list[PageOutput]:
    """Each page's output as the model writes it (as page 1 of its own one-page document),
    listed in reverse (calls complete in any order); `failed` pages have no output."""
    writers: dict[str, Callable[[list[FormatPage]], bytes]] = {
        "text": lambda pages: pages[0].result.text.encode(),
        "hocr": lambda pages: hocr_document(pages, version=VERSION),
        "alto": lambda pages: alto_document(pages, version=VERSION),
        "tsv": tsv_document,
    }
    made = []
    for number, result in numbered:
        data = writers[writer]([FormatPage(1, result)])
        made.append(PageOutput(number, None if number in failed else data, 640, 480))
    return made[::-1]


# --- text ----------------------------------------------------------------------------------


def test_text_pages_are_joined_by_form_feeds_in_page_order() -> None:
    numbered = list(enumerate(results(3), 1))
    document = assemble_text(outputs("text", numbered)).decode()
    assert document.split("\f") == [result.text for _, result in numbered]


def test_a_failed_page_is_an_empty_text_page() -> None:
    numbered = list(enumerate(results(3), 1))
    document = assemble_text(outputs("text", numbered, failed=[2])).decode()
    assert document.split("\f") == [numbered[0][1].text, "", numbered[2][1].text]
    assert assemble_text([PageOutput(1, None), PageOutput(2, None)]) == b"\f"


# --- TSV -----------------------------------------------------------------------------------


def _tsv(data: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(data.decode()), delimiter="\t", quoting=csv.QUOTE_NONE))
    assert all(len(row) == 12 for row in rows)
    return rows


def test_tsv_has_one_header_and_each_pages_rows_under_its_number() -> None:
    numbered = list(zip([2, 3, 5], results(3), strict=True))  # pages=2-3,5
    document = assemble_tsv(outputs("tsv", numbered))
    rows = _tsv(document)
    assert tuple(rows[0]) == HEADER
    assert sum(tuple(row) == HEADER for row in rows) == 1
    for number, result in numbered:
        own = [row for row in rows[1:] if row[1] == str(number)]
        expected = _tsv(tsv_document([FormatPage(number, result)]))[1:]
        assert own == expected
    # The same bytes as the model's writer given every page at once.
    pages = [FormatPage(number, result) for number, result in numbered]
    assert document == tsv_document(pages)


def test_a_failed_page_has_only_its_page_row_in_tsv() -> None:
    numbered = list(enumerate(results(3), 1))
    made = outputs("tsv", numbered, failed=[2])
    rows = _tsv(assemble_tsv(made))
    assert [row for row in rows if row[1] == "2"] == [
        ["1", "2", "0", "0", "0", "0", "0", "0", "640", "480", "-1", ""]
    ]
    unknown = _tsv(assemble_tsv([PageOutput(1, None)]))
    assert unknown == [list(HEADER), ["1", "1", "0", "0", "0", "0", "0", "0", "0", "0", "-1", ""]]


# --- hOCR ----------------------------------------------------------------------------------


def _hocr_pages(root: etree._Element) -> list[etree._Element]:
    return [d for d in root.iter(f"{{{XHTML}}}div") if d.get("class") == "ocr_page"]


def _hocr_words(root: etree._Element) -> list[etree._Element]:
    return [s for s in root.iter(f"{{{XHTML}}}span") if s.get("class") == "ocrx_word"]


def _title_property(element: etree._Element, name: str) -> str | None:
    for part in str(element.get("title")).split(";"):
        words = part.split(None, 1)
        if words and words[0] == name:
            return words[1] if len(words) > 1 else ""
    return None


def _ids(root: etree._Element, attribute: str) -> list[str]:
    return [str(e.get(attribute)) for e in root.iter() if e.get(attribute) is not None]


def test_hocr_is_one_document_with_one_ocr_page_per_page() -> None:
    numbered = list(zip([2, 3, 5], results(3), strict=True))
    document = assemble_hocr(outputs("hocr", numbered))
    root = etree.fromstring(document)
    meta = {m.get("name"): m.get("content") for m in root.iter(f"{{{XHTML}}}meta")}
    assert meta["ocr-system"] == f"tesseract {VERSION} via ocr-platform"
    assert meta["ocr-capabilities"] == "ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf"
    page_divs = _hocr_pages(root)
    assert len(page_divs) == 3
    ids = _ids(root, "id")
    assert len(ids) == len(set(ids)), "ids unique in the document"
    for div, (number, result) in zip(page_divs, numbered, strict=True):
        assert div.get("id") == f"page_{number}"
        assert _title_property(div, "ppageno") == str(number - 1)
        assert _title_property(div, "bbox") == f"0 0 {result.width} {result.height}"
        words = _hocr_words(div)
        assert [w.text for w in words] == [w.text for w in result.words]
        assert {str(w.get("id")).split("_")[1] for w in words} == {str(number)}
    # As an HTML parser reads it too: same pages, words in order.
    tree = html.document_fromstring(document)
    assert len(tree.find_class("ocr_page")) == 3
    texts = [w.text_content() for w in tree.find_class("ocrx_word")]
    assert texts == [w.text for _, result in numbered for w in result.words]
    # The same bytes as the model's writer given every page at once.
    pages = [FormatPage(number, result) for number, result in numbered]
    assert document == hocr_document(pages, version=VERSION)


def test_a_failed_page_is_an_empty_ocr_page_of_its_size() -> None:
    numbered = list(enumerate(results(3), 1))
    made = outputs("hocr", numbered, failed=[2])
    made.append(PageOutput(4, None))  # failed, size unknown
    root = etree.fromstring(assemble_hocr(made))
    page_divs = _hocr_pages(root)
    assert [div.get("id") for div in page_divs] == ["page_1", "page_2", "page_3", "page_4"]
    assert [_title_property(div, "ppageno") for div in page_divs] == ["0", "1", "2", "3"]
    assert _title_property(page_divs[1], "bbox") == "0 0 640 480"
    assert _title_property(page_divs[3], "bbox") is None
    assert len(page_divs[1]) == len(page_divs[3]) == 0
    ids = _ids(root, "id")
    assert len(ids) == len(set(ids))


def test_hocr_of_failed_pages_only_is_still_a_document() -> None:
    document = assemble_hocr([PageOutput(1, None, 10, 20), PageOutput(2, None)])
    root = etree.fromstring(document)
    assert len(_hocr_pages(root)) == 2
    names = [m.get("name") for m in root.iter(f"{{{XHTML}}}meta")]
    assert "ocr-system" in names
    assert "ocr-capabilities" in names


def test_hocr_ids_of_another_shape_stay_unique() -> None:
    page = (
        b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title/></head><body>'
        b'<div class="ocr_page" id="pg" title="bbox 0 0 10 10; ppageno 0">'
        b'<span class="ocrx_word" id="w1" title="bbox 0 0 5 5">a</span></div></body></html>'
    )
    root = etree.fromstring(assemble_hocr([PageOutput(1, page), PageOutput(2, page)]))
    assert _ids(root, "id") == ["p1_pg", "p1_w1", "p2_pg", "p2_w1"]
    assert [_title_property(d, "ppageno") for d in _hocr_pages(root)] == ["0", "1"]


# --- ALTO ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alto_schema() -> xmlschema.XMLSchema:
    """The official ALTO 4.4 schema, its XLink import served by the local stub: no network.
    It checks that IDs are unique and that every IDREF names one."""
    xlink = (SCHEMAS / "xlink" / "xlink.xsd").resolve()
    return xmlschema.XMLSchema(
        str(SCHEMAS / "alto" / "alto-4-4.xsd"),
        locations={"http://www.w3.org/1999/xlink": str(xlink)},
        allow="local",
    )


def _a(tag: str) -> str:
    return f"{{{ALTO_NS}}}{tag}"


def test_alto_is_one_valid_document_with_one_page_element_per_page(
    alto_schema: xmlschema.XMLSchema,
) -> None:
    numbered = list(zip([2, 3, 5], results(3), strict=True))
    document = assemble_alto(outputs("alto", numbered))
    alto_schema.validate(document)
    root = etree.fromstring(document)
    assert len(root.findall(_a("Description"))) == 1
    assert root.findtext(f".//{_a('softwareVersion')}") == VERSION
    page_elements = root.findall(f"{_a('Layout')}/{_a('Page')}")
    assert [p.get("PHYSICAL_IMG_NR") for p in page_elements] == ["2", "3", "5"]
    for element, (number, result) in zip(page_elements, numbered, strict=True):
        assert element.get("ID") == f"page_{number}"
        strings = [s.get("CONTENT") for s in element.iter(_a("String"))]
        assert strings == [w.text for w in result.words]
    pages = [FormatPage(number, result) for number, result in numbered]
    assert document == alto_document(pages, version=VERSION)


def test_failed_pages_are_empty_alto_pages(alto_schema: xmlschema.XMLSchema) -> None:
    numbered = list(enumerate(results(3), 1))
    made = [*outputs("alto", numbered, failed=[1]), PageOutput(4, None)]
    document = assemble_alto(made)
    alto_schema.validate(document)
    page_elements = etree.fromstring(document).findall(f"{_a('Layout')}/{_a('Page')}")
    assert [p.get("ID") for p in page_elements] == ["page_1", "page_2", "page_3", "page_4"]
    first, last = page_elements[0], page_elements[3]
    assert (first.get("WIDTH"), first.get("HEIGHT")) == ("640", "480")
    assert [etree.QName(c).localname for c in first] == ["PrintSpace"]
    assert last.get("WIDTH") is None
    assert len(last) == 0
    only_failed = assemble_alto([PageOutput(1, None, 10, 10)])
    alto_schema.validate(only_failed)


#: A page as another ALTO writer might make it: styles, tags, a processing step and a reading
#: order, all referred to by ID.
ALTO_WITH_REFERENCES = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">
 <Description>
  <MeasurementUnit>pixel</MeasurementUnit>
  <OCRProcessing ID="OCR_0"><ocrProcessingStep><processingSoftware>
   <softwareName>{software}</softwareName></processingSoftware></ocrProcessingStep></OCRProcessing>
 </Description>
 <Styles>
  <TextStyle ID="font0" FONTSIZE="{size}"/>
  <ParagraphStyle ID="par0" ALIGN="Left"/>
 </Styles>
 <Tags><NamedEntityTag ID="tag0" LABEL="place"/></Tags>
 <ReadingOrder><OrderedGroup ID="order0"><ElementRef ID="ref0" REF="block_1_1"/></OrderedGroup>
 </ReadingOrder>
 <Layout>
  <Page ID="page_1" PHYSICAL_IMG_NR="1" WIDTH="100" HEIGHT="100" PROCESSING="OCR_0">
   <PrintSpace HPOS="0" VPOS="0" WIDTH="100" HEIGHT="100">
    <TextBlock ID="block_1_1" HPOS="0" VPOS="0" WIDTH="50" HEIGHT="10" STYLEREFS="par0"
      TAGREFS="tag0" IDNEXT="block_1_2">
     <TextLine ID="line_1_1" HPOS="0" VPOS="0" WIDTH="50" HEIGHT="10">
      <String ID="string_1_1" HPOS="0" VPOS="0" WIDTH="50" HEIGHT="10" CONTENT="{word}"
        STYLEREFS="font0" TAGREFS="tag0"/>
     </TextLine>
    </TextBlock>
    <TextBlock ID="block_1_2" HPOS="0" VPOS="20" WIDTH="50" HEIGHT="10"/>
   </PrintSpace>
  </Page>
 </Layout>
</alto>
"""


def test_alto_references_follow_their_renumbered_ids(alto_schema: xmlschema.XMLSchema) -> None:
    pages = [
        PageOutput(1, ALTO_WITH_REFERENCES.format(software="a", size=10, word="one").encode()),
        PageOutput(2, ALTO_WITH_REFERENCES.format(software="a", size=10, word="two").encode()),
        PageOutput(3, ALTO_WITH_REFERENCES.format(software="b", size=12, word="three").encode()),
    ]
    for page in pages:
        assert page.data is not None
        alto_schema.validate(page.data)
    document = assemble_alto(pages)
    alto_schema.validate(document)  # IDs unique, every reference resolved
    root = etree.fromstring(document)
    by_id = {e.get("ID"): e for e in root.iter() if e.get("ID") is not None}
    # Equal styles, tags and steps are kept once; different ones are added under new IDs.
    assert [e.get("FONTSIZE") for e in root.iter(_a("TextStyle"))] == ["10", "12"]
    assert len(list(root.iter(_a("ParagraphStyle")))) == 1
    assert len(list(root.iter(_a("NamedEntityTag")))) == 1
    assert [e.findtext(f".//{_a('softwareName')}") for e in root.iter(_a("OCRProcessing"))] == [
        "a",
        "b",
    ]
    assert len(root.findall(f"{_a('ReadingOrder')}/{_a('OrderedGroup')}")) == 3
    for string in root.iter(_a("String")):
        ancestor = next(a for a in string.iterancestors() if etree.QName(a).localname == "Page")
        style = by_id[string.get("STYLEREFS")]
        assert style.get("FONTSIZE") == ("12" if string.get("CONTENT") == "three" else "10")
        processing = by_id[ancestor.get("PROCESSING")]
        software = processing.findtext(f".//{_a('softwareName')}")
        assert software == ("b" if string.get("CONTENT") == "three" else "a")
    for ref in root.iter(_a("ElementRef")):
        assert etree.QName(by_id[ref.get("REF")]).localname == "TextBlock"
    # The first page's document-level IDs stay as they were.
    assert {"font0", "par0", "tag0", "OCR_0"} <= set(by_id)
    blocks = list(root.iter(_a("TextBlock")))
    assert [b.get("ID") for b in blocks] == [f"block_{p}_{n}" for p in (1, 2, 3) for n in (1, 2)]
    assert [by_id[b.get("IDNEXT")] for b in blocks[::2]] == blocks[1::2]


def test_comments_in_a_page_are_carried_along(alto_schema: xmlschema.XMLSchema) -> None:
    alto = ALTO_WITH_REFERENCES.format(software="a", size=10, word="one")
    alto = alto.replace("<Styles>", "<Styles><!-- styles -->").replace("<Page ", "<!-- p --><Page ")
    hocr = (
        b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title/></head><body><!-- page -->'
        b'<div class="ocr_page" id="page_1" title="ppageno 0"><!-- words --></div></body></html>'
    )
    document = assemble_alto([PageOutput(1, alto.encode()), PageOutput(2, alto.encode())])
    alto_schema.validate(document)
    assembled = assemble_hocr([PageOutput(1, hocr), PageOutput(2, hocr)])
    assert [d.get("id") for d in _hocr_pages(etree.fromstring(assembled))] == ["page_1", "page_2"]
    assert b"<title></title>" in assembled, "never <title/>: HTML parsers read hOCR too"


# --- PDF from images -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pdftotext() -> str:
    path = shutil.which("pdftotext")
    assert path is not None, "pdftotext is missing: run `make system-deps` (Debian's poppler-utils)"
    return path


def _pdftotext(binary: str, pdf: bytes, *args: str) -> str:
    done = subprocess.run(
        [binary, *args, "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True
    )
    return done.stdout.decode("utf-8")


def _bbox_words(binary: str, pdf: bytes) -> list[dict[str, tuple[float, float, float, float]]]:
    """pdftotext -bbox's words per page: text -> xMin, yMin, xMax, yMax in points."""
    root = html.document_fromstring(_pdftotext(binary, pdf, "-bbox", "-cropbox"))
    return [
        {
            str(word.text): tuple(float(str(word.get(k))) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[misc]
            for word in page.iter("word")
        }
        for page in root.iter("page")
    ]


def _noise(mode: str, size: tuple[int, int]) -> Image.Image:
    """Pixels that differ from their neighbours: resampling or lossy coding cannot keep them."""
    noise = Image.effect_noise(size, 120)
    if mode == "RGB":
        return Image.merge("RGB", [noise, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise])
    return noise.convert(mode)


def _image_streams(pdf: pikepdf.Pdf, page_index: int) -> list[pikepdf.Object]:
    return list(pdf.pages[page_index].get_images().values())


def image_page_pdfs(count: int = 3) -> list[tuple[OcrResult, bytes]]:
    """Each page's searchable PDF as the model writes it, page images in 1-bit, gray, colour."""
    made = []
    for index, result in enumerate(results(count)):
        mode = ("1", "L", "RGB")[index % 3]
        image = _noise(mode, (result.width, result.height))
        made.append((result, pdf_document([FormatPage(1, result, image)], version=VERSION)))
    return made


def test_merged_pdf_keeps_every_page_image_and_its_text(pdftotext: str) -> None:
    made = image_page_pdfs(3)
    pages = [PageOutput(n, data) for n, (_, data) in enumerate(made, 1)][::-1]
    document = merge_pdf(pages)
    with pikepdf.open(io.BytesIO(document)) as pdf:
        assert pdf.check_pdf_syntax() == []
        assert len(pdf.pages) == 3
        assert VERSION in str(pdf.docinfo["/Producer"])
        for index, (_, data) in enumerate(made):
            with pikepdf.open(io.BytesIO(data)) as single:
                (expected,) = _image_streams(single, 0)
                (image,) = _image_streams(pdf, index)
                assert image.read_raw_bytes() == expected.read_raw_bytes(), "byte for byte"
                assert pdf.pages[index].mediabox == single.pages[0].mediabox
        # The glyphless font's program is embedded once, not once a page.
        programs = {
            font.DescendantFonts[0].FontDescriptor.FontFile2.objgen
            for page in pdf.pages
            for font in page.Resources.Font.values()
        }
        assert len(programs) == 1
    page_texts = _pdftotext(pdftotext, document, "-raw").split("\f")
    for page_text, (result, _) in zip(page_texts, made, strict=False):
        assert page_text.split() == [w.text for w in result.words]
    for found, (result, _) in zip(_bbox_words(pdftotext, document), made, strict=True):
        scale = 72 / (result.dpi or 300)
        for word in result.words:
            box = (word.left, word.top, word.left + word.width, word.top + word.height)
            assert found[word.text] == pytest.approx([v * scale for v in box], abs=3)


def test_a_failed_image_page_shows_its_image_unresampled(pdftotext: str) -> None:
    made = image_page_pdfs(1)
    gray = _noise("L", (300, 200))
    jpeg = encode(_noise("RGB", (320, 240)), "JPEG", quality=80)
    bilevel = encode(_noise("1", (200, 100)), "TIFF", compression="group4", dpi=(200, 200))
    pages = [
        PageOutput(1, made[0][1]),
        PageOutput(2, None, fallback=PageImage(encode(gray, "PNG"), dpi=100)),
        PageOutput(3, None, fallback=PageImage(jpeg, dpi=None)),
        PageOutput(4, None),  # no image to show: left out
        PageOutput(5, None, fallback=PageImage(bilevel)),
    ]
    document = merge_pdf(pages)
    with pikepdf.open(io.BytesIO(document)) as pdf:
        assert len(pdf.pages) == 4
        (png_image,) = _image_streams(pdf, 1)
        assert png_image.Filter == Name.FlateDecode
        assert png_image.read_bytes() == gray.tobytes()
        assert [float(v) for v in pdf.pages[1].mediabox] == [0, 0, 216, 144]  # 100 dpi
        (jpeg_image,) = _image_streams(pdf, 2)
        assert jpeg_image.Filter == Name.DCTDecode
        assert jpeg_image.read_raw_bytes() == jpeg, "the JPEG as it came"
        assert jpeg_image.ColorSpace == Name.DeviceRGB
        assert [float(v) for v in pdf.pages[2].mediabox] == [0, 0, 76.8, 57.6]  # 300 dpi
        (tiff_image,) = _image_streams(pdf, 3)
        assert tiff_image.BitsPerComponent == 1
        assert tiff_image.read_bytes() == Image.open(io.BytesIO(bilevel)).tobytes()
        assert [float(v) for v in pdf.pages[3].mediabox] == [0, 0, 72, 36]  # its own 200 dpi
    texts = _pdftotext(pdftotext, document, "-raw").split("\f")
    assert [t.split() for t in texts[1:4]] == [[], [], []], "fallback pages carry no text"


def test_a_sixteen_bit_fallback_keeps_its_samples() -> None:
    image = Image.new("I;16", (4, 2))
    image.putdata([0, 1, 256, 65535, 2, 3, 4, 5])
    document = merge_pdf([PageOutput(1, None, fallback=PageImage(encode(image, "PNG"), 72))])
    with pikepdf.open(io.BytesIO(document)) as pdf:
        (stream,) = _image_streams(pdf, 0)
        assert stream.BitsPerComponent == 16
        assert zlib.decompress(stream.read_raw_bytes()) == image.tobytes("raw", "I;16B")


# --- PDF grafted onto an original PDF ------------------------------------------------------

DPI = 150


def original_document(
    specs: Sequence[dict[str, object]], image_size: tuple[int, int] = (400, 300)
) -> bytes:
    """A PDF whose pages all share one resource dictionary (a font and a scanned image) and
    draw the image, vector lines and a visible word: each spec may set Rotate and CropBox."""
    pdf = pikepdf.new()
    image = pikepdf.Stream(pdf, b"")
    image.write(zlib.compress(_noise("L", image_size).tobytes()), filter=Name.FlateDecode)
    image.Type, image.Subtype = Name.XObject, Name.Image
    image.Width, image.Height = image_size
    image.ColorSpace, image.BitsPerComponent = Name.DeviceGray, 8
    font = pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Courier))
    resources = pdf.make_indirect(
        Dictionary(Font=Dictionary(F0=font), XObject=Dictionary(Scan=image))
    )
    for index, spec in enumerate(specs):
        content = (
            b"q 300 0 0 200 100 300 cm /Scan Do Q\n0 0 1 RG 4 w 20 20 m 500 700 l S\n"
            b"BT /F0 9 Tf 120 60 Td (Vector%d) Tj ET\n" % index
        )
        page = Dictionary(
            Type=Name.Page,
            MediaBox=Array([0, 0, 612, 792]),
            Resources=resources,
            Contents=pikepdf.Stream(pdf, content),
        )
        if "rotate" in spec:
            page.Rotate = spec["rotate"]
        if "crop" in spec:
            page.CropBox = Array(spec["crop"])  # type: ignore[arg-type]
        pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def shown_size(page: pikepdf.Page) -> tuple[float, float]:
    """The page's visible box as rendered (turned by its /Rotate), in points."""
    x0, y0, x1, y1 = (float(v) for v in page.cropbox)
    rotate = int(page.obj.get("/Rotate", 0)) % 360
    return (x1 - x0, y1 - y0) if rotate in (0, 180) else (y1 - y0, x1 - x0)


def text_layer(
    words: Sequence[str], size_pt: tuple[float, float], *, x0: int = 40
) -> tuple[OcrResult, bytes]:
    """The model's text-only page for a page rendered at DPI: the searchable PDF writer given
    no image, as the model answers `pdf_text_only`."""
    width, height = (round(v * DPI / 72) for v in size_pt)
    result = page_result([[[list(words)]]], width=width, height=height, dpi=DPI, x0=x0)
    return result, pdf_document([FormatPage(1, result)], version=VERSION)


def hand_made_text_layer(word: str, x: float, y: float, size_pt: tuple[float, float]) -> bytes:
    """A text-only page made without the model: one word in a standard font, invisible."""
    pdf = pikepdf.new()
    font = Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
    content = f"BT 3 Tr /F1 12 Tf 1 0 0 1 {x} {y} Tm ({word}) Tj ET\n".encode()
    page = Dictionary(
        Type=Name.Page,
        MediaBox=Array([0, 0, *size_pt]),
        Resources=Dictionary(Font=Dictionary(F1=font)),
        Contents=pikepdf.Stream(pdf, content),
    )
    pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


GRAFT_SPECS: list[dict[str, object]] = [
    {},
    {"rotate": 90},
    {"crop": [50, 100, 450, 600]},
    {"rotate": 270, "crop": [30, 40, 530, 740]},
    {"rotate": 180},
]


def test_grafted_words_land_where_they_were_read(pdftotext: str) -> None:
    original = original_document(GRAFT_SPECS)
    layers: list[OcrResult] = []
    pages = []
    with pikepdf.open(io.BytesIO(original)) as pdf:
        for number, page in enumerate(pdf.pages, 1):
            words = [f"w{number}a", f"w{number}b", f"w{number}c"]
            result, data = text_layer(words, shown_size(page), x0=40 + 20 * number)
            layers.append(result)
            pages.append(PageOutput(number, data))
    document = graft_pdf(original, pages[::-1])
    found_pages = _bbox_words(pdftotext, document)
    assert len(found_pages) == len(GRAFT_SPECS)
    scale = 72 / DPI
    for spec, found, result in zip(GRAFT_SPECS, found_pages, layers, strict=True):
        for word in result.words:
            expected = (word.left, word.top, word.left + word.width, word.top + word.height)
            box = found[word.text]
            assert box == pytest.approx([v * scale for v in expected], abs=BOX_TOLERANCE_PT), (
                spec,
                word.text,
            )
    texts = _pdftotext(pdftotext, document, "-raw").split("\f")
    for number, text in enumerate(texts[: len(GRAFT_SPECS)], 1):
        assert [w for w in text.split() if w.startswith("w")] == [
            f"w{number}a",
            f"w{number}b",
            f"w{number}c",
        ]
        assert f"Vector{number - 1}" in text, "the page's own text stays"


def test_a_hand_made_text_layer_is_placed_on_rotated_and_cropped_pages(pdftotext: str) -> None:
    original = original_document(GRAFT_SPECS)
    with pikepdf.open(io.BytesIO(original)) as pdf:
        sizes = [shown_size(page) for page in pdf.pages]
    # The word's baseline 100 pt above the bottom of the shown page, 72 pt from its left.
    pages = [
        PageOutput(n, hand_made_text_layer(f"word{n}", 72, 100, size))
        for n, size in enumerate(sizes, 1)
    ]
    found_pages = _bbox_words(pdftotext, graft_pdf(original, pages))
    for number, (found, (_, height)) in enumerate(zip(found_pages, sizes, strict=True), 1):
        x_min, _, _, y_max = found[f"word{number}"]
        assert x_min == pytest.approx(72, abs=BOX_TOLERANCE_PT)
        # Poppler's box reaches below the baseline by Helvetica's descent (about 2.5 pt here).
        assert y_max == pytest.approx(height - 100 + 2.5, abs=BOX_TOLERANCE_PT)


def test_a_page_the_model_turned_upright_gets_its_words_back_in_place(pdftotext: str) -> None:
    original = original_document([{}])  # portrait, no /Rotate: the scan lies on its side
    # The model turned the rendered page 90 degrees clockwise to read it: its text page is
    # the upright (landscape) page.
    result, data = text_layer(["turned", "words"], (792, 612))
    found = _bbox_words(pdftotext, graft_pdf(original, [PageOutput(1, data, rotation=90)]))[0]
    scale = 72 / DPI
    for word in result.words:
        # Upright (X, Y) is shown (x, y) turned clockwise: x = Y, y = shown height - X.
        x0, x1 = word.top * scale, (word.top + word.height) * scale
        y0, y1 = 792 - (word.left + word.width) * scale, 792 - word.left * scale
        assert found[word.text] == pytest.approx([x0, y0, x1, y1], abs=BOX_TOLERANCE_PT)


def test_the_original_pages_stay_byte_for_byte(pdftotext: str) -> None:
    original = original_document([{}, {}, {}, {}])
    with pikepdf.open(io.BytesIO(original)) as pdf:
        sizes = [shown_size(page) for page in pdf.pages]
        contents = [page.Contents.read_raw_bytes() for page in pdf.pages]
        (scan,) = _image_streams(pdf, 0)
        scan_bytes = scan.read_raw_bytes()
    _, layer = text_layer(["only", "page", "two"], sizes[1])
    # Page 2 read, page 3 failed, pages 1 and 4 not asked for.
    document = graft_pdf(original, [PageOutput(2, layer), PageOutput(3, None)])
    with pikepdf.open(io.BytesIO(document)) as pdf:
        assert pdf.check_pdf_syntax() == []
        assert len(pdf.pages) == 4
        images = {image.objgen for page in pdf.pages for image in page.get_images().values()}
        assert len(images) == 1, "the shared scan is still one object"
        (scan,) = _image_streams(pdf, 1)
        assert scan.read_raw_bytes() == scan_bytes
        for index, page in enumerate(pdf.pages):
            if index == 1:
                streams = list(page.Contents)
                assert len(streams) == 3  # q, the original content, Q and the text layer
                assert streams[1].read_raw_bytes() == contents[1]
                assert "/OCRText" in page.Resources.XObject
            else:
                assert page.Contents.read_raw_bytes() == contents[index]
                assert "/OCRText" not in page.Resources.XObject
    texts = _pdftotext(pdftotext, document, "-raw").split("\f")
    # -raw reads in drawing order: the page's own text, then the text layer drawn over it.
    assert texts[1].split() == ["Vector1", "only", "page", "two"]
    assert [t.split() for t in (texts[0], texts[2], texts[3])] == [
        ["Vector0"],
        ["Vector2"],
        ["Vector3"],
    ]


def test_inherited_resources_and_rotation_are_honoured(pdftotext: str) -> None:
    pdf = pikepdf.new()
    font = Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Courier)
    page = Dictionary(
        Type=Name.Page,
        Contents=pikepdf.Stream(pdf, b"BT /F0 9 Tf 100 100 Td (Inherited) Tj ET\n"),
    )
    pdf.pages.append(pikepdf.Page(page))
    # Resources, MediaBox and Rotate on the page tree's root, not on the page.
    pdf.Root.Pages.Resources = Dictionary(Font=Dictionary(F0=font))
    pdf.Root.Pages.MediaBox = Array([0, 0, 300, 500])
    pdf.Root.Pages.Rotate = 90
    assert "/MediaBox" not in pdf.pages[0].obj
    out = io.BytesIO()
    pdf.save(out)
    result, layer = text_layer(["inherits"], (500, 300))
    document = graft_pdf(out.getvalue(), [PageOutput(1, layer)])
    assert "Inherited" in _pdftotext(pdftotext, document, "-raw"), "the page keeps its font"
    (found,) = _bbox_words(pdftotext, document)
    (word,) = result.words
    box = (word.left, word.top, word.left + word.width, word.top + word.height)
    assert found["inherits"] == pytest.approx([v * 72 / DPI for v in box], abs=BOX_TOLERANCE_PT)


def test_grafting_adds_no_more_than_the_text_layers() -> None:
    count = 30
    original = original_document([{}] * count, image_size=(1200, 900))
    with pikepdf.open(io.BytesIO(original)) as pdf:
        size = shown_size(pdf.pages[0])
    layers = [text_layer([f"p{n}", "some", "words", "here"], size)[1] for n in range(count)]
    pages = [PageOutput(n, layer) for n, layer in enumerate(layers, 1)]
    document = graft_pdf(original, pages)
    assert len(document) <= 1.3 * len(original) + sum(len(layer) for layer in layers)
    # The text layers share their font: far below the sum of the one-page files.
    assert len(document) - len(original) < sum(len(layer) for layer in layers) / 2
    with pikepdf.open(io.BytesIO(document)) as pdf:
        images = {image.objgen for page in pdf.pages for image in page.get_images().values()}
        assert len(images) == 1


def test_graft_refuses_a_page_the_document_does_not_have() -> None:
    original = original_document([{}])
    with pytest.raises(ValueError, match="beyond"):
        graft_pdf(original, [PageOutput(2, hand_made_text_layer("x", 1, 1, (612, 792)))])


# --- the dispatcher ------------------------------------------------------------------------


def test_assemble_serves_every_document_format() -> None:
    numbered = list(enumerate(results(2), 1))
    for name in ("text", "hocr", "tsv", "alto"):
        made = outputs(name, numbered)
        own = {
            "text": assemble_text,
            "hocr": assemble_hocr,
            "tsv": assemble_tsv,
            "alto": assemble_alto,
        }[name]
        assert assemble(name, made) == own(made)
    pdfs = [PageOutput(n, data) for n, (_, data) in enumerate(image_page_pdfs(2), 1)]
    assert assemble("pdf", pdfs) == merge_pdf(pdfs)
    original = original_document([{}])
    layer = [PageOutput(1, hand_made_text_layer("x", 1, 1, (612, 792)))]
    assert assemble("pdf", layer, original_pdf=original) == graft_pdf(original, layer)
    assembled = {f.name for f in contract.OUTPUT_FORMATS} - {"json", "ndjson"}
    assert assembled == {"text", "hocr", "tsv", "alto", "pdf"}
    with pytest.raises(ValueError, match="json"):
        assemble("json", [])


def test_page_numbers_are_checked() -> None:
    with pytest.raises(ValueError, match="twice"):
        assemble_text([PageOutput(1, b"a"), PageOutput(1, b"b")])
    with pytest.raises(ValueError, match="from 1"):
        assemble_text([PageOutput(0, b"a")])


def test_a_hundred_pages_assemble_in_reasonable_time() -> None:
    made = image_page_pdfs(1)[0][1]
    started = time.perf_counter()
    merged = merge_pdf([PageOutput(n, made) for n in range(1, 101)])
    elapsed = time.perf_counter() - started
    with pikepdf.open(io.BytesIO(merged)) as pdf:
        assert len(pdf.pages) == 100
    assert elapsed < 30  # generous: a shared 2-core machine; measured well under that


def test_streams_in_any_encoding_keep_their_bytes() -> None:
    """qpdf would re-encode an ASCIIHex (or LZW) stream as Flate unless told not to decode."""
    pdf = pikepdf.new()
    pixels = _noise("L", (64, 32)).tobytes()
    image = pikepdf.Stream(pdf, pixels.hex().encode() + b">")
    image.Filter = Name.ASCIIHexDecode
    image.Type, image.Subtype = Name.XObject, Name.Image
    image.Width, image.Height, image.ColorSpace, image.BitsPerComponent = 64, 32, Name.DeviceGray, 8
    content = pikepdf.Stream(pdf, b"q 64 0 0 32 10 10 cm /Im Do Q\n")
    pdf.pages.append(
        pikepdf.Page(
            Dictionary(
                Type=Name.Page,
                MediaBox=Array([0, 0, 200, 100]),
                Resources=Dictionary(XObject=Dictionary(Im=image)),
                Contents=content,
            )
        )
    )
    pdf.pages.append(pikepdf.Page(Dictionary(Type=Name.Page, MediaBox=Array([0, 0, 200, 100]))))
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    layers = [PageOutput(n, hand_made_text_layer("x", 10, 10, (200, 100))) for n in (1, 2)]
    document = graft_pdf(out.getvalue(), layers)
    with pikepdf.open(io.BytesIO(document)) as grafted:
        (kept,) = _image_streams(grafted, 0)
        assert kept.Filter == Name.ASCIIHexDecode
        assert kept.read_raw_bytes() == pixels.hex().encode() + b">"
        assert kept.read_bytes() == pixels
        # A page without content of its own still gets its text layer.
        assert "/OCRText" in grafted.pages[1].Resources.XObject
