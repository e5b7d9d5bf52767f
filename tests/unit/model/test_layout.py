"""One recognition captures the layout: blocks of paragraphs of lines of words, with boxes.

Both backends (tesserocr's result iterator, pytesseract's TSV) give the same structure, the
words flattened from it are the result's words in reading order, and every word's block,
paragraph and line numbers are its place in that structure.
"""

from __future__ import annotations

import pytest

from model.engine import OcrEngine, OcrOptions, OcrResult, PytesseractBackend, TesserocrBackend
from model.engine.backends import parse_tsv
from model.engine.types import Box, Word, words_of
from model.settings import ModelSettings
from tests.support.images import TESTDATA, encode, render_page
from tests.support.text import cer

pytestmark = pytest.mark.unit

TESSDATA = ModelSettings().tessdata_dir


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine(TesserocrBackend(TESSDATA), max_pixels=40_000_000)


def contains(outer: Box, inner: Box | Word, slack: int = 0) -> bool:
    return (
        outer.left - slack <= inner.left
        and outer.top - slack <= inner.top
        and inner.left + inner.width <= outer.left + outer.width + slack
        and inner.top + inner.height <= outer.top + outer.height + slack
    )


def check_layout(result: OcrResult) -> None:
    """The blocks hold exactly the result's words, numbered by their place in the layout."""
    assert words_of(result.blocks) == result.words
    for b, block in enumerate(result.blocks, 1):
        assert block.paragraphs, "no empty block"
        line_in_block = 0
        for p, paragraph in enumerate(block.paragraphs, 1):
            assert paragraph.lines, "no empty paragraph"
            assert contains(block.box, paragraph.box)
            for line in paragraph.lines:
                assert line.words, "no empty line"
                line_in_block += 1
                assert contains(paragraph.box, line.box)
                for word in line.words:
                    assert (word.block, word.paragraph, word.line) == (b, p, line_in_block)
                    assert contains(line.box, word, slack=1)
                    assert word.width > 0
                    assert word.height > 0


def test_a_page_of_paragraphs_is_one_block_of_paragraphs_of_lines(engine: OcrEngine) -> None:
    image, truth = render_page()
    result = engine.recognize(encode(image), OcrOptions())
    assert cer(truth, result.text) <= 0.01
    check_layout(result)
    # render_page: 4 paragraphs of 5 lines of 9 words, set apart by blank lines: Tesseract
    # makes each a block (and splits some into paragraphs by its own rules).
    assert [sum(len(p.lines) for p in block.paragraphs) for block in result.blocks] == [5] * 4
    lines = [line for block in result.blocks for p in block.paragraphs for line in p.lines]
    assert [len(line.words) for line in lines] == [9] * 20
    # Lines count within their block, across its paragraphs.
    assert [w.line for w in result.words if w.block == 2] == [
        n for n in range(1, 6) for _ in range(9)
    ]


@pytest.mark.parametrize("name", ["phototest.tif", "eurotext.tif"])
def test_real_scans_layout_is_consistent_with_the_words(engine: OcrEngine, name: str) -> None:
    result = engine.recognize((TESTDATA / name).read_bytes(), OcrOptions())
    assert result.blocks
    check_layout(result)


def test_phototest_has_tesseracts_blocks_and_paragraphs(engine: OcrEngine) -> None:
    """phototest.tif as `tesseract phototest.tif - tsv` lays it out: one block holding the
    page's two paragraphs, of 3 and 5 lines."""
    result = engine.recognize((TESTDATA / "phototest.tif").read_bytes(), OcrOptions())
    assert len(result.blocks) == 1
    assert [len(p.lines) for p in result.blocks[0].paragraphs] == [3, 5]
    assert [w.text for w in result.blocks[0].paragraphs[1].lines[0].words][:3] == [
        "The",
        "quick",
        "brown",
    ]


def test_a_blank_page_has_no_blocks(engine: OcrEngine) -> None:
    from PIL import Image

    result = engine.recognize(encode(Image.new("L", (600, 300), 255)), OcrOptions())
    assert result.blocks == ()
    assert result.words == ()


def _without_confidence(result: OcrResult) -> list[tuple[object, ...]]:
    return [
        (w.text, w.left, w.top, w.width, w.height, w.block, w.paragraph, w.line)
        for w in result.words
    ]


@pytest.mark.parametrize("page", ["phototest", "rendered"])
def test_the_cli_backend_gives_the_same_layout(engine: OcrEngine, page: str) -> None:
    """The same blocks, paragraphs, lines and words with the same boxes (the CLI's TSV rounds
    confidences its own way)."""
    if page == "phototest":
        data = (TESTDATA / "phototest.tif").read_bytes()
    else:
        data = encode(render_page()[0])
    tesserocr = engine.recognize(data, OcrOptions())
    cli = OcrEngine(PytesseractBackend(TESSDATA), max_pixels=40_000_000).recognize(
        data, OcrOptions()
    )
    check_layout(cli)
    assert _without_confidence(cli) == _without_confidence(tesserocr)
    assert [b.box for b in cli.blocks] == [b.box for b in tesserocr.blocks]
    assert [[p.box for p in b.paragraphs] for b in cli.blocks] == [
        [p.box for p in b.paragraphs] for b in tesserocr.blocks
    ]


def test_tsv_layout_skips_empty_elements_and_renumbers() -> None:
    """Tesseract's TSV numbers every block it found, with text or not; the layout numbers
    only those holding words, as the tesserocr backend does."""
    header = (
        "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight"
        "\tconf\ttext"
    )
    rows = [
        "1\t1\t0\t0\t0\t0\t0\t0\t500\t300\t-1\t",
        "2\t1\t1\t0\t0\t0\t0\t0\t500\t40\t-1\t",  # an image block: no words
        "3\t1\t1\t1\t0\t0\t0\t0\t500\t40\t-1\t",
        "4\t1\t1\t1\t1\t0\t0\t0\t500\t40\t-1\t",
        "5\t1\t1\t1\t1\t1\t0\t0\t500\t40\t95\t ",
        "2\t1\t2\t0\t0\t0\t10\t100\t300\t90\t-1\t",
        "3\t1\t2\t1\t0\t0\t10\t100\t300\t40\t-1\t",
        "4\t1\t2\t1\t1\t0\t10\t100\t300\t40\t-1\t",
        "5\t1\t2\t1\t1\t1\t10\t100\t100\t40\t96.5\tHello",
        "5\t1\t2\t1\t1\t2\t120\t100\t100\t40\t91\tworld",
        "3\t1\t2\t2\t0\t0\t10\t150\t300\t40\t-1\t",
        "4\t1\t2\t2\t1\t0\t10\t150\t300\t40\t-1\t",
        "5\t1\t2\t2\t1\t1\t10\t150\t100\t40\t90\tAgain",
    ]
    blocks = parse_tsv("\n".join([header, *rows]))
    (block,) = blocks
    assert block.box == Box(10, 100, 300, 90)
    assert [p.box for p in block.paragraphs] == [Box(10, 100, 300, 40), Box(10, 150, 300, 40)]
    assert [(w.text, w.confidence, w.block, w.paragraph, w.line) for w in words_of(blocks)] == [
        ("Hello", 96.5, 1, 1, 1),
        ("world", 91.0, 1, 1, 1),
        ("Again", 90.0, 1, 2, 2),
    ]
