"""``POST /gateway/ocr``: one uploaded image or document in, its text out, one model call a page.

The answer is JSON by default, or the format the ``format`` field or the ``Accept`` header asks
for (:mod:`gateway.negotiation`), NDJSON streaming a line per page as it is read; the model is
asked only for the outputs that answer needs. Reading the pages and joining their answers is
:mod:`gateway.reading`'s.
"""

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from opentelemetry import trace

import contract
from gateway.context import tenant_of
from gateway.deps import (
    InferenceClientDep,
    MetricsDep,
    RequestIdDep,
    SettingsDep,
    StopwatchDep,
)
from gateway.documents import Document, DocumentKind, parse_pages, select_pages
from gateway.errors import (
    BadRequestError,
    EmptyFileError,
    EncryptedDocumentError,
    GatewayBusyError,
    InternalError,
    InvalidArgumentError,
    InvalidRequestError,
    MalformedResponseError,
    ModelNotFoundError,
    ModelOverloadedError,
    ModelTimeoutError,
    ModelUnavailableError,
    NotAcceptableError,
    PayloadTooLargeError,
    RateLimitedError,
    RequestTimeoutError,
    TooManyAuthFailuresError,
    TooManyFilesError,
    TooManyPagesError,
    UnauthorizedError,
    UnknownUpstreamError,
    UnreadableDocumentError,
    UnreadablePageError,
    UnsupportedMediaTypeError,
)
from gateway.media import ACCEPTED_FORMATS, sniff_image_type
from gateway.negotiation import (
    JSON,
    NDJSON,
    FormatName,
    PdfTextChoice,
    RotateChoice,
    choose_format,
    content_disposition,
    model_outputs,
)
from gateway.reading import (
    PageCall,
    collect,
    failure_header,
    file_answer,
    json_answer,
    ndjson_lines,
    open_upload,
    read_document,
)
from gateway.routes.errors import error_responses
from gateway.schemas import OcrResponse, Timings

logger = logging.getLogger(__name__)

router = APIRouter(tags=["ocr"], redirect_slashes=False)

_FORMAT_DESCRIPTION: Final = (
    "The answer's format: `json` (the default: text, confidence, words and pages), `ndjson` "
    "(a JSON line per page as soon as it is read, then a summary line), `text` (the text "
    "alone, pages separated by form feeds, text/plain), or a file of the whole document: "
    "`hocr` (hOCR XHTML), `tsv` (Tesseract's TSV), `alto` (ALTO 4 XML), `pdf` (a searchable "
    "PDF; for a PDF upload, its own pages with a text layer added). Without it, the "
    "`Accept` header chooses by media type: "
    + ", ".join(f"`{f.media_type.split(';')[0]}` → `{f.name}`" for f in contract.OUTPUT_FORMATS)
    + "; `*/*` or no header → `json`."
)


def _ok_response_doc() -> dict[str, Any]:
    """The 200 answer's documentation: JSON (from the response model) or one of the files."""
    content: dict[str, Any] = {}
    for output_format in contract.OUTPUT_FORMATS:
        if output_format is JSON:
            continue  # FastAPI documents it from `response_model`
        binary = "charset=" not in output_format.media_type
        schema = {"type": "string", "format": "binary"} if binary else {"type": "string"}
        content[output_format.media_type.split(";")[0]] = {"schema": schema}
    return {
        "description": "The recognised text: JSON, or the format asked for with `format` or "
        "`Accept` (served with its media type).",
        "content": content,
        "headers": {
            "Content-Disposition": {
                "description": "For `hocr`, `tsv`, `alto` and `pdf`: `attachment` named after "
                "the upload, e.g. `scan.hocr` for `scan.png`.",
                "required": False,
                "schema": {"type": "string"},
            }
        },
    }


