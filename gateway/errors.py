"""Every error a client of the gateway can see, as a class, and the gRPC status → error table.

Each concrete :class:`GatewayError` subclass carries its HTTP ``status`` and stable ``code`` as
class attributes and a one-line docstring, its ``description``: the exception handlers answer
from them and :func:`gateway.routes.errors.error_responses` documents the routes with them, so
what the OpenAPI schema promises is what the gateway answers.

An instance adds a message that is safe to show (no tracebacks, class names, paths or internal
addresses) and any extra headers; ``str(error)`` may carry more detail for the logs.
"""

import inspect
import math
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar, Final, Self

import grpc

from contract.metadata import RETRY_AFTER_MS

# Longest model-supplied message passed through to clients; details beyond it are cut.
_MAX_DETAILS_CHARS: Final = 500
# Seconds to wait after a model overload when the model gave no hint of its own.
_OVERLOAD_RETRY_AFTER_S: Final = 1
# Longest wait a model's hint is believed for; a longer one is cut to it.
_MAX_OVERLOAD_RETRY_AFTER_S: Final = 300
_MAX_HINT_DIGITS: Final = 9
# Seconds to wait when the gateway holds as many upload bytes as it may; uploads end quickly.
_BUSY_RETRY_AFTER_S: Final = 1
_RETRY_AFTER_DOC: Final = "Seconds to wait before retrying."

Metadata = Iterable[tuple[str, str | bytes]]
"""gRPC metadata: (key, value) pairs, as ``AioRpcError.trailing_metadata()`` gives them."""


class GatewayError(Exception):
    """An error answered to the client as ``{"error": {"code", "message", "request_id"}}``.

    Abstract: only subclasses that set ``status`` and ``code`` can be raised.
    """

    status: ClassVar[int]
    """HTTP status code of the answer."""
    code: ClassVar[str]
    """Stable machine-readable code, e.g. ``model_unavailable``."""
    description: ClassVar[str]
    """When the error is answered, for the API docs: the class docstring's first line."""
    default_message: ClassVar[str] = ""
    """Client message of an instance built without one."""
    documented_headers: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """Headers every answer of this error carries (name → meaning), for the API docs."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not is_concrete(cls):
            return
        # Fail at import, not in the docs, when a client-visible error is half declared.
        if not hasattr(cls, "status"):
            raise TypeError(f"{cls.__name__} sets code but not status")
        # Only the class's own docstring: an inherited one would describe another code.
        own_doc = vars(cls).get("__doc__")
        doc = inspect.cleandoc(own_doc) if isinstance(own_doc, str) else ""
        if not doc:
            raise TypeError(f"{cls.__name__} needs a docstring: it documents {cls.code!r}")
        if "description" not in vars(cls):
            cls.description = doc.splitlines()[0]

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        log_detail: str | None = None,
    ) -> None:
        if not is_concrete(type(self)):
            raise TypeError(f"{type(self).__name__} is abstract; raise one of its subclasses")
        message = message or self.default_message
        super().__init__(log_detail or message)
        self.message = message
        """Human message shown to the client; never internal detail."""
        self.headers: Mapping[str, str] = dict(headers or {})
        """Extra response headers, e.g. ``Retry-After``."""

    @classmethod
    def example(cls) -> Self:
        """A typical instance, for the examples of the API docs."""
        return cls()


def is_concrete(cls: type[GatewayError]) -> bool:
    """Whether ``cls`` is a client-visible error (it has a ``code``), not an abstract base."""
    return hasattr(cls, "code")


def error_classes() -> list[type[GatewayError]]:
    """Every concrete :class:`GatewayError` subclass defined so far (breadth-first)."""
    found: list[type[GatewayError]] = []
    pending: list[type[GatewayError]] = [GatewayError]
    while pending:
        cls = pending.pop(0)
        if is_concrete(cls) and cls not in found:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


# --- Access --------------------------------------------------------------------------------------


class UnauthorizedError(GatewayError):
    """API keys are configured and the request's key is missing or wrong."""

    status = 401
    code = "unauthorized"

    def __init__(self, header: str) -> None:
        super().__init__(f"A valid API key is required in the {header} header.")

    @classmethod
    def example(cls) -> Self:
        return cls("X-API-Key")


