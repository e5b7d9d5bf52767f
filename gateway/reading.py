"""An upload read page by page on the model, and the answers made of its pages.

Every upload is a document here: an image is a document of one page, a PDF or multi-page TIFF
one of many (:mod:`gateway.documents` splits it, without rasterising, one page at a time in a
worker thread). Each page selected is one ``ModelInfer`` call carrying only that page's bytes,
`page_concurrency` at a time (:mod:`gateway.pages`), each with the time the document has left.

The rule for failures: an upload that cannot be read at all is a 4xx before any page is sent
(unreadable, encrypted, too many pages, a malformed ``pages``); a page that fails (its deadline
passed, the model refused it) gets an ``error`` in its entry and the document goes on; when
every page failed, the answer is the first page's error, as it would be for a single image.
"""

from __future__ import annotations

import base64
import functools
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import anyio
import grpc

import contract
from contract import PageFacts, Word
from gateway.assemble import PageImage, PageOutput, assemble
from gateway.client import InferenceClient
from gateway.codec import OcrResult
from gateway.documents import Document, DocumentKind, open_document
from gateway.errors import GatewayError, InternalError, ModelOverloadedError, upstream_error_for
from gateway.metrics import GatewayMetrics, measure_pages
from gateway.pages import PageOutcome, read_pages
from gateway.schemas import (
    DocumentSummary,
    DocumentSummaryLine,
    OcrResponse,
    PageError,
    PageFailure,
    PreviewedPage,
    Timings,
)
from gateway.settings import GatewaySettings

_T = TypeVar("_T")
#: Spreads the retries of overloaded pages (not security-sensitive).
_jitter = random.Random()  # noqa: S311


@dataclass(frozen=True, slots=True)
class PageCall:
    """What every page of one upload is asked of the model with."""

    request_id: str
    lang: str
    psm: int | None
    tenant: str | None
    rotate: str | None
    deskew: bool | None
    dpi: int | None
    outputs: tuple[str, ...]
    pdf_text: str | None = None
    pdf_text_only: bool = False


async def open_upload(data: bytes, settings: GatewaySettings) -> Document:
    """The upload as a document, opened (and its pages counted) in a worker thread."""
    return await anyio.to_thread.run_sync(
        functools.partial(open_document, data, max_pages=settings.max_pages)
    )


def page_reader(
    document: Document,
    client: InferenceClient,
    call: PageCall,
    settings: GatewaySettings,
) -> Callable[[int], Awaitable[OcrResult]]:
    """Reads one page of `document` on the model within what the document's time leaves; a
    page of a document of several pages refused for overload is tried again (see below)."""
    deadline = time.monotonic() + max(settings.document_timeout_s, settings.request_timeout_s)
    retry_overload = document.page_count > 1

    async def read_one(number: int) -> OcrResult:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise upstream_error_for(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "the document's time ran out before this page was read",
            )
        page = await anyio.to_thread.run_sync(document.page, number)
        while True:
            try:
                return await client.infer(
                    page.data,
                    request_id=call.request_id,
                    lang=call.lang,
                    psm=call.psm,
                    tenant=call.tenant,
                    rotate=call.rotate,
                    deskew=call.deskew,
                    outputs=call.outputs,
                    dpi=call.dpi,
                    pdf_text=call.pdf_text,
                    pdf_text_only=call.pdf_text_only,
                    timeout_s=min(settings.request_timeout_s, remaining),
                )
            except ModelOverloadedError as error:
                # Refused at once for overload: the page waits the hinted time (jittered, so
                # the pages of a document do not come back together) and tries again while
                # the document has time; a single image gets the 429 at once, as before.
                if not retry_overload:
                    raise
                wait_s = retry_after_s(error) * (0.5 + _jitter.random())
                remaining = deadline - time.monotonic() - wait_s
                if remaining <= 0:
                    raise
                await anyio.sleep(wait_s)

    return read_one


