"""Async KServe v2 gRPC client of the model server: one long-lived channel, deadlines, retries.

The client retries a call only when the model server answers UNAVAILABLE (down, starting,
connection refused), with exponential backoff and jitter, bounded by ``retry_max_attempts`` and
by the call's deadline: it never sleeps past the deadline. Other statuses are final. Failures
leave as :class:`~gateway.errors.UpstreamError` (its subclass picked by ``GRPC_STATUS_TABLE``).
"""

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Final, Self, cast

import grpc
import grpc.aio

from contract.metadata import LANGUAGES
from gateway.codec import OcrResult, build_infer_request, decode_infer_response
from gateway.errors import MalformedResponseError, Metadata, upstream_error_for
from gateway.protocol import pb, pb_grpc
from gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)

# Room for the protobuf framing, parameters and the outputs beside the image bytes.
MESSAGE_HEADROOM_BYTES: Final = 4 * 1024 * 1024
# Ping an idle-looking connection every minute to notice a dead peer; a minute stays above the
# default gRPC server ping policy so servers never answer GOAWAY "too_many_pings".
_KEEPALIVE_TIME_MS: Final = 60_000
_KEEPALIVE_TIMEOUT_MS: Final = 20_000
# gRPC's default reconnect backoff grows to 2 minutes; a restarted model server should be
# reached again within seconds.
_INITIAL_RECONNECT_BACKOFF_MS: Final = 100
_MAX_RECONNECT_BACKOFF_MS: Final = 2_000
_CLOSE_GRACE_S: Final = 1.0
# The model's languages change only when it is redeployed: asked again after a minute.
LANGUAGES_TTL_S: Final = 60.0

# Jitter spreads retries of many clients apart; it needs no cryptographic randomness.
_jitter = random.Random()  # noqa: S311


def channel_options(settings: GatewaySettings) -> list[tuple[str, int | str]]:
    """gRPC channel options: message limits sized from ``max_upload_bytes``, keepalive, backoff."""
    max_message = settings.max_upload_bytes + MESSAGE_HEADROOM_BYTES
    return [
        ("grpc.max_send_message_length", max_message),
        ("grpc.max_receive_message_length", max_message),
        ("grpc.keepalive_time_ms", _KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", _KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.initial_reconnect_backoff_ms", _INITIAL_RECONNECT_BACKOFF_MS),
        ("grpc.max_reconnect_backoff_ms", _MAX_RECONNECT_BACKOFF_MS),
        ("grpc.primary_user_agent", "ocr-gateway"),
        ("grpc.lb_policy_name", settings.lb_policy),
    ]


