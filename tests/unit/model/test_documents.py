"""The engine reads PDF pages and a chosen page of a multi-page file, within its limits.

PDFs are built at test time (`tests/support/model_documents.py`): scanned pages from rendered
images, born-digital pages in Helvetica, hostile ones byte by byte. Real Tesseract reads the
rendered pages; the searchable PDF's text layer alone is checked with pikepdf and poppler.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pikepdf
import pytest
from lxml import html
from PIL import Image

import contract
from model.codec import parse_options, parse_output_options
from model.engine import (
    EngineTimeoutError,
    InvalidImageError,
    InvalidOptionError,
    OcrEngine,
    OcrOptions,
    ResultCache,
    TesserocrBackend,
    pdf_pages,
)
from model.engine.image import DEFAULT_LIMITS, DecodeLimits, load, probe
from model.formats import FormatPage
from model.formats.pdf import pdf_document
from model.settings import ModelSettings
from tests.support import hostile
from tests.support import model_documents as docs
from tests.support.images import encode, render_lines
from tests.support.text import cer, normalize

pytestmark = pytest.mark.unit

#: A refusal reads headers or a page tree: milliseconds. The bound leaves room for a loaded
#: machine.
REFUSED_WITHIN_S = 1.0
#: How far (points) poppler's word box may lie from the OCR box converted to points.
BOX_TOLERANCE_PT = 3.0
PAGES = ("Alpha invoice one", "Bravo receipt two", "Charlie order three")


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine(TesserocrBackend(ModelSettings().tessdata_dir), max_pixels=40_000_000)


# --- PDF pages, rendered and read ---


def test_a_scanned_pdf_page_is_read_at_its_own_pixels(engine: OcrEngine) -> None:
    page = render_lines(["Scanned statement total 42.50", "Payment within thirty days"])
    result = engine.recognize(docs.scanned_pdf([page], dpi=300), OcrOptions())
    assert cer("Scanned statement total 42.50 Payment within thirty days", result.text) <= 0.02
    # The page is the image's size at 300 dpi: rendered at 300 dpi, the same pixels again.
    assert (result.width, result.height) == page.size
    assert (result.dpi, result.page, result.page_count) == (300.0, 1, 1)


def test_a_born_digital_page_is_rendered_at_the_dpi_asked_for(engine: OcrEngine) -> None:
    data = docs.vector_pdf([["Quarterly report for the board", "Revenue grew by nine percent"]])
    at_300 = engine.recognize(data, OcrOptions())
    at_150 = engine.recognize(data, OcrOptions(dpi=150))
    for result in (at_300, at_150):
        assert normalize(result.text) == normalize(
            "Quarterly report for the board Revenue grew by nine percent"
        )
    # A4 (595 x 842 pt) at 300 and 150 dpi.
    assert (at_300.width, at_300.height, at_300.dpi) == (2479, 3508, 300.0)
    assert (at_150.width, at_150.height, at_150.dpi) == (1240, 1754, 150.0)


def test_the_page_asked_for_is_read_and_counted(engine: OcrEngine) -> None:
    data = docs.vector_pdf([[text] for text in PAGES])
    for number, text in enumerate(PAGES, 1):
        result = engine.recognize(data, OcrOptions(page=number))
        assert result.text.strip() == text
        assert (result.page, result.page_count) == (number, 3)


def test_a_page_past_the_end_says_how_many_there_are(engine: OcrEngine) -> None:
    with pytest.raises(InvalidImageError, match="page 4 was asked for; the PDF has 3 pages"):
        engine.recognize(docs.vector_pdf([[text] for text in PAGES]), OcrOptions(page=4))


def test_a_rotated_page_is_rendered_as_a_reader_shows_it(engine: OcrEngine) -> None:
    lines = ["Landscape table of contents", "Chapter one begins on page four"]
    data = docs.vector_pdf([lines], rotate=90)
    rendered = probe(data, dpi=150)
    assert (rendered.width, rendered.height) == (1754, 1240)  # /Rotate 90: the page turned
    result = engine.recognize(data, OcrOptions(dpi=150, rotate="auto"))
    # The text ran down the turned page: orientation detection turned it back upright.
    assert (result.rotation, result.width, result.height) == (270, 1240, 1754)
    assert normalize(result.text) == normalize(" ".join(lines))


def test_the_header_may_follow_junk_within_1024_bytes(engine: OcrEngine) -> None:
    data = b"\x00" * 1000 + docs.vector_pdf([["Late header accepted"]])
    assert engine.recognize(data, OcrOptions()).text.strip() == "Late header accepted"
    with pytest.raises(InvalidImageError, match="not an image in a supported format"):
        probe(b"\x00" * 1024 + docs.vector_pdf([["Too late"]]))


def test_an_image_that_mentions_pdf_is_still_an_image() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "%PDF-1.7 not a document")
    found = probe(encode(render_lines(["Still a PNG"]), pnginfo=info))
    assert (found.format, found.pages) == ("PNG", 1)


def test_pdf_page_facts_come_from_the_page_tree() -> None:
    found = probe(docs.vector_pdf([[text] for text in PAGES]), page=2, dpi=72)
    assert (found.format, found.mode, found.frames, found.pages, found.page) == (
        "PDF",
        "L",
        3,
        3,
        2,
    )
    assert (found.width, found.height) == (595, 842)
    assert found.decoded_bytes == 595 * 842  # one byte a gray pixel, never copied


def test_pages_render_safely_from_many_threads() -> None:
    """PDFium is not thread-safe: the engine's lock makes concurrent renders exact."""
    data = docs.vector_pdf([[text] for text in PAGES])
    expected = [load(data, page=page, dpi=100)[0].tobytes() for page in (1, 2, 3)]

    def render(index: int) -> bytes:
        return load(data, page=index % 3 + 1, dpi=100)[0].tobytes()

    with ThreadPoolExecutor(4) as threads:
        rendered = list(threads.map(render, range(24)))
    assert rendered == [expected[index % 3] for index in range(24)]