def retry_after_s(error: GatewayError, default_s: float = 1.0) -> float:
    """The seconds an error's `Retry-After` header asks for (`default_s` without one)."""
    try:
        return max(0.0, float(error.headers.get("Retry-After", default_s)))
    except ValueError:
        return default_s


def read_document(
    document: Document,
    numbers: Sequence[int],
    client: InferenceClient,
    call: PageCall,
    settings: GatewaySettings,
    metrics: GatewayMetrics | None = None,
) -> AsyncGenerator[PageOutcome[OcrResult], None]:
    """Each selected page's outcome as soon as the model has read it (completion order); with
    `metrics`, the document's page count, and each page's time and outcome, are recorded."""
    reader = page_reader(document, client, call, settings)
    if metrics is not None:
        metrics.document_pages.observe(len(numbers))
        reader = measure_pages(reader, metrics)
    return read_pages(numbers, reader, settings.page_concurrency)


async def collect(
    outcomes: AsyncGenerator[PageOutcome[OcrResult], None],
) -> list[PageOutcome[OcrResult]]:
    """Every outcome, in page order; when every page failed, the first page's error."""
    gathered = sorted([outcome async for outcome in outcomes], key=lambda o: o.number)
    if gathered and all(outcome.error is not None for outcome in gathered):
        error = gathered[0].error
        assert error is not None
        raise error
    return gathered


def _required(value: _T | None, output: str) -> _T:
    """An output the model was asked for, so present; a gateway bug if not."""
    if value is None:
        raise InternalError(log_detail=f"output {output!r} was asked for but not decoded")
    return value


def page_entry(outcome: PageOutcome[OcrResult], page_count: int) -> PageFacts | PageFailure:
    """The `pages` entry of one outcome: its page facts numbered in the document, or its error."""
    if outcome.error is not None or outcome.result is None:
        error = outcome.error
        assert error is not None
        return PageFailure(
            page=outcome.number, error=PageError(code=error.code, message=error.message)
        )
    facts = _required(outcome.result.page, contract.PAGE.name)
    number = outcome.number
    return facts.model_copy(
        update={
            "page": number,
            "page_count": page_count,
            "words": [word.model_copy(update={"page": number}) for word in facts.words],
        }
    )


def page_line(outcome: PageOutcome[OcrResult], page_count: int) -> PageFacts | PageFailure:
    """An NDJSON page line: the `pages` entry, with the page image as a `data:` URL when the
    model was asked for its `preview`."""
    entry = page_entry(outcome, page_count)
    preview = outcome.result.preview if outcome.result is not None else None
    if preview is None or not isinstance(entry, PageFacts):
        return entry
    url = "data:image/jpeg;base64," + base64.b64encode(preview).decode("ascii")
    return PreviewedPage(**dict(entry), preview=url)


def _words_confidence(words: Sequence[Word]) -> float:
    return round(sum(w.confidence for w in words) / len(words), 2) if words else 0.0


def json_answer(
    outcomes: Sequence[PageOutcome[OcrResult]],
    *,
    page_count: int,
    model_name: str,
    request_id: str,
    timings: Timings,
) -> OcrResponse:
    """The JSON answer: all pages' text joined by form feeds, their words, one entry each."""
    entries = [page_entry(outcome, page_count) for outcome in outcomes]
    read = [entry for entry in entries if isinstance(entry, PageFacts)]
    words = [word for entry in read for word in entry.words]
    results = [outcome.result for outcome in outcomes if outcome.result is not None]
    if len(outcomes) == 1 and results:
        # One page: the model's own figures, exactly as a single image has always answered.
        only = results[0]
        text = _required(only.text, contract.TEXT.name)
        confidence = round(_required(only.confidence, contract.CONFIDENCE.name), 2)
    else:
        text = "\f".join(entry.text if isinstance(entry, PageFacts) else "" for entry in entries)
        confidence = _words_confidence(words)
    first = results[0] if results else None
    return OcrResponse(
        text=text,
        confidence=confidence,
        words=words,
        page_count=page_count,
        pages=entries,
        model=(first.model_name if first else None) or model_name,
        model_version=first.model_version if first else None,
        request_id=request_id,
        timings=timings,
    )


