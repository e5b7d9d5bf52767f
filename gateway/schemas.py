"""Pydantic models of the gateway's HTTP API: OCR results, health answers and the error body."""

from typing import Literal

from pydantic import BaseModel, Field

from contract import PREVIEW_MAX_SIDE, PageFacts, PageTimings, Word

__all__ = [
    "DocumentSummary",
    "DocumentSummaryLine",
    "ErrorDetail",
    "ErrorResponse",
    "Languages",
    "LiveStatus",
    "OcrResponse",
    "PageError",
    "PageFacts",
    "PageFailure",
    "PageTimings",
    "PreviewedPage",
    "ReadyStatus",
    "Timings",
    "Word",
]


class Timings(BaseModel):
    """Where the time of one request went."""

    total_ms: float = Field(description="Time from request arrival to response, in ms.")
    model_ms: float = Field(description="Time spent in the gRPC call(s) to the model, in ms.")


class PageError(BaseModel):
    """Why one page of a document was not read."""

    code: str = Field(description="The error's stable code, as in the error table.")
    message: str = Field(description="Human-readable explanation.")


class PageFailure(BaseModel):
    """A page of a document that could not be read; the rest of the document was."""

    page: int = Field(description="Page number in the document, from 1.")
    error: PageError


class OcrResponse(BaseModel):
    """The text recognised in one uploaded image or document."""

    text: str = Field(
        description="The full recognised text, lines separated by newlines, pages by a form "
        "feed (`\\f`)."
    )
    confidence: float = Field(
        description="Mean word confidence over every page read, 0-100; 0 when no word was found."
    )
    words: list[Word] = Field(description="Every recognised word with its box and `page`.")
    page_count: int = Field(
        description="Pages in the upload: 1 for an image, the PDF's pages or TIFF's frames."
    )
    pages: list[PageFacts | PageFailure] = Field(
        description="What was read on each page, in order: its size, the rotation and deskew "
        "applied, its text, confidence and words (boxes in the upright page's pixels) and the "
        "engine's timings. To map a box back to the upload, undo `skew` (rotate by `-skew` "
        "degrees about the centre of the `width` x `height` page), then undo `rotation` (turn "
        "the page `rotation` degrees counter-clockwise)."
    )
    model: str = Field(description="Name of the model that answered.")
    model_version: str | None = Field(description="Version of the model, when it reports one.")
    request_id: str = Field(description="The request id, also in the X-Request-ID header.")
    timings: Timings


class PreviewedPage(PageFacts):
    """A page line of an NDJSON answer asked for with `preview=true`: the page's facts and the
    image they describe."""

    preview: str = Field(
        description="The upright page that was read, as a `data:image/jpeg;base64,...` URL: "
        f"a JPEG whose longest side is at most {PREVIEW_MAX_SIDE} px. A word box scales onto "
        "it by the image's size over the page's `width` x `height`."
    )


class DocumentSummary(BaseModel):
    """The last line of an NDJSON answer: the document as a whole."""

    page_count: int = Field(description="Pages in the upload.")
    pages_read: int = Field(description="Pages read successfully.")
    failed_pages: list[int] = Field(description="Pages whose entry carries an error.")
    confidence: float = Field(description="Mean word confidence over every page read, 0-100.")
    model: str = Field(description="Name of the model that answered.")
    request_id: str = Field(description="The request id, also in the X-Request-ID header.")
    timings: Timings


class DocumentSummaryLine(BaseModel):
    """The NDJSON summary line, keyed so a reader tells it from the page lines."""

    summary: DocumentSummary


class ErrorDetail(BaseModel):
    """What went wrong, in a form clients can branch on."""

    code: str = Field(description="Stable machine-readable code, e.g. `model_unavailable`.")
    message: str = Field(description="Human-readable explanation.")
    request_id: str = Field(description="The request id, also in the X-Request-ID header.")


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


class Languages(BaseModel):
    """The languages the model can read."""

    languages: list[str] = Field(
        description="Tesseract language codes installed on the model server, sorted (e.g. "
        "`deu`, `eng`); `lang` takes one or several joined by `+`."
    )


class LiveStatus(BaseModel):
    """Liveness answer."""

    status: Literal["ok"] = "ok"


class ReadyStatus(BaseModel):
    """Readiness answer."""

    status: Literal["ready"] = "ready"
