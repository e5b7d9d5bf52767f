"""The format writers, each output read back by an independent reader.

hOCR by lxml (as XML and as HTML), TSV by csv and against Tesseract's own TSV, ALTO by
xmlschema against the official ALTO 4.4 schema (offline), the PDF by pikepdf and by poppler's
`pdftotext` (`make system-deps` installs poppler-utils).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import shutil
import subprocess
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pikepdf
import pytest
import xmlschema
from lxml import etree, html
from PIL import Image

from model.engine import OcrEngine, OcrOptions, TesserocrBackend
from model.engine.backends import limit_openmp_threads
from model.engine.types import Block, Box, OcrResult, Paragraph, TextLine, Word
from model.formats import FormatPage
from model.formats.alto import ALTO_NS, alto_document
from model.formats.hocr import XHTML, hocr_document
from model.formats.pdf import DEFAULT_FONT, pdf_document
from model.formats.tsv import HEADER, tsv_document
from model.settings import ModelSettings
from tests.support.images import TESTDATA

pytestmark = pytest.mark.unit

PHOTOTEST = TESTDATA / "phototest.tif"
SCHEMAS = Path(__file__).resolve().parents[2] / "data" / "schemas"
TESSDATA = ModelSettings().tessdata_dir
TRICKY = ["<script>", "a&b", "(x)", "\\", "Grüße", "日本", "😀ok", '"q"']
#: How far (points) poppler's word box may lie from the OCR box converted to points.
BOX_TOLERANCE_PT = 3.0

# A layout is blocks -> paragraphs -> lines -> word texts.
Layout = Sequence[Sequence[Sequence[Sequence[str]]]]
THREE_BLOCKS: Layout = [
    [[["This", "is", "a", "lot"], ["of", "12", "point", "text"]], [["to", "test"]]],
    [[["the", "ocr", "code."]]],
    [[["And", "see"], ["if"]], [["it"]], [["works", "on", "all", "types."]]],
]


def _union(boxes: Sequence[Box]) -> Box:
    left, top = min(b.left for b in boxes), min(b.top for b in boxes)
    right = max(b.left + b.width for b in boxes)
    bottom = max(b.top + b.height for b in boxes)
    return Box(left, top, right - left, bottom - top)


def build_result(
    layout: Layout, *, width: int = 1200, height: int = 900, dpi: float | None = None
) -> OcrResult:
    """An OcrResult laid out on a grid: words 30 px high, 18 px per character."""
    confidences = [96.5, 0.0, 100.0, 42.25, 88.0]
    words: list[Word] = []
    blocks: list[Block] = []
    y = 40
    for b, block_spec in enumerate(layout, 1):
        paragraphs: list[Paragraph] = []
        for p, paragraph_spec in enumerate(block_spec, 1):
            lines: list[TextLine] = []
            for line_spec in paragraph_spec:
                x, line_words = 40, []
                for text in line_spec:
                    w = 18 * len(text) + 6
                    # Boxes of one line differ: x-height words lower, descenders deeper.
                    top = y + 6 if text.islower() else y
                    bottom = y + 36 if set(text) & set("gjpqy") else y + 30
                    word = Word(
                        text=text,
                        confidence=confidences[len(words) % len(confidences)],
                        left=x,
                        top=top,
                        width=w,
                        height=bottom - top,
                        block=b,
                        line=len(lines) + 1,
                        paragraph=p,
                    )
                    line_words.append(word)
                    words.append(word)
                    x += w + 14
                lines.append(TextLine(_union([_box(w) for w in line_words]), tuple(line_words)))
                y += 44
            paragraphs.append(Paragraph(_union([ln.box for ln in lines]), tuple(lines)))
            y += 10
        blocks.append(Block(_union([p.box for p in paragraphs]), tuple(paragraphs)))
        y += 30
    assert not layout or y <= height
    text = "\n".join(" ".join(w.text for w in ln.words) for ln in _lines(tuple(blocks)))
    return OcrResult(
        text=text,
        confidence=sum(w.confidence for w in words) / max(1, len(words)),
        words=tuple(words),
        width=width,
        height=height,
        blocks=tuple(blocks),
        dpi=dpi,
    )


def _box(word: Word) -> Box:
    return Box(word.left, word.top, word.width, word.height)


def _lines(blocks: tuple[Block, ...]) -> Iterator[TextLine]:
    for block in blocks:
        for paragraph in block.paragraphs:
            yield from paragraph.lines


def _words(result: OcrResult) -> list[Word]:
    return [w for line in _lines(result.blocks) for w in line.words]


def _noise(mode: str, size: tuple[int, int]) -> Image.Image:
    """An image of `mode` whose every pixel differs from its neighbours: resampling or lossy
    compression cannot keep it unchanged."""
    noise = Image.effect_noise(size, 120)
    if mode == "RGB":
        return Image.merge(
            "RGB",
            [
                noise,
                noise.rotate(90, expand=False),
                noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            ],
        )
    return noise.convert(mode)


def one_page() -> list[FormatPage]:
    result = build_result(THREE_BLOCKS, dpi=150)
    return [FormatPage(1, result, _noise("L", (result.width, result.height)))]


def three_pages() -> list[FormatPage]:
    pages = []
    for number, (mode, dpi) in enumerate([("1", 200.0), ("L", None), ("RGB", 300.0)], 1):
        layout = [*THREE_BLOCKS[number - 1 :], *THREE_BLOCKS[: number - 1]]
        result = build_result(layout, width=1000 + 100 * number, dpi=dpi)
        pages.append(FormatPage(number, result, _noise(mode, (result.width, result.height))))
    return pages


def empty_page() -> list[FormatPage]:
    result = OcrResult(text="", confidence=0.0, width=800, height=600, dpi=300)
    return [FormatPage(1, result, Image.new("L", (800, 600), 255))]


def tricky_page() -> list[FormatPage]:
    result = build_result([[[TRICKY[:4], TRICKY[4:]]]], width=1000, height=300, dpi=100)
    return [FormatPage(1, result, Image.new("RGB", (1000, 300), (255, 255, 255)))]


CASES = {
    "one page": one_page,
    "three pages": three_pages,
    "empty page": empty_page,
    "tricky text": tricky_page,
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def pages(request: pytest.FixtureRequest) -> list[FormatPage]:
    maker = CASES[request.param]
    return maker()


# --- TSV -----------------------------------------------------------------------------------


def _tsv_rows(data: bytes) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8")), delimiter="\t", quoting=csv.QUOTE_NONE)
    rows = list(reader)
    assert tuple(rows[0]) == HEADER
    assert all(len(row) == 12 for row in rows), "every row has the 12 columns"
    return [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]


def test_tsv_has_a_row_per_page_block_paragraph_line_and_word(pages: list[FormatPage]) -> None:
    rows = _tsv_rows(tsv_document(pages))
    for page in pages:
        own = [r for r in rows if r["page_num"] == str(page.number)]
        levels = [int(r["level"]) for r in own]
        blocks = page.result.blocks
        assert levels.count(1) == 1
        assert levels.count(2) == len(blocks)
        assert levels.count(3) == sum(len(b.paragraphs) for b in blocks)
        assert levels.count(4) == len(list(_lines(blocks)))
        assert [r["text"] for r in own if r["level"] == "5"] == [
            w.text for w in _words(page.result)
        ]
        assert own[0] == {
            "level": "1",
            "page_num": str(page.number),
            **dict.fromkeys(("block_num", "par_num", "line_num", "word_num", "left", "top"), "0"),
            "width": str(page.result.width),
            "height": str(page.result.height),
            "conf": "-1",
            "text": "",
        }
        for row in own:
            if row["level"] != "5":
                assert (row["conf"], row["text"]) == ("-1", "")
            # A level's own number and those above it are set, those below are 0.
            numbers = [int(row[c]) for c in HEADER[2:6]]
            level = int(row["level"])
            assert all(n >= 1 for n in numbers[: level - 1])
            assert all(n == 0 for n in numbers[level - 1 :])


def test_tsv_numbers_words_in_their_line_and_lines_in_their_paragraph() -> None:
    rows = _tsv_rows(tsv_document(one_page()))
    words = [r for r in rows if r["level"] == "5"]
    key = [(r["block_num"], r["par_num"], r["line_num"], r["word_num"]) for r in words]
    assert key[:6] == [
        ("1", "1", "1", "1"),
        ("1", "1", "1", "2"),
        ("1", "1", "1", "3"),
        ("1", "1", "1", "4"),
        ("1", "1", "2", "1"),
        ("1", "1", "2", "2"),
    ]
    assert ("1", "2", "1", "1") in key  # the second paragraph starts at line 1 again
    first = one_page()[0].result.blocks[0].paragraphs[0].lines[0].words[0]
    row = words[0]
    assert (row["left"], row["top"], row["width"], row["height"]) == tuple(
        str(v) for v in (first.left, first.top, first.width, first.height)
    )
    assert row["conf"] == f"{first.confidence:.6f}"


def test_tsv_keeps_tricky_text_in_one_column() -> None:
    result = build_result([[[["tab\there", "new\nline"], TRICKY]]], dpi=300)
    rows = _tsv_rows(tsv_document([FormatPage(1, result)]))
    assert [r["text"] for r in rows if r["level"] == "5"] == ["tab here", "new line", *TRICKY]


def _tesseract_layout(image: Image.Image) -> tuple[OcrResult, str]:
    """Tesseract's own layout of `image` read through tesserocr's iterator, independently of
    the engine, with Tesseract's own TSV of the same recognition."""
    limit_openmp_threads()
    import tesserocr

    ril = tesserocr.RIL
    with tesserocr.PyTessBaseAPI(path=str(TESSDATA) + "/", lang="eng", psm=3) as api:
        api.SetImage(image)
        api.Recognize()
        tsv: str = api.GetTSVText(0)
        iterator = api.GetIterator()
        tree: list[tuple[Box, list[tuple[Box, list[tuple[Box, list[Word]]]]]]] = []

        def box(level: Any) -> Box:
            x1, y1, x2, y2 = iterator.BoundingBox(level)
            return Box(x1, y1, x2 - x1, y2 - y1)

        while True:
            if iterator.IsAtBeginningOf(ril.BLOCK):
                tree.append((box(ril.BLOCK), []))
            if iterator.IsAtBeginningOf(ril.PARA):
                tree[-1][1].append((box(ril.PARA), []))
            if iterator.IsAtBeginningOf(ril.TEXTLINE):
                tree[-1][1][-1][1].append((box(ril.TEXTLINE), []))
            w = box(ril.WORD)
            tree[-1][1][-1][1][-1][1].append(
                Word(
                    iterator.GetUTF8Text(ril.WORD),
                    iterator.Confidence(ril.WORD),
                    w.left,
                    w.top,
                    w.width,
                    w.height,
                    block=len(tree),
                    line=len(tree[-1][1][-1][1]),
                    paragraph=len(tree[-1][1]),
                )
            )
            if not iterator.Next(ril.WORD):
                break
    blocks = tuple(
        Block(
            b, tuple(Paragraph(p, tuple(TextLine(ln, tuple(ws)) for ln, ws in ls)) for p, ls in ps)
        )
        for b, ps in tree
    )
    words = tuple(w for ln in _lines(blocks) for w in ln.words)
    result = OcrResult(
        text="", confidence=0.0, words=words, width=image.width, height=image.height, blocks=blocks
    )
    return result, tsv