@router.post(
    "/gateway/ocr",
    summary="Recognise the text in an image or document",
    response_model=OcrResponse,
    responses={
        200: _ok_response_doc(),
        **error_responses(
            BadRequestError,
            UnauthorizedError,
            NotAcceptableError,
            RequestTimeoutError,
            PayloadTooLargeError,
            TooManyPagesError,
            UnsupportedMediaTypeError,
            InvalidRequestError,
            EmptyFileError,
            UnreadableDocumentError,
            EncryptedDocumentError,
            UnreadablePageError,
            TooManyFilesError,
            InvalidArgumentError,
            RateLimitedError,
            TooManyAuthFailuresError,
            ModelOverloadedError,
            InternalError,
            ModelNotFoundError,
            MalformedResponseError,
            UnknownUpstreamError,
            ModelUnavailableError,
            GatewayBusyError,
            ModelTimeoutError,
        ),
    },
)
async def recognise(
    request: Request,
    image_file: Annotated[
        UploadFile,
        File(
            description=f"The image or document to read; one of {ACCEPTED_FORMATS} (a PDF's "
            "pages and a TIFF's frames are each read as a page)."
        ),
    ],
    client: InferenceClientDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    stopwatch: StopwatchDep,
    metrics: MetricsDep,
    lang: Annotated[
        str,
        Form(
            pattern=contract.LANG.pattern,
            max_length=contract.LANG.max_length,
            description=contract.LANG.description,
        ),
    ] = contract.LANG.default,
    psm: Annotated[
        int | None,
        Form(
            ge=contract.PSM.minimum,
            le=contract.PSM.maximum,
            description=f"{contract.PSM.description} The model's default if unset.",
        ),
    ] = None,
    format_name: Annotated[
        FormatName | None, Form(alias="format", description=_FORMAT_DESCRIPTION)
    ] = None,
    rotate: Annotated[
        RotateChoice | None,
        Form(description=contract.ROTATE.description),
    ] = None,
    deskew: Annotated[
        bool | None,
        Form(
            description=f"{contract.DESKEW.description} `true` or `false`; "
            f"`{str(contract.DESKEW.default).lower()}` when unset."
        ),
    ] = None,
    pages: Annotated[
        str | None,
        Form(
            max_length=256,
            description="The pages of a PDF or multi-page TIFF to read, e.g. `1-3,7` (from 1); "
            "all when unset.",
        ),
    ] = None,
    dpi: Annotated[
        int | None,
        Form(
            ge=contract.DPI.minimum,
            le=contract.DPI.maximum,
            description=contract.DPI.description,
        ),
    ] = None,
    pdf_text: Annotated[
        PdfTextChoice | None, Form(description=contract.PDF_TEXT.description)
    ] = None,
    preview: Annotated[
        bool,
        Form(
            description="With the `ndjson` format: each page line also carries `preview`, the "
            "upright page that was read as a `data:image/jpeg;base64,...` URL (longest side "
            f"at most {contract.PREVIEW_MAX_SIDE} px), to draw the page's word boxes on. "
            "The other formats ignore it."
        ),
    ] = False,
) -> Response:
    """Reads the upload once, checks it is an accepted image or document by its bytes, and
    reads its pages on the model (see :mod:`gateway.reading` for the rule on failures).

    The answer is serialised here by pydantic, straight to JSON bytes: returned as a model,
    FastAPI would validate it again and go through `jsonable_encoder` and `json.dumps`.
    """
    # Before the upload is looked at: a client that can take no answer learns it at once.
    accept = ", ".join(request.headers.getlist("accept")) or None
    output_format = choose_format(format_name, accept)
    selection = parse_pages(pages, max_pages=settings.max_pages)
    # FastAPI binds the first of several same-named parts; two images in one call is an error.
    files = (await request.form()).getlist("image_file")
    if len(files) > 1:
        raise TooManyFilesError(len(files))
    upload = await image_file.read()
    upload_name = image_file.filename
    # The spooled copy is not needed any more; freeing it now, not after the answer, halves
    # what each upload waiting for the model holds.
    await image_file.close()
    metrics.upload_bytes.observe(len(upload))
    if not upload:
        raise EmptyFileError()
    if len(upload) > settings.max_upload_bytes:
        raise PayloadTooLargeError(settings.max_upload_bytes)
    media_type = sniff_image_type(upload)
    if media_type is None:
        raise UnsupportedMediaTypeError(ACCEPTED_FORMATS)

    # On the request's server span (a no-op when tracing is off): what was asked, and of what.
    span = trace.get_current_span()
    span.set_attributes(
        {
            "ocr.media_type": media_type,
            "ocr.upload_bytes": len(upload),
            "ocr.lang": lang,
            "ocr.answer_format": output_format.name,
        }
    )
    for name, value in (("ocr.psm", psm), ("ocr.rotate", rotate), ("ocr.deskew", deskew)):
        if value is not None:
            span.set_attribute(name, value)
    document = await open_upload(upload, settings)
    try:
        numbers = select_pages(selection, document.page_count)
        span.set_attributes({"ocr.page_count": document.page_count, "ocr.pages": len(numbers)})
        grafted = output_format.name == "pdf" and document.kind is DocumentKind.PDF
        outputs = model_outputs(output_format)
        if grafted:
            outputs = (*outputs, contract.PAGE.name)  # the page's turn places its text layer
        if preview and output_format is NDJSON:
            outputs = (*outputs, contract.PREVIEW.name)
        call = PageCall(
            request_id=request_id,
            # The tenant keeps the model's result cache apart per caller (see gateway.access).
            tenant=tenant_of(request.scope),
            lang=lang,
            psm=psm,
            rotate=rotate,
            deskew=deskew,
            dpi=dpi,
            outputs=outputs,
            pdf_text=pdf_text,
            pdf_text_only=grafted,
        )
        outcomes = read_document(document, numbers, client, call, settings, metrics)
        if output_format is NDJSON:
            lines = ndjson_lines(
                outcomes,
                page_count=document.page_count,
                model_name=settings.model_name,
                request_id=request_id,
                elapsed_ms=stopwatch.elapsed_ms,
            )
            return StreamingResponse(
                _closing(lines, document),
                media_type=output_format.media_type,
                headers={"Vary": "Accept"},
            )
        model_started = time.perf_counter()
        read = await collect(outcomes)
        model_ms = (time.perf_counter() - model_started) * 1000.0
        headers: dict[str, str] = {}
        if output_format is JSON:
            body = json_answer(
                read,
                page_count=document.page_count,
                model_name=settings.model_name,
                request_id=request_id,
                timings=Timings(
                    total_ms=round(stopwatch.elapsed_ms(), 3), model_ms=round(model_ms, 3)
                ),
            )
            span.set_attributes({"ocr.words": len(body.words), "ocr.confidence": body.confidence})
            content = body.model_dump_json().encode()
        else:
            answer = await file_answer(output_format.name, read, document, upload)
            content = answer.content
            headers.update(failure_header(answer.failed_pages))
            if output_format.output is not None:
                headers["Content-Disposition"] = content_disposition(upload_name, output_format)
    finally:
        if output_format is not NDJSON:
            document.close()
    logger.info(
        "request %s: %s of %s bytes, %d of %d pages, answered as %s (%s bytes) in %.1f ms (model)",
        request_id,
        media_type,
        len(upload),
        len(numbers),
        document.page_count,
        output_format.name,
        len(content),
        model_ms,
    )
    # The answer depends on Accept when no format was named: caches must keep them apart.
    headers["Vary"] = "Accept"
    return Response(content, media_type=output_format.media_type, headers=headers)


async def _closing(lines: AsyncGenerator[bytes, None], document: Document) -> AsyncIterator[bytes]:
    """The NDJSON lines, closing the document once they are written or the client has gone."""
    try:
        async for line in lines:
            yield line
    finally:
        await lines.aclose()
        document.close()
