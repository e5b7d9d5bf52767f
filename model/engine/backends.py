"""Tesseract backends: tesserocr in-process (default) and pytesseract via the CLI (parity).

A backend turns a decoded image into text and words. Backends are called from worker threads;
the tesserocr backend keeps one reused `PyTessBaseAPI` per thread and per (language, oem).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageDraw, ImageFont

from .types import EngineTimeoutError, InvalidOptionError, OcrOptions, Word

logger = logging.getLogger(__name__)


class Backend(Protocol):
    """What the engine needs from a Tesseract binding."""

    name: str

    def languages(self) -> frozenset[str]:
        """Language codes installed in the tessdata directory."""
        ...

    def warm(self, options: OcrOptions) -> None:
        """Load the models for `options` on the calling thread so the first request is fast."""
        ...

    def recognize(
        self, image: Image.Image, options: OcrOptions, timeout_s: float | None = None
    ) -> tuple[str, tuple[Word, ...]]:
        """Recognise `image` within `timeout_s`; return the text and the words in reading order.

        Raises EngineTimeoutError when the time runs out.
        """
        ...


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
        api.SetImage(page)
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
    ) -> tuple[str, tuple[Word, ...]]:
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
        api.SetImage(image)
        # Tesseract checks its deadline between words (layout analysis runs to its end first);
        # 0 means no limit, so a spent budget still gets the smallest real one.
        if timeout_s is not None:
            timeout_s -= time.monotonic() - started  # loading a model and the image took some
        timeout_ms = 0 if timeout_s is None else max(1, int(timeout_s * 1000))
        try:
            if not api.Recognize(timeout=timeout_ms):
                raise EngineTimeoutError("recognition ran out of time")
            text: str = api.GetUTF8Text()
            words = self._words(api)
        finally:
            api.Clear()
        return text, words

    def _words(self, api: Any) -> tuple[Word, ...]:
        ril = self._tesserocr.RIL
        iterator = api.GetIterator()
        if iterator is None:
            return ()
        words: list[Word] = []
        block = line = 0
        for item in self._tesserocr.iterate_level(iterator, ril.WORD):
            if item.IsAtBeginningOf(ril.BLOCK):
                block += 1
                line = 0
            if item.IsAtBeginningOf(ril.TEXTLINE):
                line += 1
            try:
                text = item.GetUTF8Text(ril.WORD)
            except RuntimeError:
                # tesserocr raises for a layout element that holds no text (e.g. a blank page).
                continue
            box = item.BoundingBox(ril.WORD)
            if not text or box is None:
                continue
            x1, y1, x2, y2 = box
            words.append(
                Word(
                    text=text,
                    confidence=round(float(item.Confidence(ril.WORD)), 2),
                    left=x1,
                    top=y1,
                    width=x2 - x1,
                    height=y2 - y1,
                    block=block,
                    line=line,
                )
            )
        return tuple(words)


class PytesseractBackend:
    """The Tesseract CLI through pytesseract, for parity with the CLI (the seed's way).

    Two CLI runs per image (text, then TSV words): slow by design, never the default.
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
    ) -> tuple[str, tuple[Word, ...]]:
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


def parse_tsv(tsv: str) -> tuple[Word, ...]:
    """Words from Tesseract's TSV output; `line` counts lines within each block from 1."""
    words: list[Word] = []
    last_line: tuple[str, str, str] | None = None
    line = 0
    current_block = ""
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5" or not (row.get("text") or "").strip():
            continue
        key = (row["block_num"], row["par_num"], row["line_num"])
        if row["block_num"] != current_block:
            current_block = row["block_num"]
            line = 0
        if key != last_line:
            line += 1
            last_line = key
        words.append(
            Word(
                text=row["text"],
                confidence=round(float(row["conf"]), 2),
                left=int(row["left"]),
                top=int(row["top"]),
                width=int(row["width"]),
                height=int(row["height"]),
                block=int(row["block_num"]),
                line=line,
            )
        )
    return tuple(words)