# --- the bounds: refused before any pixel is drawn ---


def refused(data: bytes, message: str, **kwargs: object) -> float:
    """Seconds `load` takes to refuse `data` with an InvalidImageError matching `message`."""
    started = time.perf_counter()
    with pytest.raises(InvalidImageError, match=message) as caught:
        load(data, **kwargs)  # type: ignore[arg-type]
    assert "Pdfium" not in str(caught.value)
    assert "Error" not in str(caught.value)
    return time.perf_counter() - started


def test_a_200_inch_page_is_refused_from_its_size_alone() -> None:
    data = docs.blank_pdf((14_400, 14_400))  # 200 x 200 inches, PDF's largest page
    seconds = refused(
        data,
        "page 1 of the PDF is 200.0x200.0 inches: at 600 dpi that is 120000x120000 pixels; "
        "the limit is 40000000 pixels: the page is too large to read even at 72 dpi",
        dpi=600,
    )
    # Rendering 14.4 gigapixels would take minutes and 13 GiB: the refusal takes milliseconds.
    assert seconds < 0.1


def test_a_large_page_is_told_the_dpi_that_fits() -> None:
    poster = docs.blank_pdf((24 * 72, 36 * 72))  # 24 x 36 inches
    assert (
        refused(
            poster,
            r"24.0x36.0 inches: at 300 dpi that is 7200x10800 pixels; the limit is 40000000 "
            r"pixels: send a lower dpi \(at most 215\)",
        )
        < REFUSED_WITHIN_S
    )
    assert load(poster, dpi=215)[0].size == (5160, 7740)


def test_the_decoded_bytes_budget_holds_for_pdf_pages() -> None:
    letter = docs.blank_pdf((612, 792))
    limits = DecodeLimits(max_decoded_bytes=16 * 1024 * 1024)
    refused(
        letter,
        r"rendering page 1 of the PDF \(8.5x11.0 inches\) at 600 dpi would take about 33 MiB; "
        r"the limit is 16 MiB: send a lower dpi \(at most 423\)",
        limits=limits,
        dpi=600,
    )
    assert load(letter, limits, dpi=423)[0].size == (3596, 4653)


def test_the_page_count_is_held_to_the_frame_limit() -> None:
    assert (
        refused(docs.shared_page_pdf(65), "the PDF holds 65 pages; the limit is 64")
        < REFUSED_WITHIN_S
    )
    assert probe(docs.shared_page_pdf(64), page=64).pages == 64