async def ndjson_lines(
    outcomes: AsyncGenerator[PageOutcome[OcrResult], None],
    *,
    page_count: int,
    model_name: str,
    request_id: str,
    elapsed_ms: Callable[[], float],
) -> AsyncGenerator[bytes, None]:
    """One JSON line per page as soon as it is read, then the document's summary line.

    If the client goes away, the server cancels this generator where it waits, which cancels
    the page calls still running (see `gateway.pages`)."""
    failed: list[int] = []
    read = 0
    words: list[Word] = []
    model_started = time.perf_counter()
    try:
        async for outcome in outcomes:
            entry = page_line(outcome, page_count)
            if isinstance(entry, PageFailure):
                failed.append(entry.page)
            else:
                read += 1
                words.extend(entry.words)
            yield entry.model_dump_json().encode() + b"\n"
    finally:
        await outcomes.aclose()
    now = time.perf_counter()
    summary = DocumentSummary(
        page_count=page_count,
        pages_read=read,
        failed_pages=sorted(failed),
        confidence=_words_confidence(words),
        model=model_name,
        request_id=request_id,
        timings=Timings(
            total_ms=round(elapsed_ms(), 3),
            model_ms=round((now - model_started) * 1000.0, 3),
        ),
    )
    yield DocumentSummaryLine(summary=summary).model_dump_json().encode() + b"\n"


@dataclass(frozen=True, slots=True)
class FileAnswer:
    """A document answer (text, hOCR, TSV, ALTO, PDF) and the pages that failed in it."""

    content: bytes
    failed_pages: tuple[int, ...]


async def file_answer(
    format_name: str,
    outcomes: Sequence[PageOutcome[OcrResult]],
    document: Document,
    upload: bytes,
) -> FileAnswer:
    """The pages' outputs joined into one document of `format_name`, in a worker thread; the
    model's own output untouched when the upload is a single image."""
    name = contract.OUTPUT_FORMATS_BY_NAME[format_name].output
    grafted = format_name == "pdf" and document.kind is DocumentKind.PDF
    if document.page_count == 1 and not grafted and len(outcomes) == 1:
        only = outcomes[0].result
        if only is not None:
            if name is None:
                return FileAnswer(_required(only.text, contract.TEXT.name).encode(), ())
            return FileAnswer(_required(only.documents.get(name.name), name.name), ())
    pages: list[PageOutput] = []
    for outcome in outcomes:
        result = outcome.result
        if result is None:
            fallback = None
            if format_name == "pdf" and not grafted:
                page = await anyio.to_thread.run_sync(document.page, outcome.number)
                fallback = PageImage(page.data)
            pages.append(PageOutput(outcome.number, None, fallback=fallback))
            continue
        facts = result.page
        if grafted and facts is not None and facts.source == "pdf":
            # The page kept its own text: it stays as it is, with no layer laid over it.
            pages.append(PageOutput(outcome.number, None))
            continue
        if name is None:
            data = _required(result.text, contract.TEXT.name).encode()
        else:
            data = _required(result.documents.get(name.name), name.name)
        pages.append(
            PageOutput(
                outcome.number,
                data,
                width=facts.width if facts else None,
                height=facts.height if facts else None,
                rotation=facts.rotation if facts else 0,
            )
        )
    content = await anyio.to_thread.run_sync(
        functools.partial(assemble, format_name, pages, upload if grafted else None)
    )
    failed = tuple(outcome.number for outcome in outcomes if outcome.error is not None)
    return FileAnswer(content, failed)


def failure_header(failed_pages: Sequence[int]) -> dict[str, str]:
    """`X-OCR-Failed-Pages: 2,5` when some pages of a file answer could not be read."""
    return {"X-OCR-Failed-Pages": ",".join(map(str, failed_pages))} if failed_pages else {}
