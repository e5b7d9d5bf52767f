"""`python -m bench.documents`: documents through the platform, side by side in one run.

Starts the platform as `make run` does (one engine worker per core, the gateway reading 4 pages
of a document at once) and measures, on PDFs built here from rendered text pages whose text is
known (nothing downloaded):

1. **A scanned document** (6 US-letter pages at 300 dpi, grey JPEG): the whole document through
   `POST /gateway/ocr` (JSON) vs the same pages sent one after another, each as a one-page PDF.
   Target: at most 0.6x the time. Also the document as NDJSON: its first line vs one page's
   recognition (target: at most 1 s more).
2. **A searchable PDF of a 20-page scan**: pages/s of the platform (`format=pdf`), of OCRmyPDF
   (`--jobs <cores> --output-type pdf --optimize 0`, the same traineddata; Debian's Tesseract
   5.3 where the model runs the 5.5 bundled with tesserocr) and of the Tesseract CLI
   page by page (`tesseract page.png page pdf` one page after another, single-threaded as
   OCRmyPDF and the model run it, then the pages joined with pikepdf); and the character error
   rate of each output's text layer, read back with `pdftotext -raw` (the order the tool wrote
   it) page by page, against the known text. Targets: at least 1.3x OCRmyPDF's pages/s; every
   page's CER within 0.01 across tools.
3. **A 200-page PDF streamed as NDJSON** (one-line pages, 8 x 1 inch at 150 dpi): the gateway's
   resident memory while it streams (sampled every 20 ms, and the kernel's peak), target at most
   250 MB; the time to the first NDJSON line vs one page's recognition time (the engine's own
   timings of that page sent alone), target at most 1 s more.

Each part runs `--repeats` rounds with its variants interleaved (their order alternating), so a
busy minute of a shared machine hits them alike; each reading waits (up to `--settle` seconds)
for a quiet second first. It reports medians, the range over rounds, the engine's own seconds a page
(larger in a document than alone when the cores are shared) and the share of the machine's CPU
that other processes took meanwhile. Prints a table and writes `documents.json` to --out.
`--quick` is a smoke run of every code path with tiny documents.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import httpx
import numpy as np
import pikepdf
import psutil

from gateway.settings import GatewaySettings
from model.engine import available_cpus

from .stacks import REQUEST_BUDGET_S, PlatformStack, _busy_cpu_s, _peak_rss, _reset_peak_rss
from .stacks import engine_counters as read_engine_counters
from .workloads import TextPage, line_text_page, pdf_of, scanned_text_page

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "bench"
RESULT_FILE: Final = "documents.json"
_T = TypeVar("_T")
PDF_TYPE: Final = "application/pdf"
NDJSON_TYPE: Final = "application/x-ndjson"

# The targets of issue 12 ("Documents", Performance).
DOCUMENT_RATIO_MAX: Final = 0.6
"""A document's time over its pages' time one after another."""
OCRMYPDF_SPEEDUP_MIN: Final = 1.3
"""The platform's searchable-PDF pages/s over OCRmyPDF's."""
CER_SPREAD_MAX: Final = 0.01
"""Largest difference between two tools' CER on the same page."""
GATEWAY_RSS_MAX_MB: Final = 250.0
FIRST_LINE_SLACK_S: Final = 1.0
"""The first NDJSON line may come this long after one page's recognition time."""

DOCUMENT: Final = "document"
DOCUMENT_NDJSON: Final = "document, NDJSON"
ONE_BY_ONE: Final = "one by one"
PLATFORM: Final = "platform"
OCRMYPDF: Final = "OCRmyPDF"
TESSERACT_CLI: Final = "Tesseract CLI"


class BenchError(RuntimeError):
    """A measurement could not be made (a refused request, a tool that failed)."""


@dataclass(frozen=True)
class Sizes:
    """How big the documents are and how often each part is measured."""

    document_pages: int
    searchable_pages: int
    stream_pages: int
    lines_per_page: int | None
    """Lines of text on a scanned page; None: a full page."""
    repeats: int
    settle_s: float
    """Longest wait for a quiet machine before each round."""


FULL: Final = Sizes(
    document_pages=6,
    searchable_pages=20,
    stream_pages=200,
    lines_per_page=None,
    repeats=3,
    settle_s=20.0,
)
QUICK: Final = Sizes(
    document_pages=2, searchable_pages=2, stream_pages=6, lines_per_page=3, repeats=1, settle_s=0
)


