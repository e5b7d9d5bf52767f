"""Tesseract backends: tesserocr in-process (default) and pytesseract via the CLI (parity).

A backend turns a decoded image into text and its layout: blocks of paragraphs of lines of
words, with their boxes, in reading order (the words output and the hOCR, TSV, ALTO and PDF
writers all read this one recognition). It also detects a page's orientation (Tesseract OSD).
Backends are called from worker threads; the tesserocr backend keeps one reused
`PyTessBaseAPI` per thread and per (language, oem), and one for orientation detection.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageDraw, ImageFont

from . import upright
from .types import (
    OSD_LANGUAGE,
    OSD_MISSING,
    Block,
    Box,
    EngineTimeoutError,
    InvalidOptionError,
    OcrOptions,
    Orientation,
    Paragraph,
    TextLine,
    Word,
)

logger = logging.getLogger(__name__)


class Backend(Protocol):
    """What the engine needs from a Tesseract binding."""

    name: str

    def languages(self) -> frozenset[str]:
        """Language codes installed in the tessdata directory."""
        ...

    def warm(self, options: OcrOptions) -> None:
        """Load the models for `options` on the calling thread so the first request is fast
        (with rotate=auto, the orientation data too)."""
        ...

    def recognize(
        self, image: Image.Image, options: OcrOptions, timeout_s: float | None = None
    ) -> tuple[str, tuple[Block, ...]]:
        """Recognise `image` within `timeout_s`; return the text and its blocks in reading order.

        Blocks, paragraphs and lines hold at least one word each; words count `block` from 1
        on the page and `paragraph` and `line` from 1 within their block. Raises
        EngineTimeoutError when the time runs out.
        """
        ...

    def orientation(self, image: Image.Image) -> Orientation | None:
        """Tesseract OSD's orientation of `image`; None when it found too little text.

        Raises InvalidOptionError when the orientation data (osd.traineddata) is missing.
        """
        ...


class _LayoutBuilder:
    """Collects words into blocks, paragraphs and lines as a reading-order walk meets them.

    Numbers only what holds words, so a word's `block` is its block's place in the result
    (from 1) and its `paragraph` and `line` count from 1 within that block.
    """

    def __init__(self) -> None:
        self._blocks: list[Block] = []
        self._paragraphs: list[Paragraph] = []  # of the open block
        self._lines: list[TextLine] = []  # of the open paragraph
        self._words: list[Word] = []  # of the open line
        self._block_box: Box | None = None
        self._paragraph_box: Box | None = None
        self._line_box: Box | None = None
        self._lines_in_block = 0

    def start_block(self, box: Box | None) -> None:
        self._close_block()
        self._block_box = box

    def start_paragraph(self, box: Box | None) -> None:
        self._close_paragraph()
        self._paragraph_box = box

    def start_line(self, box: Box | None) -> None:
        self._close_line()
        self._line_box = box

    def add_word(self, text: str, confidence: float, box: Box) -> None:
        if not self._words:
            self._lines_in_block += 1
        self._words.append(
            Word(
                text=text,
                confidence=round(confidence, 2),
                left=box.left,
                top=box.top,
                width=box.width,
                height=box.height,
                block=len(self._blocks) + 1,
                line=self._lines_in_block,
                paragraph=len(self._paragraphs) + 1,
            )
        )

    def finish(self) -> tuple[Block, ...]:
        self._close_block()
        return tuple(self._blocks)

    def _close_line(self) -> None:
        if self._words:
            box = self._line_box or _word_box(self._words[0])
            self._lines.append(TextLine(box, tuple(self._words)))
        self._words, self._line_box = [], None

    def _close_paragraph(self) -> None:
        self._close_line()
        if self._lines:
            box = self._paragraph_box or self._lines[0].box
            self._paragraphs.append(Paragraph(box, tuple(self._lines)))
        self._lines, self._paragraph_box = [], None

    def _close_block(self) -> None:
        self._close_paragraph()
        if self._paragraphs:
            box = self._block_box or self._paragraphs[0].box
            self._blocks.append(Block(box, tuple(self._paragraphs)))
        self._paragraphs, self._block_box, self._lines_in_block = [], None, 0


def _word_box(word: Word) -> Box:
    return Box(word.left, word.top, word.width, word.height)


def set_image(api: Any, image: Image.Image) -> None:
    """Hand `image`'s pixels to Tesseract as they are, without encoding them.

    tesserocr's `SetImage` saves the image in its own format for Leptonica to read back: a
    decoded JPEG upload was re-encoded as a lossy JPEG, a PNG recompressed (~0.13 s a 9 MP
    page) and a turned or straightened page written as BMP, which declares 96 dpi and changed
    what Tesseract read (565 characters of a skewed page where the same pixels as PNG gave
    2 197). Raw rows carry no resolution: Tesseract estimates it from the text, as it did for
    every PNG and JPEG (Pillow writes no dpi unless told)."""
    if image.mode not in ("L", "RGB"):
        image = image.convert("L" if image.mode == "1" else "RGB")
    depth = 1 if image.mode == "L" else 3
    api.SetImageBytes(image.tobytes(), image.width, image.height, depth, depth * image.width)


def limit_openmp_threads() -> None:
    """One Tesseract thread per image: the worker pool, not OpenMP, keeps the cores busy.

    The one place the platform sets `OMP_THREAD_LIMIT` (an operator's own value wins). It must
    run before libtesseract is loaded, since OpenMP reads it once; the CLI backend's child
    processes inherit it.
    """
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def installed_languages(tessdata: Path) -> frozenset[str]:
    """Language codes with a `<code>.traineddata` file in `tessdata`."""
    return frozenset(p.name.removesuffix(".traineddata") for p in tessdata.glob("*.traineddata"))


#: Seconds of Tesseract's layout analysis per megapixel assumed until `warm` has measured this
#: machine's: twice the ~0.1 s/MP measured on dense text pages of 4 to 36 MP.
DEFAULT_LAYOUT_S_PER_MEGAPIXEL = 0.2
#: The measured rate is multiplied by this: layout time varies with the page (dense text is the
#: worst ordinary documents give) and with what else runs on the machine.
LAYOUT_MARGIN = 2.0


def layout_calibration_page(side: int = 1500) -> Image.Image:
    """A page filled with lines of small text (Pillow's built-in font): Tesseract's layout
    analysis takes as long per megapixel on it as on the densest real documents measured."""
    page = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=22)
    line = "Invoice 2024-117 total 42.50 paid by transfer, ref QX-7781 " * 4
    for index, top in enumerate(range(10, side - 33, 33)):
        draw.text((10, top), line[index % 17 :], font=font, fill=0)
    return page


#: Characters Tesseract's orientation detection (OSD) classifies, at most, by default: each in
#: 4 orientations, ~0.8 ms a character on one core, so ~0.2 s a page of text whatever its size.
OSD_CHARACTERS = 250
#: Characters the first OSD look classifies, at most (~0.1 s a page). Its confidence sums over
#: the characters, so fewer of them must agree more to reach the same confidence. Measured on
#: 400 pages (rendered pages of 14 to 32 px letters in six faces, Tesseract's scans, the bench's
#: pages and noise; turned 0/90/180/270, straight and skewed 7 degrees): the two looks turned
#: every page exactly as one full look did; the second look ran on 8 % of the pages of 20 px
#: letters and more (sparse or italic text), on most pages of smaller letters and on noise.
OSD_FIRST_LOOK_CHARACTERS = 100


class TesserocrBackend:
    """libtesseract in-process through tesserocr; releases the GIL while recognising.

    Tesseract stops recognition at its deadline, between words, but never its layout analysis,
    which runs first: a page whose layout alone is expected to outlast the time left
    (`layout_s_per_megapixel` x megapixels) is refused at once instead of holding the worker.
    Unless given, the rate is learned in `warm`: LAYOUT_MARGIN times the time this machine takes
    for `layout_calibration_page`. The estimate holds for documents, not for any pixels: layout
    of some non-text patterns (fine stripes, noise) takes 5 to 15 times longer per megapixel.
    """

    name = "tesserocr"

    def __init__(
        self,
        tessdata: Path,
        max_models_per_thread: int = 4,
        layout_s_per_megapixel: float | None = None,
    ) -> None:
        limit_openmp_threads()
        import tesserocr  # imported here so the pytesseract backend works without it

        self._tesserocr: Any = tesserocr
        self._tessdata = str(tessdata).rstrip("/") + "/"
        self._languages = installed_languages(tessdata)
        self._max_models = max_models_per_thread
        self._local = threading.local()
        self._calibrate_layout = layout_s_per_megapixel is None
        self._calibration_lock = threading.Lock()
        self.layout_s_per_megapixel = (
            DEFAULT_LAYOUT_S_PER_MEGAPIXEL
            if layout_s_per_megapixel is None
            else layout_s_per_megapixel
        )
        """Seconds of layout analysis expected per megapixel (measured in `warm` unless given)."""

    def languages(self) -> frozenset[str]:
        return self._languages

    def warm(self, options: OcrOptions) -> None:
        api = self._api(options)
        if options.rotate == "auto":
            self._osd_api()
        with self._calibration_lock:
            if self._calibrate_layout:
                self._calibrate_layout = False  # once per backend, by the first worker
                self.layout_s_per_megapixel = LAYOUT_MARGIN * self._time_layout(api)
                logger.info(
                    "Tesseract layout analysis: %.3f s per megapixel expected",
                    self.layout_s_per_megapixel,
                )

    @staticmethod
    def _time_layout(api: Any) -> float:
        """Seconds per megapixel this machine's Tesseract takes to analyse a dense page."""
        page = layout_calibration_page()
        api.SetPageSegMode(3)  # fully automatic: the full layout analysis
        set_image(api, page)
        try:
            started = time.monotonic()
            api.AnalyseLayout()
            return (time.monotonic() - started) / (page.width * page.height / 1e6)
        finally:
            api.Clear()

    def _api(self, options: OcrOptions) -> Any:
        """This thread's API for (lang, oem), created once and reused; least recent evicted."""
        cache: OrderedDict[tuple[str, int], Any] | None = getattr(self._local, "apis", None)
        if cache is None:
            cache = OrderedDict()
            self._local.apis = cache
        key = (options.lang, options.oem)
        api = cache.get(key)
        if api is not None:
            cache.move_to_end(key)
            return api
        api = self._tesserocr.PyTessBaseAPI(
            path=self._tessdata, lang=options.lang, oem=options.oem, init=False
        )
        try:
            api.Init(path=self._tessdata, lang=options.lang, oem=options.oem)
        except RuntimeError:
            api.End()
            raise InvalidOptionError(
                f"Tesseract cannot load language {options.lang!r} with oem {options.oem}: "
                "the installed model may not support that engine mode"
            ) from None
        cache[key] = api
        while len(cache) > self._max_models:
            _, old = cache.popitem(last=False)
            old.End()
        return api

    def recognize(
        self, image: Image.Image, options: OcrOptions, timeout_s: float | None = None
    ) -> tuple[str, tuple[Block, ...]]:
        started = time.monotonic()
        if timeout_s is not None:
            layout_s = self.layout_s_per_megapixel * image.width * image.height / 1e6
            if layout_s > timeout_s:
                raise EngineTimeoutError(
                    f"a {image.width}x{image.height} page cannot be read in the "
                    f"{max(timeout_s, 0):.1f} s left: Tesseract's layout analysis, which cannot be "
                    f"stopped, is expected to take {layout_s:.1f} s"
                )
        api = self._api(options)
        api.SetPageSegMode(options.psm)
        set_image(api, image)
        # Tesseract checks its deadline between words (layout analysis runs to its end first);
        # 0 means no limit, so a spent budget still gets the smallest real one.
        if timeout_s is not None:
            timeout_s -= time.monotonic() - started  # loading a model and the image took some
        timeout_ms = 0 if timeout_s is None else max(1, int(timeout_s * 1000))
        try:
            if not api.Recognize(timeout=timeout_ms):
                raise EngineTimeoutError("recognition ran out of time")
            text: str = api.GetUTF8Text()
            blocks = self._layout(api)
        finally:
            api.Clear()
        return text, blocks

    def _layout(self, api: Any) -> tuple[Block, ...]:
        """The recognised page's blocks, paragraphs, lines and words, in one walk over its
        words: a word that begins a block, paragraph or line brings that element's box
        (elements left without words are dropped)."""
        ril = self._tesserocr.RIL
        iterator = api.GetIterator()
        if iterator is None:
            return ()
        layout = _LayoutBuilder()
        for item in self._tesserocr.iterate_level(iterator, ril.WORD):
            for level, start in (
                (ril.BLOCK, layout.start_block),
                (ril.PARA, layout.start_paragraph),
                (ril.TEXTLINE, layout.start_line),
            ):
                if item.IsAtBeginningOf(level):
                    corners = item.BoundingBox(level)
                    start(None if corners is None else _box(corners))
            try:
                text = item.GetUTF8Text(ril.WORD)
            except RuntimeError:
                # tesserocr raises for a layout element that holds no text (e.g. a blank page).
                continue
            corners = item.BoundingBox(ril.WORD)
            if not text.strip() or corners is None:
                continue  # a separator Tesseract took for a word (" "), as the TSV reader does
            layout.add_word(text, float(item.Confidence(ril.WORD)), _box(corners))
        return layout.finish()

    def orientation(self, image: Image.Image) -> Orientation | None:
        """Tesseract OSD's orientation of `image` from a first look at up to
        `OSD_FIRST_LOOK_CHARACTERS` characters, or, when that look is not sure (its confidence
        is under `upright.MIN_ORIENTATION_CONFIDENCE`), from a second one at up to
        `OSD_CHARACTERS`, whose answer is returned whatever it is."""
        api = self._osd_api()
        set_image(api, image)
        try:
            found = self._detect(api, OSD_FIRST_LOOK_CHARACTERS)
            if found is not None and found.confidence < upright.MIN_ORIENTATION_CONFIDENCE:
                found = self._detect(api, OSD_CHARACTERS)
        finally:
            api.Clear()
        return found

    def _detect(self, api: Any, characters: int) -> Orientation | None:
        """One OSD look at up to `characters` characters of the image `api` holds; None when it
        found fewer than a tenth of that many, or no finite confidence."""
        # Tesseract classifies at most 5 times `min_characters_to_try` characters, and gives no
        # answer for fewer than half of it.
        api.SetVariable("min_characters_to_try", str(characters // 5))
        found = api.DetectOrientationScript()
        if not found:
            return None  # too few characters to decide
        confidence = float(found["orient_conf"])
        if not math.isfinite(confidence):
            return None
        # Tesseract gives the page's clockwise rotation: turning it back clockwise by the rest
        # of the circle sets it upright.
        return Orientation((360 - int(found["orient_deg"])) % 360, confidence)

    def _osd_api(self) -> Any:
        """This thread's orientation-detection API, created once and reused."""
        api = getattr(self._local, "osd", None)
        if api is not None:
            return api
        if OSD_LANGUAGE not in self._languages:
            raise InvalidOptionError(OSD_MISSING)
        tesserocr = self._tesserocr
        api = tesserocr.PyTessBaseAPI(
            path=self._tessdata,
            lang=OSD_LANGUAGE,
            psm=tesserocr.PSM.OSD_ONLY,
            oem=tesserocr.OEM.TESSERACT_ONLY,
            init=False,
        )
        try:
            api.Init(path=self._tessdata, lang=OSD_LANGUAGE, oem=tesserocr.OEM.TESSERACT_ONLY)
        except RuntimeError:
            api.End()
            raise InvalidOptionError(OSD_MISSING) from None
        api.SetPageSegMode(tesserocr.PSM.OSD_ONLY)
        self._local.osd = api
        return api


def _box(corners: tuple[int, int, int, int]) -> Box:
    """A Box from Tesseract's (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = corners
    return Box(x1, y1, x2 - x1, y2 - y1)


class PytesseractBackend:
    """The Tesseract CLI through pytesseract, for parity with the CLI (the seed's way).

    Two CLI runs per image (text, then TSV layout), a third for rotate=auto (`--psm 0`): slow
    by design, never the default.
    """

    name = "pytesseract"

    def __init__(self, tessdata: Path, timeout_s: float = 60.0) -> None:
        limit_openmp_threads()
        import pytesseract

        self._pytesseract: Any = pytesseract
        self._tessdata = tessdata
        self._languages = installed_languages(tessdata)
        self._timeout_s = timeout_s

    def languages(self) -> frozenset[str]:
        return self._languages

    def warm(self, options: OcrOptions) -> None:
        # Nothing stays loaded between CLI runs; check that the binary answers at all.
        self._pytesseract.get_tesseract_version()

    def recognize(
        self, image: Image.Image, options: OcrOptions, timeout_s: float | None = None
    ) -> tuple[str, tuple[Block, ...]]:
        timeout = self._timeout_s if timeout_s is None else min(timeout_s, self._timeout_s)
        config = f"--psm {options.psm} --oem {options.oem} --tessdata-dir {self._tessdata}"
        pytesseract = self._pytesseract
        try:
            started = time.monotonic()
            text = pytesseract.image_to_string(
                image, lang=options.lang, config=config, timeout=timeout
            )
            remaining = max(0.001, timeout - (time.monotonic() - started))
            tsv = pytesseract.image_to_data(
                image, lang=options.lang, config=config, timeout=remaining
            )
        except pytesseract.TesseractError as exc:
            raise InvalidOptionError(
                f"Tesseract rejected lang={options.lang!r} psm={options.psm} oem={options.oem}"
            ) from exc
        except RuntimeError as exc:  # after TesseractError, its subclass
            # pytesseract kills the CLI at the timeout and says so with a RuntimeError.
            if "timeout" not in str(exc).lower():
                raise
            raise EngineTimeoutError("recognition ran out of time") from None
        return text, parse_tsv(tsv)

    def orientation(self, image: Image.Image) -> Orientation | None:
        if OSD_LANGUAGE not in self._languages:
            raise InvalidOptionError(OSD_MISSING)
        pytesseract = self._pytesseract
        try:
            found = pytesseract.image_to_osd(
                image,
                config=f"--tessdata-dir {self._tessdata}",
                output_type=pytesseract.Output.DICT,
                timeout=self._timeout_s,
            )
        except pytesseract.TesseractError:
            return None  # "Too few characters": nothing to decide from
        except RuntimeError as exc:
            if "timeout" not in str(exc).lower():
                raise
            raise EngineTimeoutError("orientation detection ran out of time") from None
        if "rotate" not in found or "orientation_conf" not in found:
            return None
        # The CLI's "Rotate" is the clockwise turn that sets the page upright.
        return Orientation(int(found["rotate"]) % 360, float(found["orientation_conf"]))


def parse_tsv(tsv: str) -> tuple[Block, ...]:
    """The layout in Tesseract's TSV output: blocks (level 2), paragraphs (3) and lines (4)
    with their boxes, holding the words (5) that have text; numbered as the tesserocr backend
    numbers them (only elements holding words count)."""
    boxes: dict[tuple[str, ...], Box] = {}
    layout = _LayoutBuilder()
    current: tuple[str, ...] = ()
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        level = row.get("level")
        if level not in ("2", "3", "4", "5"):
            continue
        key = (row["page_num"], row["block_num"], row["par_num"], row["line_num"])
        box = Box(int(row["left"]), int(row["top"]), int(row["width"]), int(row["height"]))
        if level != "5":
            boxes[key[: int(level)]] = box  # block: page+block, paragraph: +par, line: +line
            continue
        if not (row.get("text") or "").strip():
            continue
        for depth, start in (
            (2, layout.start_block),
            (3, layout.start_paragraph),
            (4, layout.start_line),
        ):
            if current[:depth] != key[:depth]:
                start(boxes.get(key[:depth], box))
        current = key
        layout.add_word(row["text"], float(row["conf"]), box)
    return layout.finish()
