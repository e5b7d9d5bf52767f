"""The shared bearer token (`OCR_MODEL_AUTH_TOKEN`) that closes the model to all but the gateway.

With a token set, a gRPC call needs the metadata `authorization: Bearer <token>` and a REST
request the header `Authorization: Bearer <token>`, except what probes and discovery need:
ServerLive, ServerReady and ModelMetadata, grpc.health.v1 and server reflection over gRPC;
`/v2/health/*`, `/v2/models/<name>/ready` and `/metrics` over REST. Everything else, unknown
methods and paths included, is closed. Tokens are compared in constant time and never
logged. A refused gRPC call is answered before its message is parsed.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, Final

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

logger = logging.getLogger(__name__)

_INFERENCE: Final = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
#: gRPC methods anyone may call: probes and discovery.
OPEN_GRPC_METHODS: Final = frozenset(
    f"/{_INFERENCE}/{method}" for method in ("ServerLive", "ServerReady", "ModelMetadata")
)
# ModelReady is not open: the gateway's /readyz asks it with the token, so a gateway holding a
# wrong token reports not ready instead of answering every upload with an error. Kubernetes
# probes the model through grpc.health.v1 and /v2/health/*, which stay open.
#: gRPC services anyone may call: health checking and server reflection.
OPEN_GRPC_SERVICES: Final = frozenset(
    {
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
        "grpc.reflection.v1.ServerReflection",
    }
)
#: REST paths anyone may request: probes and metrics.
OPEN_REST_PATHS: Final = re.compile(r"/v2/health/[^/]+|/v2/models/[^/]+/ready|/metrics")
UNAUTHENTICATED_MESSAGE: Final = "missing or wrong bearer token"


class BearerToken:
    """The expected token; `accepts()` tells whether an `Authorization` value carries it."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("empty token")
        self._token = token.encode()

    def accepts(self, authorization: str | bytes | None) -> bool:
        """True for `Bearer <token>` (scheme in any case), in time independent of the token."""
        if authorization is None:
            return False
        if isinstance(authorization, str):
            authorization = authorization.encode("utf-8", "surrogateescape")
        scheme, _, credentials = authorization.strip().partition(b" ")
        matches = hmac.compare_digest(credentials.strip(), self._token)
        return scheme.lower() == b"bearer" and matches

    def __repr__(self) -> str:
        return "BearerToken(**********)"


def grpc_call_is_open(method: str) -> bool:
    """True for the gRPC methods that need no token (`/package.Service/Method`)."""
    service = method.lstrip("/").partition("/")[0]
    return method in OPEN_GRPC_METHODS or service in OPEN_GRPC_SERVICES


def rest_path_is_open(path: str) -> bool:
    """True for the REST paths that need no token."""
    return OPEN_REST_PATHS.fullmatch(path) is not None


if TYPE_CHECKING:  # generic only in grpc-stubs, not at run time
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor


def _metadata_value(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | bytes | None:
    """The first `authorization` entry of gRPC call metadata."""
    for key, value in metadata or ():
        if key == "authorization":
            return value
    return None


def _header_value(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The first `authorization` header of an ASGI scope (names arrive lower-cased)."""
    for key, value in headers:
        if key == b"authorization":
            return value
    return None


async def _refuse(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)


#: The answer to a refused call; its message is never parsed (no deserializer).
_REFUSED: Final = grpc.unary_unary_rpc_method_handler(_refuse)


class TokenInterceptor(_ServerInterceptor):
    """UNAUTHENTICATED for every call without the token, unless `grpc_call_is_open()`.

    Place it first: a refused call costs no parsing and reaches no other interceptor.
    """

    def __init__(self, token: BearerToken) -> None:
        self._token = token

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        if grpc_call_is_open(method):
            return await continuation(handler_call_details)
        authorization = _metadata_value(handler_call_details.invocation_metadata)
        if not self._token.accepts(authorization):
            logger.warning("gRPC call to %s refused: missing or wrong bearer token", method[:128])
            return _REFUSED
        return await continuation(handler_call_details)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_UNAUTHORIZED_BODY: Final = b'{"error":"' + UNAUTHENTICATED_MESSAGE.encode() + b'"}'


class TokenMiddleware:
    """ASGI middleware: 401 JSON `{"error": ...}` for every HTTP request without the token,
    unless `rest_path_is_open()`; the body is never read."""

    def __init__(self, app: ASGIApp, token: BearerToken) -> None:
        self.app = app
        self._token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or rest_path_is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self._token.accepts(_header_value(scope.get("headers", ()))):
            await self.app(scope, receive, send)
            return
        logger.warning(
            "REST request to %s refused: missing or wrong bearer token", scope["path"][:128]
        )
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_UNAUTHORIZED_BODY)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _UNAUTHORIZED_BODY})
