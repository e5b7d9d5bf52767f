"""What the format writers share: the engine's version, XML-safe text, box corners."""

from __future__ import annotations

import functools
import re

from ..engine.types import Box, Word

#: Named in each document as the software that made it (hOCR ocr-system, ALTO, PDF Producer).
PLATFORM = "ocr-platform"

#: Characters XML 1.0 forbids (C0 controls but tab/newline/return, lone surrogates, U+FFFE/F):
#: lxml refuses them, so they are dropped from the text of a word.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@functools.cache
def tesseract_version() -> str:
    """The version of the libtesseract that tesserocr loads (e.g. "5.5.4"); "unknown" without it.

    Callers that know better (the CLI backend runs another binary) pass the version to the writer.
    """
    from ..engine.backends import limit_openmp_threads

    limit_openmp_threads()  # as the backend does, before libtesseract is loaded
    try:
        import tesserocr
    except ImportError:
        return "unknown"
    first_line = str(tesserocr.tesseract_version()).splitlines()[0]  # "tesseract 5.5.4"
    return first_line.split()[-1] if first_line.split() else "unknown"


def xml_text(text: str) -> str:
    """`text` without the characters an XML 1.0 document cannot hold."""
    return _NOT_XML.sub("", text)


def corners(box: Box | Word) -> tuple[int, int, int, int]:
    """Left, top, right, bottom (right and bottom exclusive, as Tesseract's bounding boxes)."""
    return box.left, box.top, box.left + box.width, box.top + box.height
