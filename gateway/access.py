"""Who may call the API and how often: optional API keys with per-key rate limits.

Pure ASGI middleware in front of the routes. Probes, metrics, the API docs and the web page
(with its files) are exempt, so orchestrators and scrapers never need a key, and a person can
load the page to enter theirs. Keys are compared in constant time and only an
HMAC of a key (keyed with a server secret) ever reaches logs, the rate limiter's storage or the
model (as the request's tenant). Wrong keys are counted per client address: past
``auth_failures_per_minute`` that address is refused before its key is even checked, so keys
cannot be guessed at speed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from typing import Final

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.context import request_id_of, set_tenant
from gateway.errors import (
    GatewayError,
    RateLimitedError,
    TooManyAuthFailuresError,
    UnauthorizedError,
)
from gateway.handlers import render_error

logger = logging.getLogger(__name__)

#: Paths that never need a key nor count against a limit.
EXEMPT_PATHS: Final = frozenset(
    {"/healthz", "/health", "/readyz", "/metrics", "/openapi.json", "/docs", "/"}
)
#: Prefixes of the exempt files: the docs' and the web page's.
EXEMPT_PREFIXES: Final = ("/docs/", "/static/")
#: Hex digits of a key id: 64 bits, ample to tell keys apart, too few to matter if leaked.
_KEY_ID_CHARS: Final = 16


def key_id(value: str, secret: bytes) -> str:
    """A short, stable, non-reversible name of ``value`` (an API key, an address): a truncated
    HMAC-SHA256 keyed with ``secret``, so nobody without the secret can test a guess against it."""
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:_KEY_ID_CHARS]


def is_exempt(path: str) -> bool:
    """Whether ``path`` is open to everyone (probes, metrics, the docs and the web page, and
    their files)."""
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES)


class AccessMiddleware:
    """401 without a valid key (when keys are configured), 429 over the per-minute limit or
    after too many wrong keys from one address. Records the caller's tenant in the scope."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: list[SecretStr],
        header: str,
        per_minute: int,
        key_id_secret: SecretStr,
        auth_failures_per_minute: int = 0,
    ) -> None:
        self.app = app
        self._keys = [key.get_secret_value().encode() for key in api_keys]
        self._header = header
        self._secret = key_id_secret.get_secret_value().encode()
        self._limit = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self._failures = (
            RateLimitItemPerMinute(auth_failures_per_minute)
            if self._keys and auth_failures_per_minute > 0
            else None
        )
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        error = await self._check(scope)
        if error is not None:
            response = render_error(error, request_id_of(scope))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope) -> GatewayError | None:
        """The error refusing this request, or None once its tenant is recorded."""
        client = scope.get("client")
        address = client[0] if client else "unknown"
        failures_bucket = f"authfail:{address}"
        if self._failures is not None and not await self._limiter.test(
            self._failures, failures_bucket
        ):
            logger.info(
                "request %s refused: too many wrong API keys from its address",
                request_id_of(scope),
            )
            retry_after = await self._retry_after(self._failures, failures_bucket)
            return TooManyAuthFailuresError(retry_after)
        if self._keys:
            offered = (Headers(scope=scope).get(self._header) or "").encode()
            # Compare against every key, in constant time, so timing reveals nothing.
            matches = [hmac.compare_digest(offered, key) for key in self._keys]
            if not any(matches):
                if offered and self._failures is not None:
                    await self._limiter.hit(self._failures, failures_bucket)
                return UnauthorizedError(self._header)
            bucket = tenant = f"key:{key_id(offered.decode(), self._secret)}"
        else:
            bucket = f"addr:{address}"
            # The model sees an HMAC of the address, never the address itself.
            tenant = f"addr:{key_id(address, self._secret)}"
        if self._limit is not None and not await self._limiter.hit(self._limit, bucket):
            logger.info("request %s over the rate limit of %s", request_id_of(scope), bucket)
            return RateLimitedError(
                self._limit.amount, await self._retry_after(self._limit, bucket)
            )
        set_tenant(scope, tenant)
        return None

    async def _retry_after(self, limit: RateLimitItem, bucket: str) -> int:
        """Whole seconds until ``bucket`` has room under ``limit`` again (at least 1)."""
        reset_at, _ = await self._limiter.get_window_stats(limit, bucket)
        return max(1, math.ceil(reset_at - time.time()))
