"""Tesseract backends: tesserocr in-process (default) and pytesseract via the CLI (parity).

A backend turns a decoded image into text and words. Backends are called from worker threads;
the tesserocr backend keeps one reused `PyTessBaseAPI` per thread and per (language, oem).
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from .types import EngineTimeoutError, InvalidOptionError, OcrOptions, Word


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


class TesserocrBackend:
    """libtesseract in-process through tesserocr; releases the GIL while recognising."""

    name = "tesserocr"

    def __init__(self, tessdata: Path, max_models_per_thread: int = 4) -> None:
        limit_openmp_threads()
        import tesserocr  # imported here so the pytesseract backend works without it

        self._tesserocr: Any = tesserocr
        self._tessdata = str(tessdata).rstrip("/") + "/"
        self._languages = installed_languages(tessdata)
        self._max_models = max_models_per_thread
        self._local = threading.local()

    def languages(self) -> frozenset[str]:
        return self._languages

    def warm(self, options: OcrOptions) -> None:
        self._api(options)

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
        api = self._api(options)
        api.SetPageSegMode(options.psm)
        api.SetImage(image)
        # Tesseract checks its deadline between words (layout analysis runs to its end first);
        # 0 means no limit, so a spent budget still gets the smallest real one.
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