@pytest.fixture(scope="module")
def phototest() -> Image.Image:
    """Tesseract's classic 1-bit 200 dpi test scan (tests/data/tesseract)."""
    return Image.open(PHOTOTEST)


def test_tsv_is_tesseracts_own_for_tesseracts_layout(phototest: Image.Image) -> None:
    result, tesseract_tsv = _tesseract_layout(phototest)
    ours = tsv_document([FormatPage(1, result)]).decode()
    header, _, body = ours.partition("\n")
    assert header == "\t".join(HEADER)
    assert len(result.words) > 50
    assert body == tesseract_tsv  # Tesseract's TSV text has no header (its renderer adds it)


def _word_rows(tsv: str) -> list[tuple[str, ...]]:
    """Word rows without the confidence: page..word numbers, box, text."""
    rows = csv.reader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    return [tuple(row[1:10] + row[11:]) for row in rows if row and row[0] == "5"]


def test_tsv_of_the_engines_recognition_matches_tesseracts(phototest: Image.Image) -> None:
    engine = OcrEngine(TesserocrBackend(TESSDATA), max_pixels=40_000_000)
    result = engine.recognize(PHOTOTEST.read_bytes(), OcrOptions())
    assert result.blocks, "the engine fills the layout the writers read"
    _, tesseract_tsv = _tesseract_layout(phototest)
    ours = tsv_document([FormatPage(1, result)]).decode()
    assert _word_rows(ours) == _word_rows(tesseract_tsv)
    ours_rows = list(csv.reader(io.StringIO(ours), delimiter="\t", quoting=csv.QUOTE_NONE))
    theirs = csv.reader(io.StringIO(tesseract_tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    assert [r[:10] for r in ours_rows[1:]] == [r[:10] for r in theirs]


# --- hOCR ----------------------------------------------------------------------------------

_BBOX = re.compile(r"^bbox (\d+) (\d+) (\d+) (\d+)$")
_WORD_TITLE = re.compile(r"^bbox (\d+) (\d+) (\d+) (\d+); x_wconf (\d+)$")


def _properties(title: str) -> dict[str, str]:
    """hOCR title properties: `name value...` pairs separated by `;`."""
    pairs = (item.strip().split(" ", 1) for item in title.split(";"))
    return {name: value for name, value in pairs}


def _xpath(element: etree._Element, cls: str) -> list[etree._Element]:
    found = element.xpath(f".//*[@class='{cls}']")
    assert isinstance(found, list)
    return [e for e in found if isinstance(e, etree._Element)]


def test_hocr_is_xhtml_with_one_ocr_page_per_page(pages: list[FormatPage]) -> None:
    data = hocr_document(pages, version="5.5.4")
    assert data.startswith(b"<?xml")
    assert b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"' in data
    root = etree.fromstring(data)  # well-formed XML
    assert root.tag == f"{{{XHTML}}}html"
    metas = {m.get("name"): m.get("content") for m in root.iter(f"{{{XHTML}}}meta")}
    assert metas["ocr-system"] == "tesseract 5.5.4 via ocr-platform"
    assert set(str(metas["ocr-capabilities"]).split()) == {
        "ocr_page",
        "ocr_carea",
        "ocr_par",
        "ocr_line",
        "ocrx_word",
        "ocrp_wconf",
    }
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids)), "ids are unique in the document"
    page_divs = _xpath(root, "ocr_page")
    assert len(page_divs) == len(pages)
    for div, page in zip(page_divs, pages, strict=True):
        result = page.result
        props = _properties(str(div.get("title")))
        assert props["image"] == f'"{page.number}"'
        assert props["bbox"] == f"0 0 {result.width} {result.height}"
        assert props["ppageno"] == str(page.number - 1)
        assert div.get("id") == f"page_{page.number}"
        areas = _xpath(div, "ocr_carea")
        assert len(areas) == len(result.blocks)
        assert len(_xpath(div, "ocr_par")) == sum(len(b.paragraphs) for b in result.blocks)
        hocr_lines = _xpath(div, "ocr_line")
        assert len(hocr_lines) == len(list(_lines(result.blocks)))
        for element, line in zip(hocr_lines, _lines(result.blocks), strict=True):
            box = line.box
            expected = (box.left, box.top, box.left + box.width, box.top + box.height)
            match = _BBOX.match(str(element.get("title")))
            assert match is not None
            assert tuple(map(int, match.groups())) == expected
        spans = _xpath(div, "ocrx_word")
        assert [s.text for s in spans] == [w.text for w in _words(result)]
        for span, word in zip(spans, _words(result), strict=True):
            match = _WORD_TITLE.match(str(span.get("title")))
            assert match is not None, span.get("title")
            left, top, right, bottom, conf = map(int, match.groups())
            assert (left, top, right - left, bottom - top) == (
                word.left,
                word.top,
                word.width,
                word.height,
            )
            assert conf == round(word.confidence)
            assert span.tag == f"{{{XHTML}}}span"


