"""Exception handlers turning every failure into ``{"error": {code, message, request_id}}``."""

import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from gateway.context import REQUEST_ID_HEADER, request_id_of
from gateway.errors import (
    BadRequestError,
    GatewayError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    NotReadyError,
)
from gateway.schemas import ErrorDetail, ErrorResponse

logger = logging.getLogger(__name__)

# Framework HTTP errors with a documented class; other statuses get a code from their phrase.
_HTTP_ERROR_CLASSES: Final[Mapping[int, type[GatewayError]]] = {
    cls.status: cls for cls in (BadRequestError, NotFoundError, MethodNotAllowedError)
}
# Where FastAPI says a parameter came from; clients know their fields by name alone.
_LOCATION_PREFIXES: Final = frozenset({"body", "query", "path", "header", "cookie"})


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON error answer every failure of the gateway uses."""
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, request_id=request_id))
    return JSONResponse(
        body.model_dump(),
        status_code=status,
        headers={**(headers or {}), REQUEST_ID_HEADER: request_id},
    )


def render_error(
    error: GatewayError, request_id: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON error answer of ``error``, with its headers and any extra ``headers``."""
    return error_response(
        error.status, error.code, error.message, request_id, {**error.headers, **(headers or {})}
    )


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """``"field: problem"`` for each validation error, joined by ``"; "``; no input echoed."""
    parts: list[str] = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] in _LOCATION_PREFIXES:
            location = location[1:]
        field = ".".join(location) or "request"
        parts.append(f"{field}: {error.get('msg', 'invalid value')}")
    return "; ".join(parts) or "The request is invalid."


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    request_id = request_id_of(request.scope)
    # Client mistakes and readiness probes are routine; failures of the model path are not.
    routine = exc.status < 500 or isinstance(exc, NotReadyError)
    level = logging.INFO if routine else logging.WARNING
    logger.log(level, "request %s failed: %s %s: %s", request_id, exc.status, exc.code, exc)
    return render_error(exc, request_id)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    error = InvalidRequestError(describe_validation_errors(exc.errors()))
    return render_error(error, request_id_of(request.scope))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    known = _HTTP_ERROR_CLASSES.get(exc.status_code)
    if known is not None:
        # The framework's detail ("Not Found") is the message; the class gives status and code.
        message = exc.detail if isinstance(exc.detail, str) else None
        return render_error(known(message), request_id_of(request.scope), exc.headers)
    try:
        status = HTTPStatus(exc.status_code)
        code, phrase = status.phrase.lower().replace(" ", "_").replace("-", "_"), status.phrase
    except ValueError:
        code, phrase = f"http_{exc.status_code}", "HTTP error"
    # Detail strings of 4xx come from the framework or our code; 5xx details may be internal.
    message = exc.detail if isinstance(exc.detail, str) and exc.status_code < 500 else phrase
    return error_response(exc.status_code, code, message, request_id_of(request.scope), exc.headers)


def install_exception_handlers(app: FastAPI) -> None:
    """Answer gateway, validation and HTTP errors as JSON error bodies.

    Unhandled exceptions are answered by :class:`gateway.middleware.RequestContextMiddleware`,
    which sits inside the server-error middleware and so sees them first.
    """
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