class RateLimitedError(GatewayError):
    """The caller (API key or client address) is over its per-minute request limit."""

    status = 429
    code = "rate_limited"
    documented_headers = MappingProxyType({"Retry-After": _RETRY_AFTER_DOC})

    def __init__(self, per_minute: int, retry_after_s: int) -> None:
        super().__init__(
            f"Too many requests: the limit is {per_minute} per minute.",
            headers={"Retry-After": str(retry_after_s)},
        )

    @classmethod
    def example(cls) -> Self:
        return cls(per_minute=60, retry_after_s=12)


class TooManyAuthFailuresError(GatewayError):
    """Too many wrong API keys came from this client address; its key is not even checked."""

    status = 429
    code = "too_many_auth_failures"
    documented_headers = MappingProxyType({"Retry-After": _RETRY_AFTER_DOC})

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            "Too many failed authentications from this address; try again later.",
            headers={"Retry-After": str(retry_after_s)},
        )

    @classmethod
    def example(cls) -> Self:
        return cls(retry_after_s=42)


# --- Routing and request validation --------------------------------------------------------------


class BadRequestError(GatewayError):
    """The body cannot be parsed as a form (e.g. malformed multipart or a missing boundary)."""

    status = 400
    code = "bad_request"
    default_message = "Bad Request"

    @classmethod
    def example(cls) -> Self:
        return cls("Invalid multipart data.")


class NotFoundError(GatewayError):
    """No route has this path."""

    status = 404
    code = "not_found"
    default_message = "Not Found"


class MethodNotAllowedError(GatewayError):
    """The route exists but not with this HTTP method."""

    status = 405
    code = "method_not_allowed"
    default_message = "Method Not Allowed"


class InvalidRequestError(GatewayError):
    """The request is not multipart or a form field is missing or invalid."""

    status = 422
    code = "validation_error"
    default_message = "The request is invalid."

    @classmethod
    def example(cls) -> Self:
        return cls("image_file: Field required")


class NotAcceptableError(GatewayError):
    """The ``Accept`` header names none of the answer formats and no ``format`` field was sent."""

    status = 406
    code = "not_acceptable"

    def __init__(self, media_types: Sequence[str]) -> None:
        super().__init__(
            "None of the media types in the Accept header can be answered; accepted: "
            f"{', '.join(media_types)} (or send the form field format)."
        )

    @classmethod
    def example(cls) -> Self:
        # Imported here: the answer formats are not needed to define the errors.
        from gateway.negotiation import ACCEPTABLE_MEDIA_TYPES

        return cls(ACCEPTABLE_MEDIA_TYPES)


class InternalError(GatewayError):
    """An unexpected failure inside the gateway."""

    status = 500
    code = "internal_error"
    default_message = "Internal server error."


# --- The upload ----------------------------------------------------------------------------------


class PayloadTooLargeError(GatewayError):
    """The upload is larger than the configured limit."""

    status = 413
    code = "payload_too_large"

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"The upload exceeds the {limit_bytes / (1024 * 1024):.3g} MB limit.")

    @classmethod
    def example(cls) -> Self:
        return cls(20 * 1024 * 1024)


class RequestTimeoutError(GatewayError):
    """The request body did not arrive completely within the body timeout."""

    status = 408
    code = "request_timeout"

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"The request body was not received within {timeout_s:g} s.")

    @classmethod
    def example(cls) -> Self:
        return cls(30.0)


class GatewayBusyError(GatewayError):
    """The gateway is receiving as many upload bytes as it may hold; retry after ``Retry-After``."""

    status = 503
    code = "gateway_busy"
    default_message = "The gateway is busy receiving other uploads; try again shortly."
    documented_headers = MappingProxyType({"Retry-After": _RETRY_AFTER_DOC})

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": str(_BUSY_RETRY_AFTER_S)})


class UnsupportedMediaTypeError(GatewayError):
    """The upload's bytes are not one of the accepted formats (PDF or an image)."""

    status = 415
    code = "unsupported_media_type"

    def __init__(self, accepted: str) -> None:
        super().__init__(f"The file is not a supported document or image; accepted: {accepted}.")

    @classmethod
    def example(cls) -> Self:
        # Imported here: gateway.media is not needed to define the errors.
        from gateway.media import ACCEPTED_FORMATS

        return cls(ACCEPTED_FORMATS)