def test_150_000_pages_are_counted_in_milliseconds() -> None:
    assert refused(docs.shared_page_pdf(150_000), "holds 150000 pages") < REFUSED_WITHIN_S


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (docs.encrypted_pdf, "the PDF is password-protected: send it without a password"),
        (lambda: b"%PDF-1.7\n" + b"junk " * 1000, "the PDF is damaged, truncated or not a PDF"),
        (
            lambda: docs.vector_pdf([["Cut short"]])[:300],
            "the PDF is damaged, truncated or not a PDF",
        ),
        (lambda: docs.shared_page_pdf(0), "the PDF has no pages"),
        (lambda: b"%PDF-", "the PDF is damaged, truncated or not a PDF"),
    ],
    ids=["encrypted", "junk", "truncated", "no-pages", "header-only"],
)
def test_unreadable_pdfs_are_clear_invalid_images(make: object, message: str) -> None:
    assert callable(make)
    assert refused(make(), message) < REFUSED_WITHIN_S


def test_a_pdf_readable_without_a_password_is_read(engine: OcrEngine) -> None:
    """Encrypted with an owner password only (permissions): any reader opens it."""
    with pikepdf.open(io.BytesIO(docs.vector_pdf([["Owner locked page"]]))) as pdf:
        out = io.BytesIO()
        pdf.save(out, encryption=pikepdf.Encryption(user="", owner="owner-password"))
    assert engine.recognize(out.getvalue(), OcrOptions()).text.strip() == "Owner locked page"