# --- the machine's other work ------------------------------------------------------------------


class OthersCpu:
    """The share of the machine's CPU capacity that processes other than ours took while the
    `with` block ran. Ours: the stack's processes with their live children (engine workers),
    and this process with the children it waited for (OCRmyPDF, the Tesseract CLI)."""

    def __init__(self, roots: Sequence[int]) -> None:
        self._roots = roots
        self._start: dict[int, float] = {}
        self._own0 = self._busy0 = self._wall0 = 0.0
        self.pct = 0.0
        """Others' CPU seconds over the machine's capacity (cores x wall seconds), in %."""
        self.ours_s = 0.0
        """CPU seconds our processes took."""

    def _tree_cpu(self) -> dict[int, float]:
        found: dict[int, float] = {}
        for pid in self._roots:
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(pid)
                for proc in (root, *root.children(recursive=True)):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        times = proc.cpu_times()
                        found[proc.pid] = float(times.user + times.system)
        return found

    @staticmethod
    def _own_cpu() -> float:
        times = psutil.Process().cpu_times()
        return float(times.user + times.system + times.children_user + times.children_system)

    def __enter__(self) -> OthersCpu:
        self._start = self._tree_cpu()
        self._own0, self._busy0, self._wall0 = self._own_cpu(), _busy_cpu_s(), time.monotonic()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        trees = sum(cpu - self._start.get(pid, 0.0) for pid, cpu in self._tree_cpu().items())
        ours = self.ours_s = trees + self._own_cpu() - self._own0
        capacity = (time.monotonic() - self._wall0) * (psutil.cpu_count() or 1)
        others = _busy_cpu_s() - self._busy0 - ours
        self.pct = round(max(0.0, 100.0 * others / capacity), 1) if capacity > 0 else 0.0


class Watch:
    """Rounds started on a quiet machine where that can be had, and what others took in each."""

    def __init__(self, roots: Sequence[int], settle_s: float, quiet_pct: float = 25.0) -> None:
        self._roots = roots
        self._settle_s = settle_s
        self._quiet_pct = quiet_pct

    def settle(self) -> float:
        """Wait up to `settle_s` for a second in which the machine is at most `quiet_pct` busy
        (our stack idles between readings, so that is others' work); the last second's busy %.
        Called before each reading: a quiet second does not promise a quiet minute, but other
        work on a shared machine comes in bursts (test runs) that this lets pass."""
        deadline = time.monotonic() + self._settle_s
        while True:
            busy = float(psutil.cpu_percent(interval=1.0 if self._settle_s else None))
            if busy <= self._quiet_pct or time.monotonic() >= deadline:
                return busy

    def measure(self) -> OthersCpu:
        """Our CPU and others' share over the `with` block."""
        return OthersCpu(self._roots)


class RssSampler:
    """Resident memory of one process while the `with` block runs: sampled every
    `interval_s`, and the kernel's own peak (VmHWM, reset on entry) so no spike is missed."""

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        self._proc = psutil.Process(pid)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self.samples: list[int] = []
        self.before_mb = self.peak_mb = 0.0

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            with contextlib.suppress(psutil.NoSuchProcess):
                self.samples.append(int(self._proc.memory_info().rss))

    def __enter__(self) -> RssSampler:
        self.before_mb = int(self._proc.memory_info().rss) / 2**20
        _reset_peak_rss(self._proc.pid)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max([_peak_rss(self._proc), *self.samples]) / 2**20


# --- text layers and their error rate ----------------------------------------------------------