class EmptyFileError(GatewayError):
    """The uploaded file has no bytes."""

    status = 422
    code = "empty_file"
    default_message = "The uploaded file is empty."


class TooManyFilesError(GatewayError):
    """More than one file was sent in ``image_file``."""

    status = 422
    code = "too_many_files"

    def __init__(self, count: int) -> None:
        super().__init__(f"Send exactly one file in image_file, not {count}.")

    @classmethod
    def example(cls) -> Self:
        return cls(2)


# --- The document --------------------------------------------------------------------------------


class TooManyPagesError(GatewayError):
    """The document has more pages than ``OCR_GATEWAY_MAX_PAGES``."""

    status = 413
    code = "too_many_pages"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The document has more than {limit} pages, the most one request may send; "
            "split it and send the parts separately."
        )

    @classmethod
    def example(cls) -> Self:
        return cls(1000)


class UnreadableDocumentError(GatewayError):
    """The document cannot be read: a damaged, truncated or empty PDF or multi-page TIFF."""

    status = 422
    code = "unreadable_document"

    def __init__(self, reason: str, *, log_detail: str | None = None) -> None:
        super().__init__(f"The document cannot be read: {reason}.", log_detail=log_detail)

    @classmethod
    def example(cls) -> Self:
        return cls("the PDF is damaged or truncated")


class EncryptedDocumentError(GatewayError):
    """The PDF is password-protected: it cannot be opened without its password."""

    status = 422
    code = "encrypted_document"
    default_message = "The PDF is password-protected; send it without a password."


class UnreadablePageError(GatewayError):
    """One page cannot be taken out of the document (damaged, or too large to decode)."""

    status = 422
    code = "unreadable_page"

    def __init__(self, page: int, reason: str, *, log_detail: str | None = None) -> None:
        super().__init__(f"Page {page} cannot be read: {reason}.", log_detail=log_detail)
        self.page = page
        """The page (1-based) that failed."""

    @classmethod
    def example(cls) -> Self:
        return cls(3, "the page is damaged")


# --- The model server ----------------------------------------------------------------------------


class NotReadyError(GatewayError):
    """The model server or the model is not ready to serve."""

    status = 503
    code = "not_ready"
    default_message = "The model server is not ready."


class MalformedResponseError(GatewayError):
    """The model answered, but not with what the model contract promises."""

    status = 502
    code = "bad_model_response"
    default_message = "The model returned a malformed response."

    def __init__(self, detail: str) -> None:
        super().__init__(log_detail=f"malformed model response: {detail}")

    @classmethod
    def example(cls) -> Self:
        return cls("no output named 'text'")


class UpstreamError(GatewayError):
    """A failed gRPC call to the model server; :func:`upstream_error_for` picks the subclass.

    Abstract: :data:`GRPC_STATUS_TABLE` names the subclass of each gRPC status.
    """

    fixed_headers: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """Headers every answer of this error carries, with their values."""
    pass_details: ClassVar[bool] = False
    """Show the model's status details instead of the fixed message: only where they are meant
    for users (the model's own validation messages), never for transport or server failures."""

    def __init__(
        self,
        grpc_code: grpc.StatusCode,
        details: str | None,
        trailing_metadata: Metadata | None = None,
    ) -> None:
        message = self._message_for(grpc_code)
        if self.pass_details and details and details.strip():
            message = details.strip()[:_MAX_DETAILS_CHARS]
        super().__init__(
            message,
            headers=self._headers_for(trailing_metadata or ()),
            log_detail=f"model call failed: {grpc_code.name}: {details}",
        )
        self.grpc_code = grpc_code
        """The gRPC status the model server (or the channel) answered."""

    def _message_for(self, grpc_code: grpc.StatusCode) -> str:
        """The fixed client message for ``grpc_code`` (the fallback of ``pass_details``)."""
        return self.default_message

    def _headers_for(self, trailing_metadata: Metadata) -> Mapping[str, str]:
        """The answer's headers, given the failed call's trailing metadata."""
        return self.fixed_headers

    @classmethod
    def example(cls) -> Self:
        grpc_code = next(
            (status for status, error in GRPC_STATUS_TABLE.items() if error is cls),
            grpc.StatusCode.INTERNAL,
        )
        return cls(grpc_code, None)


