"""OpenAPI documentation of the error answers a route declares, generated from the error classes.

A route names the :class:`~gateway.errors.GatewayError` classes it can answer; this module groups
them by status into FastAPI's ``responses=`` argument: one description listing each code, one
example body per code, the shared ``ErrorResponse`` schema and the headers its answers carry.
"""

from collections import defaultdict
from typing import Any, Final

from gateway.errors import GatewayError, is_concrete
from gateway.schemas import ErrorDetail, ErrorResponse

# Schemas of documented headers; Retry-After is always whole seconds here, never a date.
_HEADER_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "Retry-After": {"type": "integer", "minimum": 1}
}
# A request id as the gateway makes them (uuid4 hex), so examples look like real answers.
EXAMPLE_REQUEST_ID: Final = "9f1c2b7e4d3a4c0e8b6f5a2d1e0c9b8a"


def example_body(error_class: type[GatewayError]) -> dict[str, Any]:
    """The full JSON error body of a typical ``error_class`` answer."""
    error = error_class.example()
    body = ErrorResponse(
        error=ErrorDetail(code=error.code, message=error.message, request_id=EXAMPLE_REQUEST_ID)
    )
    return body.model_dump()


def _description(error_classes: list[type[GatewayError]]) -> str:
    lines = [f"`{cls.code}`: {cls.description}" for cls in error_classes]
    if len(lines) == 1:
        return lines[0]
    return "\n".join(f"- {line}" for line in lines)


def _headers(error_classes: list[type[GatewayError]]) -> dict[str, Any]:
    """Headers of the status's answers; required only when every code's answer carries it."""
    names = {name: doc for cls in error_classes for name, doc in cls.documented_headers.items()}
    return {
        name: {
            "description": doc,
            "required": all(name in cls.documented_headers for cls in error_classes),
            "schema": _HEADER_SCHEMAS.get(name, {"type": "string"}),
        }
        for name, doc in names.items()
    }


def error_responses(*error_classes: type[GatewayError]) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` argument documenting ``error_classes``, grouped by HTTP status."""
    by_status: defaultdict[int, list[type[GatewayError]]] = defaultdict(list)
    for cls in error_classes:
        if not is_concrete(cls):
            raise TypeError(f"{cls.__name__} is abstract: name the errors it stands for")
        if cls in by_status[cls.status]:
            raise ValueError(f"{cls.__name__} is listed twice")
        by_status[cls.status].append(cls)
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(by_status):
        group = by_status[status]
        response: dict[str, Any] = {
            "model": ErrorResponse,
            "description": _description(group),
            "content": {
                "application/json": {
                    "examples": {
                        cls.code: {"summary": cls.description, "value": example_body(cls)}
                        for cls in group
                    }
                }
            },
        }
        if headers := _headers(group):
            response["headers"] = headers
        responses[status] = response
    return responses
