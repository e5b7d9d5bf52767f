"""OpenAPI descriptions of the error answers routes declare (all share the error schema)."""

from typing import Any, Final

from gateway.schemas import ErrorResponse

_DESCRIPTIONS: Final[dict[int, str]] = {
    413: "The upload is larger than the configured limit (`payload_too_large`).",
    415: "The file is not a PNG, JPEG, TIFF, GIF, BMP or WebP image (`unsupported_media_type`).",
    422: (
        "Invalid form fields (`validation_error`), an empty file (`empty_file`) or an image"
        " or parameter the model rejected (`invalid_argument`)."
    ),
    429: "The model server is overloaded; retry after `Retry-After` seconds (`model_overloaded`).",
    500: "Unexpected gateway failure (`internal_error`).",
    502: (
        "The model server failed (`upstream_error`), lacks the model (`model_not_found`) or"
        " answered off-contract (`bad_model_response`)."
    ),
    503: "The model server is unavailable (`model_unavailable`) or not ready (`not_ready`).",
    504: "The model did not answer within the request timeout (`model_timeout`).",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` argument documenting ``statuses`` with the JSON error schema."""
    return {
        status: {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        for status in statuses
    }