def test_hocr_escapes_text_and_reads_as_html_too() -> None:
    pages = [*tricky_page(), *[FormatPage(2, p.result, p.image) for p in empty_page()]]
    data = hocr_document(pages)  # the version of the Tesseract tesserocr loads
    assert re.search(rb'content="tesseract \d+\.\d+\.\d+ via ocr-platform"', data)
    assert b"<script>" not in data
    assert b"&lt;script&gt;" in data
    assert b"a&amp;b" in data
    document = html.fromstring(data)
    # An HTML parser (as many hOCR tools use) sees the same pages: an empty one is closed.
    page_divs = document.xpath("//div[@class='ocr_page']")
    assert [d.get("id") for d in page_divs] == ["page_1", "page_2"]
    assert len(page_divs[1]) == 0
    words = [s.text for s in document.xpath("//span[@class='ocrx_word']")]
    assert words == TRICKY


def test_text_xml_cannot_hold_is_dropped_not_fatal() -> None:
    result = build_result([[[["a\x0cb", "c\x00"]]]], dpi=300)
    pages = [FormatPage(1, result)]
    spans = _xpath(etree.fromstring(hocr_document(pages)), "ocrx_word")
    assert [s.text for s in spans] == ["ab", "c"]
    strings = etree.fromstring(alto_document(pages)).iter(f"{{{ALTO_NS}}}String")
    assert [s.get("CONTENT") for s in strings] == ["ab", "c"]