def _normalised(text: str) -> str:
    """Whitespace collapsed: line breaks and spacing are layout, not recognition."""
    return " ".join(text.split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one numpy row per character of `a` (a page in ~0.1 s).

    Insertions within a row are a running minimum: cur[j] = min over k <= j of
    (cur[k] + j - k), i.e. j + the running minimum of (cur[k] - k)."""
    if not a or not b:
        return len(a) + len(b)
    target = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    index = np.arange(len(b) + 1)
    previous = index.copy()
    current = np.empty_like(previous)
    for i, char in enumerate(a, 1):
        current[0] = i
        np.minimum(previous[:-1] + (target != ord(char)), previous[1:] + 1, out=current[1:])
        previous = np.minimum.accumulate(current - index) + index
    return int(previous[-1])


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate of `hypothesis` against `reference`, whitespace collapsed."""
    ref, hyp = _normalised(reference), _normalised(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def text_layer(pdf: Path, page: int) -> str:
    """The text of one page of `pdf` as poppler's `pdftotext` reads it."""
    run = subprocess.run(  # noqa: S603  # a fixed tool with arguments we built
        ["pdftotext", "-raw", "-f", str(page), "-l", str(page), "-enc", "UTF-8", str(pdf), "-"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout


def page_count(pdf: Path) -> int:
    with pikepdf.open(pdf) as opened:
        return len(opened.pages)


# --- calls to the platform ---------------------------------------------------------------------


def upload(client: httpx.Client, url: str, name: str, data: bytes, **fields: str) -> httpx.Response:
    """POST `data` as the `image_file` of a multipart form; the answer when it is a 200."""
    response = client.post(url, files={"image_file": (name, data, PDF_TYPE)}, data=fields)
    if response.status_code != 200:
        raise BenchError(f"{name}: HTTP {response.status_code}: {response.text[:300]}")
    return response


def read_json(client: httpx.Client, url: str, name: str, data: bytes, pages: int) -> Any:
    """The JSON answer for a document of `pages` pages, every page read."""
    answer = upload(client, url, name, data).json()
    failed = [entry for entry in answer["pages"] if "error" in entry]
    if answer["page_count"] != pages or failed:
        raise BenchError(f"{name}: {answer['page_count']} pages, failed: {failed[:2]}")
    return answer


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


# --- 1. a document vs its pages one by one -----------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One reading of a document, start to end."""

    seconds: float
    engine_s: float
    """The engine's own decode + preprocess + recognize seconds, summed over the pages: more
    than `seconds` when pages were read at once; larger than alone when cores were shared."""
    first_line_s: float | None = None
    """NDJSON: when the first page's line arrived."""
    first_page_engine_s: float | None = None
    """NDJSON: the engine's seconds for the page of that first line."""
    cpu_s: float = 0.0
    """CPU seconds our processes took: the stack's (gateway, model, workers) and the client's."""
    others_cpu_pct: float = 0.0
    """Share of the machine's CPU capacity other processes took meanwhile."""


@dataclass
class DocumentRun:
    """The readings of each variant in each round."""

    readings: dict[str, list[Reading]] = field(default_factory=dict)

    def seconds(self, name: str) -> list[float]:
        return [reading.seconds for reading in self.readings[name]]


def engine_seconds(entry: Mapping[str, Any]) -> float:
    """A page entry's decode + preprocess + recognize: its recognition, queue wait excluded."""
    timings = entry["timings"]
    return float(timings["decode_s"] + timings["preprocess_s"] + timings["recognize_s"])


def measure_document(
    client: httpx.Client, url: str, pages: Sequence[TextPage], repeats: int, watch: Watch
) -> DocumentRun:
    """The whole document as JSON, as NDJSON, and its pages one after another as one-page PDFs
    (order alternating by round); round 0 only warms the stack up."""
    document = pdf_of(list(pages))
    singles = [pdf_of([page]) for page in pages]

    def whole() -> Reading:
        started = time.perf_counter()
        answer = read_json(client, url, "document.pdf", document, len(pages))
        seconds = time.perf_counter() - started
        return Reading(seconds, sum(engine_seconds(entry) for entry in answer["pages"]))

    def streamed() -> Reading:
        first, total, entries = stream_once(client, url, document, len(pages))
        engine = sum(engine_seconds(entry) for entry in entries)
        return Reading(total, engine, first, engine_seconds(entries[0]))

    def one_by_one() -> Reading:
        engine = 0.0
        started = time.perf_counter()
        for number, single in enumerate(singles, 1):
            answer = read_json(client, url, f"page-{number}.pdf", single, 1)
            engine += engine_seconds(answer["pages"][0])
        return Reading(time.perf_counter() - started, engine)

    variants = ((DOCUMENT, whole), (ONE_BY_ONE, one_by_one), (DOCUMENT_NDJSON, streamed))
    run = DocumentRun({name: [] for name, _ in variants})
    for round_ in range(repeats + 1):
        for name, action in _ordered(variants, round_):
            if round_:
                watch.settle()
            with watch.measure() as cpu:
                reading = action()
            if round_:
                run.readings[name].append(
                    replace(reading, cpu_s=cpu.ours_s, others_cpu_pct=cpu.pct)
                )
    return run


def _ordered(items: Sequence[_T], round_: int) -> Iterator[_T]:
    """`items` forwards in even rounds, backwards in odd ones."""
    return iter(items) if round_ % 2 == 0 else reversed(items)


# --- 2. searchable PDFs: the platform, OCRmyPDF, the Tesseract CLI -----------------------------


def platform_pdf(client: httpx.Client, url: str, document: bytes, out: Path) -> None:
    answer = upload(client, url, "scan.pdf", document, format="pdf")
    if answer.headers.get("X-OCR-Failed-Pages"):
        raise BenchError(f"platform: pages failed: {answer.headers['X-OCR-Failed-Pages']}")
    out.write_bytes(answer.content)


def ocrmypdf_pdf(source: Path, out: Path, jobs: int) -> None:
    """OCRmyPDF as its docs suggest for a PDF out (no PDF/A, so no Ghostscript), no optimising."""
    command = [sys.executable, "-m", "ocrmypdf", "--jobs", str(jobs), "--output-type", "pdf"]
    command += ["--optimize", "0", "-l", "eng", str(source), str(out)]
    run = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if run.returncode != 0:
        raise BenchError(f"ocrmypdf exited {run.returncode}: {run.stderr[-500:]}")


def tesseract_pdf(images: Sequence[Path], out: Path) -> None:
    """`tesseract page.png page pdf` for each page, one after another, then the pages joined.

    OMP_THREAD_LIMIT=1, as OCRmyPDF and the model run Tesseract: Debian's OpenMP build with its
    default threads took 5x longer a page on the 2 shared cores measured here."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    parts = []
    for image in images:
        base = image.with_suffix("")
        run = subprocess.run(  # noqa: S603  # a fixed tool with arguments we built
            ["tesseract", str(image), str(base), "-l", "eng", "pdf"],  # noqa: S607
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if run.returncode != 0:
            raise BenchError(f"tesseract exited {run.returncode}: {run.stderr[-500:]}")
        parts.append(base.with_suffix(".pdf"))
    with contextlib.ExitStack() as stack, pikepdf.new() as joined:
        for part in parts:
            joined.pages.extend(stack.enter_context(pikepdf.open(part)).pages)
        joined.save(out)


def page_images(document: Path, folder: Path) -> list[Path]:
    """Each page's image taken out of `document` as a PNG at its dpi: the pixels the other
    tools read (JPEG-decoded), as `pdfimages -png` would give them to the Tesseract CLI."""
    paths = []
    with pikepdf.open(document) as pdf:
        for number, page in enumerate(pdf.pages, 1):
            (stream,) = page.get_images().values()
            if not isinstance(stream, pikepdf.Stream):
                raise BenchError(f"page {number} of {document} holds no image stream")
            image = pikepdf.PdfImage(stream).as_pil_image()
            dpi = round(image.width / (float(page.mediabox[2]) / 72))
            path = folder / f"page-{number:03d}.png"
            image.save(path, dpi=(dpi, dpi))
            paths.append(path)
    return paths


@dataclass
class SearchableRun:
    """Seconds of each tool in each round, its output and the CER of each page of it."""

    seconds: dict[str, list[float]]
    outputs: dict[str, Path]
    cer: dict[str, list[float]] = field(default_factory=dict)
    others_cpu_pct: dict[str, list[float]] = field(default_factory=dict)
    gateway_peak_mb: float = 0.0
    """The gateway's peak resident memory while it made the searchable PDFs."""


def measure_searchable(
    client: httpx.Client,
    url: str,
    pages: Sequence[TextPage],
    repeats: int,
    watch: Watch,
    work: Path,
    with_ocrmypdf: bool,
    gateway_pid: int,
) -> SearchableRun:
    """Each tool makes the searchable PDF once a round (tools interleaved); the last round's
    outputs are read back for their CER."""
    document = work / "scan.pdf"
    document.write_bytes(pdf_of(list(pages)))
    images = page_images(document, work)
    jobs = available_cpus()
    outputs = {
        PLATFORM: work / "platform.pdf",
        OCRMYPDF: work / "ocrmypdf.pdf",
        TESSERACT_CLI: work / "tesseract.pdf",
    }
    tools: list[tuple[str, Callable[[], None]]] = [
        (PLATFORM, lambda: platform_pdf(client, url, document.read_bytes(), outputs[PLATFORM]))
    ]
    if with_ocrmypdf:
        tools.append((OCRMYPDF, lambda: ocrmypdf_pdf(document, outputs[OCRMYPDF], jobs)))
    tools.append((TESSERACT_CLI, lambda: tesseract_pdf(images, outputs[TESSERACT_CLI])))
    run = SearchableRun({name: [] for name, _ in tools}, {name: outputs[name] for name, _ in tools})
    run.others_cpu_pct = {name: [] for name, _ in tools}
    with RssSampler(gateway_pid) as rss:
        for round_ in range(repeats):
            for name, action in _ordered(tools, round_):
                watch.settle()
                with watch.measure() as cpu:
                    run.seconds[name].append(_timed(action))
                run.others_cpu_pct[name].append(cpu.pct)
    run.gateway_peak_mb = round(rss.peak_mb, 1)
    for name, output in run.outputs.items():
        if page_count(output) != len(pages):
            raise BenchError(f"{name}: {page_count(output)} pages out of {len(pages)}")
        run.cer[name] = [
            round(cer(page.text, text_layer(output, number)), 4)
            for number, page in enumerate(pages, 1)
        ]
    return run


# --- 3. a long document streamed as NDJSON -----------------------------------------------------


@dataclass
class StreamRound:
    """One NDJSON stream of the whole document, and its first page sent alone."""

    first_line_s: float
    total_s: float
    gateway_before_mb: float
    gateway_peak_mb: float
    page_alone_s: float
    """Its first page alone through the gateway, upload to answer."""
    page_engine_s: float
    """The engine's decode + preprocess + recognize of that page alone: its recognition."""
    others_cpu_pct: float


def stream_once(
    client: httpx.Client, url: str, document: bytes, pages: int
) -> tuple[float, float, list[dict[str, Any]]]:
    """Seconds to the first line and to the last of one NDJSON stream, and its page lines;
    every page must have been read."""
    started = time.perf_counter()
    first = 0.0
    lines: list[dict[str, Any]] = []
    files = {"image_file": ("document.pdf", document, PDF_TYPE)}
    with client.stream("POST", url, files=files, headers={"Accept": NDJSON_TYPE}) as response:
        if response.status_code != 200:
            raise BenchError(f"NDJSON stream: HTTP {response.status_code}")
        for line in response.iter_lines():
            if not line:
                continue
            if not lines:
                first = time.perf_counter() - started
            lines.append(json.loads(line))
    total = time.perf_counter() - started
    summary = lines[-1].get("summary") if lines else None
    entries = lines[:-1]
    if summary is None or summary["pages_read"] != pages or len(entries) != pages:
        raise BenchError(f"NDJSON stream: {len(lines)} lines, summary {summary}")
    return first, total, entries


def measure_stream(
    client: httpx.Client,
    url: str,
    pages: Sequence[TextPage],
    repeats: int,
    watch: Watch,
    gateway_pid: int,
) -> list[StreamRound]:
    document = pdf_of(list(pages))
    first_page = pdf_of([pages[0]])
    rounds = []
    for _ in range(repeats):
        watch.settle()
        with watch.measure() as others:
            started = time.perf_counter()
            answer = read_json(client, url, "page-1.pdf", first_page, 1)
            alone = time.perf_counter() - started
            engine = engine_seconds(answer["pages"][0])
            with RssSampler(gateway_pid) as rss:
                first, total, _ = stream_once(client, url, document, len(pages))
        rounds.append(
            StreamRound(
                first_line_s=round(first, 3),
                total_s=round(total, 3),
                gateway_before_mb=round(rss.before_mb, 1),
                gateway_peak_mb=round(rss.peak_mb, 1),
                page_alone_s=round(alone, 3),
                page_engine_s=round(engine, 3),
                others_cpu_pct=others.pct,
            )
        )
    return rounds


# --- the run -----------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _spread(values: Sequence[float]) -> list[float]:
    return [round(min(values), 3), round(max(values), 3)]


def _target(name: str, value: float, limit: float, at_most: bool) -> dict[str, Any]:
    met = value <= limit if at_most else value >= limit
    return {"name": name, "value": round(value, 3), "limit": limit, "at_most": at_most, "met": met}


T_DOCUMENT: Final = "document / its pages one by one"
T_OCRMYPDF: Final = "searchable PDF pages/s, platform / OCRmyPDF"
T_CER: Final = "largest CER difference on a page"
T_RSS: Final = "gateway peak RSS MB while the long document streams"
T_FIRST_LINE: Final = "first NDJSON line - one page's recognition, s"
T_FIRST_LINE_SCAN: Final = "first NDJSON line - one page's recognition, s (scanned pages)"


def _document_summary(run: DocumentRun, pages: int) -> dict[str, Any]:
    medians = {name: _median(run.seconds(name)) for name in run.readings}
    rounds = [a / b for a, b in zip(run.seconds(DOCUMENT), run.seconds(ONE_BY_ONE), strict=True)]
    engine_per_page = {
        name: _median([r.engine_s / pages for r in readings])
        for name, readings in run.readings.items()
    }
    busy = {
        name: _median([r.engine_s / r.seconds for r in readings])
        for name, readings in run.readings.items()
    }
    first_lines = [r.first_line_s for r in run.readings[DOCUMENT_NDJSON] if r.first_line_s]
    streamed = run.readings[DOCUMENT_NDJSON]
    return {
        "pages": pages,
        "median_s": {k: round(v, 3) for k, v in medians.items()},
        "ratio": round(medians[DOCUMENT] / medians[ONE_BY_ONE], 3),
        "round_ratios": [round(r, 3) for r in rounds],
        # Other work only ever adds time: each way's fastest round is its least disturbed one.
        "best_ratio": round(min(run.seconds(DOCUMENT)) / min(run.seconds(ONE_BY_ONE)), 3),
        "engine_s_per_page": {k: round(v, 3) for k, v in engine_per_page.items()},
        "engine_busy_workers": {k: round(v, 2) for k, v in busy.items()},
        "cpu_s_per_page": {
            name: round(_median([r.cpu_s / pages for r in readings]), 3)
            for name, readings in run.readings.items()
        },
        "first_line_s": round(_median(first_lines), 3),
        "first_page_engine_s": round(_median([r.first_page_engine_s or 0.0 for r in streamed]), 3),
        "seconds": {name: run.seconds(name) for name in run.readings},
        "others_cpu_pct": {
            name: [r.others_cpu_pct for r in readings] for name, readings in run.readings.items()
        },
    }


def summarise(
    document: DocumentRun,
    searchable: SearchableRun,
    stream: Sequence[StreamRound],
    sizes: Sizes,
) -> dict[str, Any]:
    """Medians, per-round spreads and the targets, as written to documents.json."""
    doc = _document_summary(document, sizes.document_pages)
    pages_per_s = {
        name: sizes.searchable_pages / _median(values)
        for name, values in searchable.seconds.items()
    }
    cer_spread = max(
        max(values) - min(values) for values in zip(*searchable.cer.values(), strict=True)
    )
    first_line = _median([r.first_line_s for r in stream])
    engine = _median([r.page_engine_s for r in stream])
    peak = max(r.gateway_peak_mb for r in stream)
    targets = [_target(T_DOCUMENT, doc["ratio"], DOCUMENT_RATIO_MAX, at_most=True)]
    best_speedup = None
    if OCRMYPDF in pages_per_s:
        speedup = pages_per_s[PLATFORM] / pages_per_s[OCRMYPDF]
        targets.append(_target(T_OCRMYPDF, speedup, OCRMYPDF_SPEEDUP_MIN, at_most=False))
        seconds = searchable.seconds
        best_speedup = round(min(seconds[OCRMYPDF]) / min(seconds[PLATFORM]), 3)
    scan_slack = doc["first_line_s"] - doc["engine_s_per_page"][ONE_BY_ONE]
    targets += [
        _target(T_CER, cer_spread, CER_SPREAD_MAX, at_most=True),
        _target(T_RSS, peak, GATEWAY_RSS_MAX_MB, at_most=True),
        _target(T_FIRST_LINE, first_line - engine, FIRST_LINE_SLACK_S, at_most=True),
        _target(T_FIRST_LINE_SCAN, scan_slack, FIRST_LINE_SLACK_S, at_most=True),
    ]
    return {
        "document": doc,
        "searchable_pdf": {
            "pages": sizes.searchable_pages,
            "pages_per_s": {k: round(v, 3) for k, v in pages_per_s.items()},
            "seconds": searchable.seconds,
            "cer_per_page": searchable.cer,
            "cer_mean": {k: round(_mean(v), 4) for k, v in searchable.cer.items()},
            "cer_largest_difference": round(cer_spread, 4),
            "others_cpu_pct": searchable.others_cpu_pct,
            "gateway_peak_mb": searchable.gateway_peak_mb,
            "best_speedup": best_speedup,
        },
        "stream": {
            "pages": sizes.stream_pages,
            "median_first_line_s": round(first_line, 3),
            "median_page_engine_s": round(engine, 3),
            "median_page_alone_s": round(_median([r.page_alone_s for r in stream]), 3),
            "median_total_s": round(_median([r.total_s for r in stream]), 3),
            "gateway_peak_mb": peak,
            "gateway_before_mb": max(r.gateway_before_mb for r in stream),
            "rounds": [asdict(r) for r in stream],
        },
        "targets": targets,
    }


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _others(values: Sequence[float]) -> str:
    return f"other processes took {_median(values):.0f} % of the CPU (max {max(values):.0f} %)"


def table(summary: Mapping[str, Any], setup: Mapping[str, Any]) -> str:
    """The run as a few lines of text for people."""
    doc, pdf, stream = summary["document"], summary["searchable_pdf"], summary["stream"]
    verdicts = {t["name"]: t for t in summary["targets"]}

    def verdict(name: str) -> str:
        t = verdicts[name]
        sign = "<=" if t["at_most"] else ">="
        return f"{t['value']:g}, target {sign} {t['limit']:g}: {'met' if t['met'] else 'NOT met'}"

    def engine(name: str) -> str:
        return (
            f"\n     a page: engine {doc['engine_s_per_page'][name]:.2f} s, our CPU "
            f"{doc['cpu_s_per_page'][name]:.2f} s; {doc['engine_busy_workers'][name]:.2f} "
            f"workers busy; others took {_median(doc['others_cpu_pct'][name]):.0f} % CPU"
        )

    rounds = ", ".join(f"{r:.2f}" for r in doc["round_ratios"])
    lines = [
        f"== documents: {setup['engine_workers']} engine workers on {setup['cores']} cores, "
        f"gateway page concurrency {setup['page_concurrency']}, "
        f"medians of {setup['repeats']} round(s) ==",
        f"1. {doc['pages']}-page scanned PDF ({setup['scanned_page']})",
        f"   whole document, JSON     {doc['median_s'][DOCUMENT]:7.2f} s{engine(DOCUMENT)}",
        f"   whole document, NDJSON   {doc['median_s'][DOCUMENT_NDJSON]:7.2f} s, first line "
        f"after {doc['first_line_s']:.2f} s{engine(DOCUMENT_NDJSON)}",
        f"   its pages one by one     {doc['median_s'][ONE_BY_ONE]:7.2f} s{engine(ONE_BY_ONE)}",
        f"   {T_DOCUMENT}: {verdict(T_DOCUMENT)}",
        f"     rounds {rounds}; fastest document / fastest one by one {doc['best_ratio']:.2f}",
        f"   {T_FIRST_LINE_SCAN}: {verdict(T_FIRST_LINE_SCAN)}",
        f"     its page took {doc['first_page_engine_s']:.2f} s in the engine "
        f"({doc['engine_s_per_page'][ONE_BY_ONE]:.2f} s alone), the rest "
        f"{doc['first_line_s'] - doc['first_page_engine_s']:.2f} s",
        f"2. searchable PDF of a {pdf['pages']}-page scan (the same kind of pages)",
    ]
    for name, rate in pdf["pages_per_s"].items():
        low, high = _spread(pdf["seconds"][name])
        cer_mean, cer_max = pdf["cer_mean"][name], max(pdf["cer_per_page"][name])
        others = _median(pdf["others_cpu_pct"][name])
        lines.append(
            f"   {name:<14} {rate:5.2f} pages/s ({low:.1f}-{high:.1f} s; others took "
            f"{others:.0f} % CPU)\n     text layer CER mean {cer_mean:.4f}, "
            f"worst page {cer_max:.4f}"
        )
    if OCRMYPDF in pdf["pages_per_s"]:
        lines.append(f"   {T_OCRMYPDF}: {verdict(T_OCRMYPDF)}")
        lines.append(f"     fastest round of each: {pdf['best_speedup']:.2f}")
    else:
        lines.append("   OCRmyPDF skipped (--skip-ocrmypdf)")
    lines += [
        f"   {T_CER}: {verdict(T_CER)}",
        f"   gateway peak RSS while it made them {pdf['gateway_peak_mb']:.0f} MB",
        f"3. {stream['pages']}-page PDF streamed as NDJSON ({setup['line_page']})",
        f"   gateway RSS {stream['gateway_before_mb']:.0f} MB before",
        f"   {T_RSS}: {verdict(T_RSS)}",
        f"   first line after {stream['median_first_line_s']:.2f} s; one page alone: "
        f"{stream['median_page_engine_s']:.2f} s in the engine, "
        f"{stream['median_page_alone_s']:.2f} s through the gateway",
        f"   {T_FIRST_LINE}: {verdict(T_FIRST_LINE)}",
        f"   all {stream['pages']} pages in {stream['median_total_s']:.1f} s "
        f"({stream['pages'] / stream['median_total_s']:.1f} pages/s); "
        f"{_others([r['others_cpu_pct'] for r in stream['rounds']])}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.documents", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny documents, 1 round")
    parser.add_argument("--repeats", type=int, help=f"rounds of each part ({FULL.repeats})")
    parser.add_argument("--document-pages", type=int, help=f"({FULL.document_pages})")
    parser.add_argument("--searchable-pages", type=int, help=f"({FULL.searchable_pages})")
    parser.add_argument(
        "--stream-pages", type=int, help=f"({FULL.stream_pages}; the gateway's MAX_PAGES at most)"
    )
    parser.add_argument(
        "--skip-ocrmypdf", action="store_true", help="leave OCRmyPDF out (it is not installed)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        help=f"longest wait (s) for a quiet machine before each reading ({FULL.settle_s:g})",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where {RESULT_FILE} goes")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        document_pages=args.document_pages or base.document_pages,
        searchable_pages=args.searchable_pages or base.searchable_pages,
        stream_pages=args.stream_pages or base.stream_pages,
        lines_per_page=base.lines_per_page,
        repeats=args.repeats or base.repeats,
        settle_s=base.settle_s if args.settle is None else args.settle,
    )
    max_pages = GatewaySettings.model_fields["max_pages"].default
    counts = (sizes.document_pages, sizes.searchable_pages, sizes.stream_pages, sizes.repeats)
    if min(counts) < 1 or sizes.stream_pages > max_pages:
        parser.error(f"page counts and --repeats must be at least 1; pages at most {max_pages}")
    with_ocrmypdf = not args.skip_ocrmypdf
    if with_ocrmypdf and importlib.util.find_spec("ocrmypdf") is None:
        parser.error("OCRmyPDF is not installed: `pip install ocrmypdf`, or --skip-ocrmypdf")
    for tool in ("tesseract", "pdftotext"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not on PATH: bash scripts/install-system-deps.sh bench")

    scanned = [
        scanned_text_page(seed, lines=sizes.lines_per_page)
        for seed in range(max(sizes.document_pages, sizes.searchable_pages))
    ]
    line_pages = [line_text_page(number) for number in range(1, sizes.stream_pages + 1)]
    first = scanned[0].image
    setup: dict[str, Any] = {
        "repeats": sizes.repeats,
        "scanned_page": f"US letter at 300 dpi, {first.width}x{first.height} grey JPEG, "
        f"{len(scanned[0].text.splitlines())} lines of text",
        "line_page": "8x1 inch at 150 dpi, one line; the model renders PDFs at 300 dpi",
        "page_concurrency": GatewaySettings.model_fields["page_concurrency"].default,
        "ocrmypdf": with_ocrmypdf,
        "cores": available_cpus(),
        "settle_s": sizes.settle_s,
    }
    with tempfile.TemporaryDirectory(prefix="bench-documents-") as temp:
        work = Path(temp)
        stack = PlatformStack(work)
        stack.start()
        try:
            counters = read_engine_counters(stack.metrics_url)
            setup["engine_workers"] = counters.workers if counters else "?"
            setup["stack"] = stack.settings
            watch = Watch(list(stack.pids().values()), settle_s=sizes.settle_s)
            with httpx.Client(timeout=REQUEST_BUDGET_S * 2) as client:
                url = stack.upload_url
                document = measure_document(
                    client, url, scanned[: sizes.document_pages], sizes.repeats, watch
                )
                searchable = measure_searchable(
                    client,
                    url,
                    scanned[: sizes.searchable_pages],
                    sizes.repeats,
                    watch,
                    work,
                    with_ocrmypdf,
                    stack.pids()["gateway"],
                )
                stream = measure_stream(
                    client, url, line_pages, sizes.repeats, watch, stack.pids()["gateway"]
                )
        finally:
            stack.stop()
    summary = summarise(document, searchable, stream, sizes)
    print(table(summary, setup))
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"setup": setup, **summary}
    (args.out / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
