"""Tesseract's TSV: a header row, then one row per page, block, paragraph, line and word.

The same 12 columns, numbering and conventions as `tesseract image out tsv`: `level` 1 to 5;
`page_num` the page's number; `block_num` counted on the page, `par_num` in its block, `line_num`
in its paragraph and `word_num` in its line, all from 1 and 0 on the rows above their level;
`left top width height` in pixels; `conf` -1 on every row but a word's (0-100, six decimals) and
`text` empty but on a word's. Rows end with a newline, text never holds a tab or newline.
"""

from __future__ import annotations

from collections.abc import Sequence

from contract import TSV_COLUMNS

from ..engine.types import Box
from . import FormatPage

HEADER = TSV_COLUMNS
_SEPARATORS = str.maketrans("\t\r\n", "   ")


def _row(level: int, numbers: tuple[int, int, int, int, int], box: Box) -> str:
    """A non-word row: no confidence (-1), no text."""
    return "\t".join(map(str, (level, *numbers, box.left, box.top, box.width, box.height, -1, "")))


def tsv_document(pages: Sequence[FormatPage]) -> bytes:
    """Tesseract's TSV (UTF-8) of `pages`, in their order."""
    rows = ["\t".join(HEADER)]
    for page in pages:
        result, p = page.result, page.number
        rows.append(_row(1, (p, 0, 0, 0, 0), Box(0, 0, result.width, result.height)))
        for b, block in enumerate(result.blocks, 1):
            rows.append(_row(2, (p, b, 0, 0, 0), block.box))
            for a, paragraph in enumerate(block.paragraphs, 1):
                rows.append(_row(3, (p, b, a, 0, 0), paragraph.box))
                for n, line in enumerate(paragraph.lines, 1):
                    rows.append(_row(4, (p, b, a, n, 0), line.box))
                    rows.extend(
                        f"5\t{p}\t{b}\t{a}\t{n}\t{w}\t{word.left}\t{word.top}\t{word.width}\t"
                        f"{word.height}\t{word.confidence:.6f}\t{word.text.translate(_SEPARATORS)}"
                        for w, word in enumerate(line.words, 1)
                    )
    rows.append("")
    return "\n".join(rows).encode("utf-8")
