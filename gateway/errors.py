"""The gateway's error hierarchy and the one table mapping gRPC status codes to HTTP answers.

Every failure a client can see is a :class:`GatewayError`: an HTTP status, a stable machine code
and a message that is safe to show (no tracebacks, class names, paths or internal addresses).
``str(error)`` may carry more detail for the logs.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import grpc

# Longest model-supplied message passed through to clients; details beyond it are cut.
_MAX_DETAILS_CHARS: Final = 500


class GatewayError(Exception):
    """An error answered to the client as ``{"error": {"code", "message", "request_id"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        log_detail: str | None = None,
    ) -> None:
        super().__init__(log_detail or message)
        self.status = status
        """HTTP status code of the answer."""
        self.code = code
        """Stable machine-readable code, e.g. ``model_unavailable``."""
        self.message = message
        """Human message shown to the client; never internal detail."""
        self.headers: Mapping[str, str] = dict(headers or {})
        """Extra response headers, e.g. ``Retry-After``."""


class PayloadTooLargeError(GatewayError):
    """The upload is larger than ``max_upload_bytes``."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            413,
            "payload_too_large",
            f"The upload exceeds the {limit_bytes / (1024 * 1024):.3g} MB limit.",
        )


class UnsupportedMediaTypeError(GatewayError):
    """The upload's bytes are not one of the accepted image formats."""

    def __init__(self, accepted: str) -> None:
        super().__init__(
            415,
            "unsupported_media_type",
            f"The file is not a supported image; accepted formats: {accepted}.",
        )


class EmptyFileError(GatewayError):
    """The upload has no bytes."""

    def __init__(self) -> None:
        super().__init__(422, "empty_file", "The uploaded file is empty.")


class TooManyFilesError(GatewayError):
    """More than one file was sent in ``image_file``."""

    def __init__(self, count: int) -> None:
        super().__init__(
            422, "too_many_files", f"Send exactly one file in image_file, not {count}."
        )


class NotReadyError(GatewayError):
    """The model server or the model is not ready to serve."""

    def __init__(self) -> None:
        super().__init__(503, "not_ready", "The model server is not ready.")


class MalformedResponseError(GatewayError):
    """The model answered, but not with what the model contract promises."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            502,
            "bad_model_response",
            "The model returned a malformed response.",
            log_detail=f"malformed model response: {detail}",
        )


class UpstreamError(GatewayError):
    """A failed gRPC call to the model server, translated by :data:`GRPC_STATUS_TABLE`."""

    def __init__(self, grpc_code: grpc.StatusCode, details: str | None) -> None:
        entry = mapping_for(grpc_code)
        message = entry.message
        if entry.pass_details and details and details.strip():
            message = details.strip()[:_MAX_DETAILS_CHARS]
        super().__init__(
            entry.http_status,
            entry.code,
            message,
            headers=entry.headers,
            log_detail=f"model call failed: {grpc_code.name}: {details}",
        )
        self.grpc_code = grpc_code
        """The gRPC status the model server (or the channel) answered."""


@dataclass(frozen=True, slots=True)
class StatusMapping:
    """How one gRPC status code is answered over HTTP."""

    http_status: int
    code: str
    message: str
    """Fixed client message (or the fallback when ``pass_details`` finds no details)."""
    pass_details: bool = False
    """Show the model's status details instead: only for statuses whose details are for users."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra response headers, e.g. ``Retry-After``."""


_UNKNOWN_UPSTREAM: Final = StatusMapping(502, "upstream_error", "The model server failed.")

GRPC_STATUS_TABLE: Final[Mapping[grpc.StatusCode, StatusMapping]] = MappingProxyType(
    {
        grpc.StatusCode.INVALID_ARGUMENT: StatusMapping(
            422, "invalid_argument", "The model rejected the request.", pass_details=True
        ),
        grpc.StatusCode.UNAVAILABLE: StatusMapping(
            503, "model_unavailable", "The model server is unavailable; try again later."
        ),
        grpc.StatusCode.CANCELLED: StatusMapping(
            503, "model_unavailable", "The model call was cancelled; try again later."
        ),
        grpc.StatusCode.DEADLINE_EXCEEDED: StatusMapping(
            504, "model_timeout", "The model did not answer in time."
        ),
        grpc.StatusCode.RESOURCE_EXHAUSTED: StatusMapping(
            429,
            "model_overloaded",
            "The model server is overloaded; try again later.",
            headers=MappingProxyType({"Retry-After": "1"}),
        ),
        grpc.StatusCode.NOT_FOUND: StatusMapping(
            502, "model_not_found", "The model is not available on the model server."
        ),
    }
)
"""gRPC status → HTTP answer; any status not listed is answered as 502 ``upstream_error``."""


def mapping_for(grpc_code: grpc.StatusCode) -> StatusMapping:
    """The HTTP answer for ``grpc_code`` (the ``upstream_error`` fallback when unlisted)."""
    return GRPC_STATUS_TABLE.get(grpc_code, _UNKNOWN_UPSTREAM)