class InvalidArgumentError(UpstreamError):
    """The model rejected the image or an option (corrupt, too many pixels, unknown language)."""

    status = 422
    code = "invalid_argument"
    default_message = "The model rejected the request."
    pass_details = True

    @classmethod
    def example(cls) -> Self:
        return cls(
            grpc.StatusCode.INVALID_ARGUMENT,
            "language 'xx' is not installed; installed: deu, eng",
        )


class ModelUnavailableError(UpstreamError):
    """The model server cannot be reached (after bounded retries) or cancelled the call."""

    status = 503
    code = "model_unavailable"
    default_message = "The model server is unavailable; try again later."

    def _message_for(self, grpc_code: grpc.StatusCode) -> str:
        if grpc_code is grpc.StatusCode.CANCELLED:
            return "The model call was cancelled; try again later."
        return self.default_message


class ModelTimeoutError(UpstreamError):
    """The model did not answer within the request timeout."""

    status = 504
    code = "model_timeout"
    default_message = "The model did not answer in time."


class ModelOverloadedError(UpstreamError):
    """The model cannot read the request within its deadline now; retry after ``Retry-After``.

    ``Retry-After`` is the model's own hint (trailing metadata ``retry-after-ms``: when it
    expects capacity), in whole seconds rounded up; 1 when the model gave none.
    """

    status = 429
    code = "model_overloaded"
    default_message = "The model server is overloaded; try again later."
    documented_headers = MappingProxyType({"Retry-After": _RETRY_AFTER_DOC})
    fixed_headers = MappingProxyType({"Retry-After": str(_OVERLOAD_RETRY_AFTER_S)})

    def _headers_for(self, trailing_metadata: Metadata) -> Mapping[str, str]:
        hint_ms = retry_after_ms(trailing_metadata)
        if hint_ms is None:
            return self.fixed_headers
        seconds = min(_MAX_OVERLOAD_RETRY_AFTER_S, max(1, math.ceil(hint_ms / 1000)))
        return {"Retry-After": str(seconds)}


def retry_after_ms(trailing_metadata: Metadata) -> int | None:
    """The model's retry hint (``retry-after-ms``) in milliseconds; None when absent or not a
    positive whole number."""
    for key, value in trailing_metadata:
        if key != RETRY_AFTER_MS:
            continue
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        # At most 9 digits (~11 days): a longer number is no hint worth parsing.
        if text.isascii() and text.isdigit() and len(text) <= _MAX_HINT_DIGITS:
            return int(text) or None
        return None
    return None


class ModelNotFoundError(UpstreamError):
    """The model server does not serve the configured model."""

    status = 502
    code = "model_not_found"
    default_message = "The model is not available on the model server."


class UnknownUpstreamError(UpstreamError):
    """The model server failed in a way no other code describes."""

    status = 502
    code = "upstream_error"
    default_message = "The model server failed."


GRPC_STATUS_TABLE: Final[Mapping[grpc.StatusCode, type[UpstreamError]]] = MappingProxyType(
    {
        grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
        grpc.StatusCode.UNAVAILABLE: ModelUnavailableError,
        # A call cancelled under way (e.g. by a model server shutting down) is worth retrying.
        grpc.StatusCode.CANCELLED: ModelUnavailableError,
        grpc.StatusCode.DEADLINE_EXCEEDED: ModelTimeoutError,
        grpc.StatusCode.RESOURCE_EXHAUSTED: ModelOverloadedError,
        grpc.StatusCode.NOT_FOUND: ModelNotFoundError,
    }
)
"""gRPC status → error class; any status not listed is answered as :class:`UnknownUpstreamError`."""


def error_class_for(grpc_code: grpc.StatusCode) -> type[UpstreamError]:
    """The error class answering ``grpc_code`` (:class:`UnknownUpstreamError` when unlisted)."""
    return GRPC_STATUS_TABLE.get(grpc_code, UnknownUpstreamError)


def upstream_error_for(
    grpc_code: grpc.StatusCode,
    details: str | None,
    trailing_metadata: Metadata | None = None,
) -> UpstreamError:
    """The error to answer for a model call that failed with ``grpc_code`` and ``details``
    (and ``trailing_metadata``, where an overloaded model says when to retry)."""
    return error_class_for(grpc_code)(grpc_code, details, trailing_metadata)
