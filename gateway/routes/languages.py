"""``GET /gateway/languages``: the languages the model can read, for a `lang` chooser."""

from fastapi import APIRouter

from gateway.deps import InferenceClientDep
from gateway.errors import (
    MalformedResponseError,
    ModelNotFoundError,
    ModelTimeoutError,
    ModelUnavailableError,
    RateLimitedError,
    TooManyAuthFailuresError,
    UnauthorizedError,
    UnknownUpstreamError,
)
from gateway.routes.errors import error_responses
from gateway.schemas import Languages

router = APIRouter(tags=["ocr"], redirect_slashes=False)


@router.get(
    "/gateway/languages",
    summary="The languages the model can read",
    responses=error_responses(
        UnauthorizedError,
        RateLimitedError,
        TooManyAuthFailuresError,
        ModelNotFoundError,
        MalformedResponseError,
        UnknownUpstreamError,
        ModelUnavailableError,
        ModelTimeoutError,
    ),
)
async def languages(client: InferenceClientDep) -> Languages:
    """The Tesseract languages installed on the model server (`osd` left out: it is no
    language), as its `ModelMetadata` answer names them; asked again at most once a minute."""
    return Languages(languages=list(await client.languages()))
