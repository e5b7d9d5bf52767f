"""``POST /gateway/ocr``: one uploaded image in, its text out, through one model call.

The answer is JSON by default, or the format the ``format`` field or the ``Accept`` header asks
for (:mod:`gateway.negotiation`); the model is asked only for the outputs that answer needs.
"""

import logging
import time
from typing import Annotated, Any, Final, TypeVar

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from opentelemetry import trace

import contract
from gateway.codec import OcrResult
from gateway.context import tenant_of
from gateway.deps import (
    InferenceClientDep,
    MetricsDep,
    RequestIdDep,
    SettingsDep,
    StopwatchDep,
)
from gateway.errors import (
    BadRequestError,
    EmptyFileError,
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
    UnauthorizedError,
    UnknownUpstreamError,
    UnsupportedMediaTypeError,
)
from gateway.media import ACCEPTED_FORMATS, sniff_image_type
from gateway.negotiation import (
    JSON,
    TEXT,
    FormatName,
    RotateChoice,
    choose_format,
    content_disposition,
    model_outputs,
)
from gateway.routes.errors import error_responses
from gateway.schemas import OcrResponse, Timings

logger = logging.getLogger(__name__)

router = APIRouter(tags=["ocr"], redirect_slashes=False)

_T = TypeVar("_T")

_FORMAT_DESCRIPTION: Final = (
    "The answer's format: `json` (the default: text, confidence, words and pages), `text` "
    "(the text alone, text/plain), or a file of the whole page: `hocr` (hOCR XHTML), `tsv` "
    "(Tesseract's TSV), `alto` (ALTO 4 XML), `pdf` (a searchable PDF). Without it, the "
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
    summary="Recognise the text in an image",
    response_model=OcrResponse,
    responses={
        200: _ok_response_doc(),
        **error_responses(
            BadRequestError,
            UnauthorizedError,
            NotAcceptableError,
            RequestTimeoutError,
            PayloadTooLargeError,
            UnsupportedMediaTypeError,
            InvalidRequestError,
            EmptyFileError,
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
        UploadFile, File(description=f"The image to read; one of {ACCEPTED_FORMATS}.")
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
) -> Response:
    """Reads the upload once, checks it is an accepted image by its bytes, and OCRs it.

    The answer is serialised here by pydantic, straight to JSON bytes: returned as a model,
    FastAPI would validate it again and go through `jsonable_encoder` and `json.dumps`.
    """
    # Before the upload is looked at: a client that can take no answer learns it at once.
    accept = ", ".join(request.headers.getlist("accept")) or None
    output_format = choose_format(format_name, accept)
    # FastAPI binds the first of several same-named parts; two images in one call is an error.
    files = (await request.form()).getlist("image_file")
    if len(files) > 1:
        raise TooManyFilesError(len(files))
    image = await image_file.read()
    upload_name = image_file.filename
    # The spooled copy is not needed any more; freeing it now, not after the answer, halves
    # what each upload waiting for the model holds.
    await image_file.close()
    metrics.upload_bytes.observe(len(image))
    if not image:
        raise EmptyFileError()
    if len(image) > settings.max_upload_bytes:
        raise PayloadTooLargeError(settings.max_upload_bytes)
    media_type = sniff_image_type(image)
    if media_type is None:
        raise UnsupportedMediaTypeError(ACCEPTED_FORMATS)

    # On the request's server span (a no-op when tracing is off): what was asked, and of what.
    span = trace.get_current_span()
    span.set_attributes(
        {
            "ocr.media_type": media_type,
            "ocr.upload_bytes": len(image),
            "ocr.lang": lang,
            "ocr.answer_format": output_format.name,
        }
    )
    if psm is not None:
        span.set_attribute("ocr.psm", psm)
    if rotate is not None:
        span.set_attribute("ocr.rotate", rotate)
    if deskew is not None:
        span.set_attribute("ocr.deskew", deskew)
    outputs = model_outputs(output_format)
    model_started = time.perf_counter()
    # The tenant keeps the model's result cache apart per caller (see gateway.access).
    result = await client.infer(
        image,
        request_id=request_id,
        lang=lang,
        psm=psm,
        tenant=tenant_of(request.scope),
        rotate=rotate,
        deskew=deskew,
        outputs=outputs,
    )
    model_ms = (time.perf_counter() - model_started) * 1000.0

    if output_format is JSON:
        body = _json_answer(
            result,
            model_name=settings.model_name,
            request_id=request_id,
            timings=Timings(total_ms=round(stopwatch.elapsed_ms(), 3), model_ms=round(model_ms, 3)),
        )
        span.set_attributes({"ocr.words": len(body.words), "ocr.confidence": body.confidence})
        content = body.model_dump_json().encode()
        headers: dict[str, str] = {}
    elif output_format is TEXT:
        content = _required(result.text, contract.TEXT.name).encode()
        headers = {}
    else:
        name = outputs[0]
        content = _required(result.documents.get(name), name)
        headers = {"Content-Disposition": content_disposition(upload_name, output_format)}
    logger.info(
        "request %s: %s of %s bytes, answered as %s (%s bytes) in %.1f ms (model)",
        request_id,
        media_type,
        len(image),
        output_format.name,
        len(content),
        model_ms,
    )
    # The answer depends on Accept when no format was named: caches must keep them apart.
    headers["Vary"] = "Accept"
    return Response(content, media_type=output_format.media_type, headers=headers)


def _json_answer(
    result: OcrResult, *, model_name: str, request_id: str, timings: Timings
) -> OcrResponse:
    """The JSON answer: the default outputs at the top, the page facts in ``pages``."""
    page = _required(result.page, contract.PAGE.name)
    return OcrResponse(
        text=_required(result.text, contract.TEXT.name),
        confidence=round(_required(result.confidence, contract.CONFIDENCE.name), 2),
        words=_required(result.words, contract.WORDS.name),
        page_count=1,
        pages=[page],
        model=result.model_name or model_name,
        model_version=result.model_version,
        request_id=request_id,
        timings=timings,
    )


def _required(value: _T | None, output: str) -> _T:
    """An output the decoder was asked for, so present; a gateway bug if not."""
    if value is None:
        raise InternalError(log_detail=f"output {output!r} was asked for but not decoded")
    return value
