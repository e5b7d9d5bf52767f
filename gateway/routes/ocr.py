"""``POST /gateway/ocr``: one uploaded image in, its text out, through one model call."""

import logging
import time
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
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
from gateway.routes.errors import error_responses
from gateway.schemas import OcrResponse, Timings

logger = logging.getLogger(__name__)

router = APIRouter(tags=["ocr"], redirect_slashes=False)


@router.post(
    "/gateway/ocr",
    summary="Recognise the text in an image",
    response_model=OcrResponse,
    responses=error_responses(
        BadRequestError,
        UnauthorizedError,
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
) -> Response:
    """Reads the upload once, checks it is an accepted image by its bytes, and OCRs it.

    The answer is serialised here by pydantic, straight to JSON bytes: returned as a model,
    FastAPI would validate it again and go through `jsonable_encoder` and `json.dumps`.
    """
    # FastAPI binds the first of several same-named parts; two images in one call is an error.
    files = (await request.form()).getlist("image_file")
    if len(files) > 1:
        raise TooManyFilesError(len(files))
    image = await image_file.read()
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
        {"ocr.media_type": media_type, "ocr.upload_bytes": len(image), "ocr.lang": lang}
    )
    if psm is not None:
        span.set_attribute("ocr.psm", psm)
    model_started = time.perf_counter()
    # The tenant keeps the model's result cache apart per caller (see gateway.access).
    result = await client.infer(
        image, request_id=request_id, lang=lang, psm=psm, tenant=tenant_of(request.scope)
    )
    model_ms = (time.perf_counter() - model_started) * 1000.0
    span.set_attributes({"ocr.words": len(result.words), "ocr.confidence": result.confidence})

    logger.info(
        "request %s: %s of %s bytes, %s words in %.1f ms (model)",
        request_id,
        media_type,
        len(image),
        len(result.words),
        model_ms,
    )
    answer = OcrResponse(
        text=result.text,
        confidence=round(result.confidence, 2),
        words=result.words,
        model=result.model_name or settings.model_name,
        model_version=result.model_version,
        request_id=request_id,
        timings=Timings(total_ms=round(stopwatch.elapsed_ms(), 3), model_ms=round(model_ms, 3)),
    )
    return Response(answer.model_dump_json(), media_type="application/json")