def test_rendering_stops_at_the_deadline() -> None:
    data = docs.slow_pdf()  # ~3 s to draw at 300 dpi
    started = time.perf_counter()
    with pytest.raises(EngineTimeoutError, match="page 1 of the PDF was rendered"):
        load(data, DEFAULT_LIMITS, deadline=started + 0.2)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (OcrOptions(dpi=71), "dpi 71 is out of range: use 72..600"),
        (OcrOptions(dpi=601), "dpi 601 is out of range: use 72..600"),
        (OcrOptions(page=0), "page 0 is out of range: use 1..100000"),
    ],
)
def test_page_and_dpi_are_bounded(engine: OcrEngine, options: OcrOptions, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        engine.recognize(docs.vector_pdf([["Bounds"]]), options)


def test_another_page_or_dpi_is_another_cached_result() -> None:
    data = docs.vector_pdf([[text] for text in PAGES])
    keys = {
        asyncio.run(ResultCache.key(data, options))
        for options in (OcrOptions(), OcrOptions(page=2), OcrOptions(dpi=150))
    }
    assert len(keys) == 3


def test_page_and_dpi_are_parsed_from_v2_parameters() -> None:
    defaults = OcrOptions()
    parsed = parse_options({"page": 3, "dpi": "150"}, defaults)
    assert (parsed.page, parsed.dpi) == (3, 150)
    assert (parse_options({}, defaults).page, parse_options({}, defaults).dpi) == (1, 300)
    assert parse_output_options({"pdf_text_only": "true"}).pdf_text_only is True
    assert parse_output_options(None).pdf_text_only is False


# --- a chosen frame of a multi-page TIFF or GIF ---


def test_a_chosen_tiff_page_is_read(engine: OcrEngine) -> None:
    pages = [render_lines([text], width=1000 + 100 * index) for index, text in enumerate(PAGES)]
    data = docs.multipage(pages, "TIFF")
    for number, (text, image) in enumerate(zip(PAGES, pages, strict=True), 1):
        result = engine.recognize(data, OcrOptions(page=number))
        assert result.text.strip() == text
        assert (result.width, result.height) == image.size  # each page its own size
        assert (result.page, result.page_count) == (number, 3)
    with pytest.raises(InvalidImageError, match="page 4 was asked for; the TIFF file has 3 pages"):
        engine.recognize(data, OcrOptions(page=4))


def test_a_chosen_gif_frame_is_read(engine: OcrEngine) -> None:
    data = docs.multipage([render_lines([text], width=1000) for text in PAGES], "GIF")
    result = engine.recognize(data, OcrOptions(page=3))
    assert result.text.strip() == PAGES[2]
    assert (result.page, result.page_count) == (3, 3)


def test_single_images_have_one_page(engine: OcrEngine) -> None:
    data = encode(render_lines(["Only page"]))
    assert engine.recognize(data, OcrOptions()).page_count == 1
    with pytest.raises(InvalidImageError, match=r"page 2 was asked for; the PNG file has 1 page$"):
        engine.recognize(data, OcrOptions(page=2))


def test_reaching_a_late_gif_frame_is_bounded_by_the_frames_before_it() -> None:
    frames = [Image.new("L", (300, 300), shade) for shade in range(0, 240, 30)]  # 8 frames
    data = docs.multipage(frames, "GIF")
    limits = DecodeLimits(max_pixels=100_000)  # 4 x 100 000 pixels may be decoded to reach it
    assert load(data, limits, page=4)[1].page == 4  # 360 000 pixels
    refused(
        data,
        "reading frame 5 of the 300x300 GIF decodes the 4 before it: 450000 pixels; "
        "the limit is 400000",
        limits=limits,
        page=5,
    )


def test_every_tiff_page_up_to_the_one_read_is_checked() -> None:
    """Pillow parses the tags of each page on its way: a flood on page 1 refuses page 2."""
    flood = bytearray(hostile.tiff_strip_flood(100_000))
    (ifd,) = struct.unpack_from("<I", flood, 4)
    (entries,) = struct.unpack_from("<H", flood, ifd)
    next_at = ifd + 2 + 12 * entries
    small = docs.multipage([Image.new("L", (8, 8), 255)], "TIFF")
    (small_ifd,) = struct.unpack_from("<I", small, 4)
    # The one-page TIFF's IFD, its offsets moved to where it is appended.
    base = len(flood) + (len(flood) % 2)
    flood += b"\x00" * (base - len(flood)) + small
    struct.pack_into("<I", flood, next_at, base + small_ifd)
    data = bytes(flood)
    with pytest.raises(InvalidImageError, match="the TIFF's first page has 100000 strips"):
        probe(data, page=2)


def test_the_tags_on_the_way_to_a_tiff_page_are_bounded() -> None:
    """Two pages of 40 000 (meaningless) tags each: Pillow would parse 80 000 in Python."""
    entries, ifd_size = 40_000, 2 + 12 * 40_000 + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for page in range(2):
        following = 8 + (page + 1) * ifd_size if page == 0 else 0
        out += struct.pack("<H", entries) + struct.pack("<HHII", 65_000, 2, 1, 0) * entries
        out += struct.pack("<I", following)
    seconds = refused(bytes(out), "the TIFF's pages up to page 2 hold more than 65536 tags", page=2)
    assert seconds < REFUSED_WITHIN_S


def test_150_000_tiff_pages_are_still_refused_in_milliseconds() -> None:
    data = hostile.tiff_many_pages()
    for page in (1, 2, 64):
        assert refused(data, "more than 64 frames or pages", page=page) < REFUSED_WITHIN_S, page


# --- the text layer alone ---


@pytest.fixture(scope="module")
def pdftotext() -> str:
    path = shutil.which("pdftotext")
    assert path is not None, "pdftotext is missing: run `make system-deps` (Debian's poppler-utils)"
    return path


def _bbox_words(binary: str, pdf: bytes) -> list[tuple[str, tuple[float, ...]]]:
    done = subprocess.run(
        [binary, "-bbox", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True
    )
    root = html.document_fromstring(done.stdout.decode("utf-8"))
    return [
        (str(word.text), tuple(float(str(word.get(k))) for k in ("xmin", "ymin", "xmax", "ymax")))
        for word in root.iter("word")
    ]


def test_the_text_only_pdf_is_the_invisible_layer_on_a_page_of_the_same_size(
    engine: OcrEngine, pdftotext: str
) -> None:
    source = docs.vector_pdf([["Grafted text layer", "lies over the page"]], size_pt=(612, 792))
    read = engine.read(source, OcrOptions(dpi=200), keep_image=True)
    page = FormatPage(read.result.page, read.result, read.image)
    full, text_only = pdf_document([page]), pdf_document([page], text_only=True)
    with pikepdf.open(io.BytesIO(text_only)) as pdf:
        (only,) = pdf.pages
        assert list(only.get_images()) == []
        assert "/XObject" not in only.Resources
        assert b"3 Tr" in only.Contents.read_bytes()
        # 612 x 792 pt read at 200 dpi: 1700 x 2200 px, back to the same page size.
        assert [float(v) for v in only.mediabox] == pytest.approx([0, 0, 612, 792], abs=0.01)
    with pikepdf.open(io.BytesIO(full)) as pdf:
        assert len(pdf.pages[0].get_images()) == 1
    assert len(text_only) < len(full) / 2
    scale = 72 / 200
    found = _bbox_words(pdftotext, text_only)
    assert [text for text, _ in found] == [word.text for word in read.result.words]
    for (_, box), word in zip(found, read.result.words, strict=True):
        expected = (
            word.left * scale,
            word.top * scale,
            (word.left + word.width) * scale,
            (word.top + word.height) * scale,
        )
        assert box == pytest.approx(expected, abs=BOX_TOLERANCE_PT), word.text


def test_the_text_layer_grafts_onto_the_original_page(engine: OcrEngine, pdftotext: str) -> None:
    """What the layer is for: laid over the PDF page it was read from, at its render dpi."""
    scan = render_lines(["Scanned contract page", "signed by both parties"], font_px=40)
    source = docs.scanned_pdf([scan], dpi=300)
    read = engine.read(source, OcrOptions())
    layer = pdf_document([FormatPage(1, read.result)], text_only=True)
    with pikepdf.open(io.BytesIO(source)) as original, pikepdf.open(io.BytesIO(layer)) as text:
        page = original.pages[0]
        page.add_overlay(text.pages[0], pikepdf.Rectangle(page.mediabox))
        out = io.BytesIO()
        original.save(out)
    words = [text for text, _ in _bbox_words(pdftotext, out.getvalue())]
    assert normalize(" ".join(words)) == normalize("Scanned contract page signed by both parties")
    with pikepdf.open(io.BytesIO(out.getvalue())) as grafted:
        (image,) = grafted.pages[0].get_images().values()
        assert (int(image.Width), int(image.Height)) == scan.size  # the original, untouched


def test_contract_names_the_new_parameters() -> None:
    names = [spec.name for spec in contract.PARAMETERS]
    assert {"page", "dpi", "pdf_text_only"} <= set(names)
    assert (contract.DPI.minimum, contract.DPI.maximum, contract.DEFAULT_DPI) == (72, 600, 300)
    facts = contract.PageFacts.model_validate_json(
        '{"page": 1, "width": 1, "height": 1, "dpi": null, "rotation": 0,'
        ' "rotation_confidence": null, "skew": 0, "text": "", "confidence": 0, "words": [],'
        ' "timings": {"queue_s": 0, "decode_s": 0, "preprocess_s": 0, "recognize_s": 0}}'
    )
    assert (facts.page_count, facts.source) == (1, "ocr")  # older model servers' facts


# --- pdf_text=keep: a born-digital page's own text ---


@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_a_pages_own_words_are_boxed_where_the_render_draws_them(rotate: int) -> None:
    pdf = docs.vector_pdf([["Boxed words here", "next line"]], rotate=rotate)
    size, words = pdf_pages.page_words(pdf, 1, 150, DEFAULT_LIMITS)
    lines: dict[int, list[str]] = {}
    for word in words:
        lines.setdefault(word.line, []).append(word.text)
    # Words in order within their line; PDFium may give a turned page's lines either way.
    assert sorted(" ".join(line) for line in lines.values()) == ["Boxed words here", "next line"]
    rendered, _ = load(pdf, page=1, dpi=150)
    for word in words:
        assert 0 <= word.left < word.right <= size.width
        assert 0 <= word.top < word.bottom <= size.height
        # Each box holds ink of the rendered page: the word is drawn where its box says.
        crop = rendered.crop((word.left, word.top, word.right, word.bottom))
        low, _high = crop.getextrema()
        assert isinstance(low, int)
        assert low < 128, word


def test_keep_reads_a_text_page_without_ocr_and_ocr_when_it_has_none() -> None:
    engine = OcrEngine(TesserocrBackend(ModelSettings().tessdata_dir), max_pixels=40_000_000)
    kept = engine.read(docs.vector_pdf([["Own text 7"]]), OcrOptions(pdf_text="keep")).result
    assert (kept.text, kept.source, kept.confidence) == ("Own text 7\n", "pdf", 100.0)
    assert kept.timings.recognize_s == 0.0
    scan = docs.scanned_pdf(docs.line_pages("Scanned text"))
    read = engine.read(scan, OcrOptions(pdf_text="keep")).result
    assert read.source == "ocr"
    assert read.text.strip() == "Scanned text"
    assert parse_options({"pdf_text": "keep"}, OcrOptions()).pdf_text == "keep"
    with pytest.raises(InvalidOptionError, match="pdf_text"):
        OcrOptions(pdf_text="maybe").validate(frozenset({"eng"}))