# --- ALTO ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alto_schema() -> xmlschema.XMLSchema:
    """The official ALTO 4.4 schema, its XLink import served by the local stub: no network."""
    xlink = (SCHEMAS / "xlink" / "xlink.xsd").resolve()
    schema = xmlschema.XMLSchema(
        str(SCHEMAS / "alto" / "alto-4-4.xsd"),
        locations={"http://www.w3.org/1999/xlink": str(xlink)},
        allow="local",
    )
    loaded = schema.maps.namespaces["http://www.w3.org/1999/xlink"]
    assert [Path(str(s.url).removeprefix("file://")) for s in loaded] == [xlink]
    return schema


def _alto(tag: str) -> str:
    return f"{{{ALTO_NS}}}{tag}"


def test_alto_is_valid_and_holds_every_word(
    pages: list[FormatPage], alto_schema: xmlschema.XMLSchema
) -> None:
    data = alto_document(pages, version="5.5.4")
    alto_schema.validate(data)  # raises on the first error
    root = etree.fromstring(data)
    assert root.get("SCHEMAVERSION") == "4.4"
    assert root.findtext(f".//{_alto('MeasurementUnit')}") == "pixel"
    software = root.find(f".//{_alto('processingSoftware')}")
    assert software is not None
    assert software.findtext(_alto("softwareName")) == "tesseract"
    assert software.findtext(_alto("softwareVersion")) == "5.5.4"
    page_elements = root.findall(f"{_alto('Layout')}/{_alto('Page')}")
    assert len(page_elements) == len(pages)
    for element, page in zip(page_elements, pages, strict=True):
        result = page.result
        assert element.get("ID") == f"page_{page.number}"
        assert element.get("PHYSICAL_IMG_NR") == str(page.number)
        assert (element.get("WIDTH"), element.get("HEIGHT")) == (
            str(result.width),
            str(result.height),
        )
        blocks = element.findall(f"{_alto('PrintSpace')}/{_alto('ComposedBlock')}")
        assert len(blocks) == len(result.blocks)
        assert len(list(element.iter(_alto("TextBlock")))) == sum(
            len(b.paragraphs) for b in result.blocks
        )
        assert len(list(element.iter(_alto("TextLine")))) == len(list(_lines(result.blocks)))
        strings = list(element.iter(_alto("String")))
        words = _words(result)
        assert [s.get("CONTENT") for s in strings] == [w.text for w in words]
        for string, word in zip(strings, words, strict=True):
            wc = float(str(string.get("WC")))
            assert 0.0 <= wc <= 1.0
            assert wc == pytest.approx(word.confidence / 100, abs=1e-4)
            assert [int(str(string.get(a))) for a in ("HPOS", "VPOS", "WIDTH", "HEIGHT")] == [
                word.left,
                word.top,
                word.width,
                word.height,
            ]
        for line in element.iter(_alto("TextLine")):
            children = [etree.QName(c).localname for c in line]
            # String, SP, String, ..., String: a space between words, none at the ends.
            assert children[::2] == ["String"] * ((len(children) + 1) // 2)
            assert children[1::2] == ["SP"] * (len(children) // 2)


def test_alto_of_tesseracts_layout_is_valid(
    phototest: Image.Image, alto_schema: xmlschema.XMLSchema
) -> None:
    result, _ = _tesseract_layout(phototest)
    alto_schema.validate(alto_document([FormatPage(1, result)]))


# --- PDF -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pdftotext() -> str:
    path = shutil.which("pdftotext")
    # `make test` installs it (scripts/install-system-deps.sh): its absence is a broken setup.
    assert path is not None, "pdftotext is missing: run `make system-deps` (Debian's poppler-utils)"
    return path


def _pdftotext(binary: str, pdf: bytes, *args: str) -> str:
    done = subprocess.run(
        [binary, *args, "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True
    )
    return done.stdout.decode("utf-8")


def _dpi(page: FormatPage) -> float:
    return page.result.dpi or 300.0


def test_pdf_pages_hold_the_images_unresampled(pages: list[FormatPage]) -> None:
    data = pdf_document(pages, version="5.5.4")
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert pdf.check_pdf_syntax() == []  # qpdf's structural check
        assert len(pdf.pages) == len(pages)
        assert "ocr-platform" in str(pdf.docinfo["/Producer"])
        assert "5.5.4" in str(pdf.docinfo["/Producer"])
        for pdf_page, page in zip(pdf.pages, pages, strict=True):
            assert page.image is not None
            scale = 72 / _dpi(page)
            box = [float(v) for v in pdf_page.mediabox]
            assert box == pytest.approx(
                [0, 0, page.result.width * scale, page.result.height * scale], abs=0.001
            )
            images = list(pdf_page.get_images().values())
            assert len(images) == 1
            image = images[0]
            bits = {"1": 1, "L": 8, "RGB": 8}[page.image.mode]
            space = {"1": "/DeviceGray", "L": "/DeviceGray", "RGB": "/DeviceRGB"}[page.image.mode]
            assert (int(image.Width), int(image.Height)) == page.image.size
            assert image.BitsPerComponent == bits
            assert image.ColorSpace == pikepdf.Name(space)
            assert image.Filter == pikepdf.Name.FlateDecode
            assert image.read_bytes() == page.image.tobytes(), "the pixels, losslessly"


def test_pdf_text_reads_in_order(pages: list[FormatPage], pdftotext: str) -> None:
    text = _pdftotext(pdftotext, pdf_document(pages), "-raw")
    page_texts = text.split("\f")
    for page_text, page in zip(page_texts, pages, strict=False):
        assert page_text.split() == [w.text for w in _words(page.result)]
        # Lines stay lines.
        expected = [" ".join(w.text for w in ln.words) for ln in _lines(page.result.blocks)]
        assert [ln for ln in page_text.splitlines() if ln] == expected


def _bbox_words(xhtml: str) -> list[list[tuple[str, tuple[float, float, float, float]]]]:
    """pdftotext -bbox's words per page: text and xMin, yMin, xMax, yMax in points."""
    root = html.document_fromstring(xhtml)
    pages = []
    for page in root.iter("page"):
        words = []
        for word in page.iter("word"):
            x0, y0, x1, y1 = (float(str(word.get(k))) for k in ("xmin", "ymin", "xmax", "ymax"))
            words.append((str(word.text), (x0, y0, x1, y1)))
        pages.append(words)
    return pages


def test_pdf_words_lie_on_their_boxes(pages: list[FormatPage], pdftotext: str) -> None:
    found = _bbox_words(_pdftotext(pdftotext, pdf_document(pages), "-bbox"))
    assert len(found) == len(pages)
    for page_words, page in zip(found, pages, strict=True):
        scale = 72 / _dpi(page)
        words = _words(page.result)
        assert [text for text, _ in page_words] == [w.text for w in words]
        for (_, box), word in zip(page_words, words, strict=True):
            expected = (
                word.left * scale,
                word.top * scale,
                (word.left + word.width) * scale,
                (word.top + word.height) * scale,
            )
            assert box == pytest.approx(expected, abs=BOX_TOLERANCE_PT), word.text


def test_pdf_of_tesseracts_layout_on_its_scan(phototest: Image.Image, pdftotext: str) -> None:
    result, _ = _tesseract_layout(phototest)
    assert phototest.info["dpi"] == (200.0, 200.0)
    page = FormatPage(1, dataclasses.replace(result, dpi=200.0), phototest)
    data = pdf_document([page])
    words = [w.text for w in result.words]
    assert _pdftotext(pdftotext, data, "-raw").split() == words
    (found,) = _bbox_words(_pdftotext(pdftotext, data, "-bbox"))
    assert [text for text, _ in found] == words
    for (_, box), word in zip(found, result.words, strict=True):
        expected = (word.left, word.top, word.left + word.width, word.top + word.height)
        assert box == pytest.approx([v * 72 / 200 for v in expected], abs=BOX_TOLERANCE_PT)
    with pikepdf.open(io.BytesIO(data)) as pdf:
        (image,) = pdf.pages[0].get_images().values()
        assert [int(image[k]) for k in ("/Width", "/Height", "/BitsPerComponent")] == [640, 480, 1]
        assert image.read_bytes() == phototest.tobytes()
        assert [float(v) for v in pdf.pages[0].mediabox] == [0, 0, 230.4, 172.8]


def test_pdf_embeds_the_glyphless_font_with_a_tounicode_map() -> None:
    data = pdf_document(tricky_page())
    with pikepdf.open(io.BytesIO(data)) as pdf:
        font = pdf.pages[0].Resources.Font.F1
        assert font.Subtype == pikepdf.Name.Type0
        assert font.Encoding == pikepdf.Name("/Identity-H")
        (cid_font,) = font.DescendantFonts
        assert cid_font.Subtype == pikepdf.Name.CIDFontType2
        assert cid_font.CIDToGIDMap.read_bytes() == b"\x00\x01" * 0x10000
        assert cid_font.FontDescriptor.FontFile2.read_bytes() == DEFAULT_FONT.read_bytes()
        cmap = font.ToUnicode.read_bytes().decode("ascii")
        # The emoji (beyond the BMP) has a CID of its own mapped to its surrogate pair.
        assert "<D800> <D83DDE00>" in cmap
        content = pdf.pages[0].Contents.read_bytes()
        assert b"\n3 Tr\n" in content  # invisible
        assert b"<D800006F006B0020> Tj" in content  # 😀ok: its CID, o, k, then a space


def test_poppler_sees_one_embedded_font_with_unicode(pdftotext: str) -> None:
    pdffonts = Path(pdftotext).with_name("pdffonts")
    done = subprocess.run(
        [str(pdffonts), "-"], input=pdf_document(three_pages()), capture_output=True, check=True
    )
    rows = done.stdout.decode().splitlines()[2:]
    assert len(rows) == 1, "one font object shared by every page"
    name, kind, encoding, emb, sub, uni = rows[0].split()[:2] + rows[0].split()[3:7]
    assert (name, encoding, emb, sub, uni) == ("GlyphLessFont", "Identity-H", "yes", "no", "yes")
    assert kind == "CID"


def test_pdf_page_without_an_image_has_the_text_layer_alone(pdftotext: str) -> None:
    result = build_result(THREE_BLOCKS, dpi=300)
    data = pdf_document([FormatPage(1, result)])
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert list(pdf.pages[0].get_images()) == []
    assert _pdftotext(pdftotext, data, "-raw").split() == [w.text for w in _words(result)]


def test_pdf_converts_other_image_modes_losslessly_enough() -> None:
    rgba = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
    result = build_result([], width=40, height=20)
    data = pdf_document([FormatPage(1, result, rgba)])
    with pikepdf.open(io.BytesIO(data)) as pdf:
        (image,) = pdf.pages[0].get_images().values()
        assert image.ColorSpace == pikepdf.Name.DeviceRGB
        assert zlib.decompress(image.read_raw_bytes()) == b"\xff" * (40 * 20 * 3)  # on white