class InferenceClient:
    """Talks to the model server over one ``grpc.aio`` channel opened by :meth:`start`.

    Use ``async with InferenceClient(settings) as client:`` or ``start()`` / ``close()``, inside
    the event loop that makes the calls (a ``grpc.aio`` channel belongs to one loop).
    """

    def __init__(
        self,
        settings: GatewaySettings,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> None:
        self._settings = settings
        self._interceptors = list(interceptors)
        self._channel: grpc.aio.Channel | None = None
        # The model server checks this token; the same metadata goes with every call.
        token = settings.model_token
        self._metadata: tuple[tuple[str, str], ...] | None = (
            (("authorization", f"Bearer {token.get_secret_value()}"),) if token else None
        )
        self._model_infer: (
            grpc.aio.UnaryUnaryMultiCallable[pb.ModelInferRequest, pb.ModelInferResponse] | None
        ) = None
        self._server_ready: (
            grpc.aio.UnaryUnaryMultiCallable[pb.ServerReadyRequest, pb.ServerReadyResponse] | None
        ) = None
        self._model_ready: (
            grpc.aio.UnaryUnaryMultiCallable[pb.ModelReadyRequest, pb.ModelReadyResponse] | None
        ) = None
        self._model_metadata: (
            grpc.aio.UnaryUnaryMultiCallable[pb.ModelMetadataRequest, pb.ModelMetadataResponse]
            | None
        ) = None
        self._languages: tuple[float, tuple[str, ...]] | None = None

    async def start(self) -> None:
        """Open the channel; it connects lazily and reconnects by itself."""
        if self._channel is not None:
            raise RuntimeError("InferenceClient already started")
        self._channel = grpc.aio.insecure_channel(
            self._settings.model_address,
            options=channel_options(self._settings),
            interceptors=self._interceptors or None,
        )
        stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        self._model_infer = stub.ModelInfer
        self._server_ready = stub.ServerReady
        self._model_ready = stub.ModelReady
        self._model_metadata = stub.ModelMetadata
        logger.info("model channel opened to %s", self._settings.model_address)

    async def close(self) -> None:
        """Close the channel, giving in-flight calls a short grace period."""
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close(grace=_CLOSE_GRACE_S)
            logger.info("model channel closed")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def infer(
        self,
        image: bytes,
        *,
        request_id: str,
        lang: str,
        psm: int | None = None,
        tenant: str | None = None,
        rotate: str | None = None,
        deskew: bool | None = None,
        outputs: Sequence[str] | None = None,
        dpi: int | None = None,
        pdf_text: str | None = None,
        pdf_text_only: bool = False,
        timeout_s: float | None = None,
    ) -> OcrResult:
        """OCR ``image`` on the model; ``timeout_s`` (default ``request_timeout_s``) bounds it all.

        ``tenant`` names the caller for the model's result cache (see ``build_infer_request``).
        ``outputs`` names the outputs to ask for and read (None: the model's default outputs).

        Raises :class:`~gateway.errors.UpstreamError` when the call fails and
        :class:`~gateway.errors.MalformedResponseError` when the answer is off-contract.
        """
        if self._model_infer is None:
            raise RuntimeError("InferenceClient not started")
        settings = self._settings
        budget = settings.request_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + budget
        request = build_infer_request(
            image,
            model_name=settings.model_name,
            request_id=request_id,
            lang=lang,
            psm=psm,
            tenant=tenant,
            rotate=rotate,
            deskew=deskew,
            outputs=outputs,
            dpi=dpi,
            pdf_text=pdf_text,
            pdf_text_only=pdf_text_only,
        )
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise upstream_error_for(grpc.StatusCode.DEADLINE_EXCEEDED, "no time left to call")
            try:
                response = await self._model_infer(
                    request, timeout=remaining, metadata=self._metadata
                )
            except grpc.aio.AioRpcError as err:
                code, details = err.code(), err.details()
                if (
                    code is not grpc.StatusCode.UNAVAILABLE
                    or attempt >= settings.retry_max_attempts
                ):
                    # An overloaded model's retry hint rides in the trailing metadata: a
                    # grpc.aio.Metadata of (key, value) pairs (grpc-stubs type it as RpcError's).
                    trailing = cast("Metadata", err.trailing_metadata())
                    raise upstream_error_for(code, details, trailing) from None
                backoff = self._backoff(attempt)
                if time.monotonic() + backoff >= deadline:
                    # Sleeping would use up the deadline: answer the failure we have now.
                    raise upstream_error_for(code, details) from None
                logger.warning(
                    "model unavailable (attempt %s/%s, request %s): %s; retrying in %.3fs",
                    attempt,
                    settings.retry_max_attempts,
                    request_id,
                    details,
                    backoff,
                )
                await asyncio.sleep(backoff)
            else:
                return decode_infer_response(response, outputs)

    def _backoff(self, attempt: int) -> float:
        """Backoff after failed ``attempt``: exponential, capped, with "equal jitter"."""
        settings = self._settings
        ceiling = min(
            settings.retry_max_backoff_s, settings.retry_initial_backoff_s * 2.0 ** (attempt - 1)
        )
        return ceiling / 2 + _jitter.uniform(0, ceiling / 2)

    async def server_ready(self) -> bool:
        """Whether the model server says it is ready; False on any RPC error or timeout."""
        if self._server_ready is None:
            raise RuntimeError("InferenceClient not started")
        try:
            response = await self._server_ready(
                pb.ServerReadyRequest(),
                timeout=self._settings.readiness_timeout_s,
                metadata=self._metadata,
            )
        except grpc.RpcError as err:
            logger.info("server readiness check failed: %s", _status_name(err))
            return False
        return response.ready

    async def model_ready(self) -> bool:
        """Whether the configured model is loaded and ready; False on any RPC error or timeout."""
        if self._model_ready is None:
            raise RuntimeError("InferenceClient not started")
        try:
            response = await self._model_ready(
                pb.ModelReadyRequest(name=self._settings.model_name),
                timeout=self._settings.readiness_timeout_s,
                metadata=self._metadata,
            )
        except grpc.RpcError as err:
            logger.info("model readiness check failed: %s", _status_name(err))
            return False
        return response.ready

    async def languages(self) -> tuple[str, ...]:
        """The languages the model can read, from its ``ModelMetadata`` answer (trailing
        metadata ``ocr-languages``), remembered for ``LANGUAGES_TTL_S``; the call is bounded by
        ``readiness_timeout_s``. Raises :class:`~gateway.errors.UpstreamError` when it fails."""
        if self._model_metadata is None:
            raise RuntimeError("InferenceClient not started")
        now = time.monotonic()
        if self._languages is not None and now - self._languages[0] < LANGUAGES_TTL_S:
            return self._languages[1]
        call = self._model_metadata(
            pb.ModelMetadataRequest(name=self._settings.model_name),
            timeout=self._settings.readiness_timeout_s,
            metadata=self._metadata,
        )
        try:
            await call
            trailing = await call.trailing_metadata()
        except grpc.aio.AioRpcError as err:
            raise upstream_error_for(err.code(), err.details()) from None
        listed = dict(trailing or ()).get(LANGUAGES)
        if not isinstance(listed, str) or not listed:
            raise MalformedResponseError("the model's metadata names no languages")
        languages = tuple(listed.split(","))
        self._languages = (now, languages)
        return languages


def _status_name(err: grpc.RpcError) -> str:
    """The status name of a failed call, for logs."""
    return err.code().name if isinstance(err, grpc.aio.AioRpcError) else type(err).__name__
