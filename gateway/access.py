"""Who may call the API and how often: optional API keys with per-key rate limits.

Pure ASGI middleware in front of the routes. Probes, metrics and the API docs are exempt, so
orchestrators and scrapers never need a key. Keys are compared in constant time and only a
short hash of a key ever reaches logs or the rate limiter's storage.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from typing import Final

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.context import request_id_of
from gateway.errors import RateLimitedError, UnauthorizedError
from gateway.handlers import render_error

logger = logging.getLogger(__name__)

#: Paths that never need a key nor count against a limit.
EXEMPT_PATHS: Final = frozenset(
    {"/healthz", "/health", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"}
)


def key_id(key: str) -> str:
    """A short, stable, non-reversible name for a key (for logs and limiter buckets)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class AccessMiddleware:
    """401 without a valid key (when keys are configured), 429 over the per-minute limit."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: list[SecretStr],
        header: str,
        per_minute: int,
    ) -> None:
        self.app = app
        self._keys = [key.get_secret_value().encode() for key in api_keys]
        self._header = header
        self._limit = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        bucket = self._client_bucket(scope)
        if bucket is None:
            response = render_error(UnauthorizedError(self._header), request_id_of(scope))
            await response(scope, receive, send)
            return
        if self._limit is not None and not await self._limiter.hit(self._limit, bucket):
            reset_at, _ = await self._limiter.get_window_stats(self._limit, bucket)
            retry_after = max(1, math.ceil(reset_at - time.time()))
            logger.info("request %s over the rate limit of %s", request_id_of(scope), bucket)
            error = RateLimitedError(self._limit.amount, retry_after)
            response = render_error(error, request_id_of(scope))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _client_bucket(self, scope: Scope) -> str | None:
        """The rate-limit bucket of this caller; None when a required key is missing or wrong."""
        if not self._keys:
            client = scope.get("client")
            return f"addr:{client[0] if client else 'unknown'}"
        offered = (Headers(scope=scope).get(self._header) or "").encode()
        # Compare against every key, in constant time, so timing reveals nothing.
        matches = [hmac.compare_digest(offered, key) for key in self._keys]
        if not offered or not any(matches):
            return None
        return f"key:{key_id(offered.decode())}"
