"""When `ocr` asks again: answers 429 and 503 after the server's `Retry-After`, lost
connections after a short backoff, each a bounded number of times.

`Retry-After` is the server's own word on when it will have room, so the wait is never shorter;
a random quarter more spreads the many files of a batch that were refused together. Without
one the wait doubles from `base_s` up to `cap_s` with "equal jitter" (half fixed, half random),
as the gateway's own gRPC client waits for the model.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Final, TypeVar

from cli.backend import ServerError, TransportError

_T = TypeVar("_T")

#: The statuses worth asking again: the server is busy (429) or briefly unavailable (503).
RETRY_STATUSES: Final = frozenset({429, 503})
# Spreads retries apart; no cryptographic randomness needed.
_jitter = random.Random()  # noqa: S311


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long `ocr` waits before asking again."""

    max_attempts: int = 6
    """Attempts of one request answered 429 or 503, the first included."""
    transport_attempts: int = 3
    """Attempts of one request whose connection failed, the first included."""
    base_s: float = 0.5
    """The first backoff without a `Retry-After` (then 1, 2, 4 ... seconds)."""
    cap_s: float = 30.0
    """The longest backoff without a `Retry-After`."""
    max_retry_after_s: float = 120.0
    """The longest `Retry-After` waited for; a longer one fails the file at once."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta-seconds or an HTTP date), or None
    when it is absent or malformed."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def delay_s(
    policy: RetryPolicy, attempt: int, retry_after_s: float | None, rng: random.Random = _jitter
) -> float:
    """Seconds to wait after failed attempt number `attempt` (from 1): the server's
    `retry_after_s` plus up to a quarter more, else jittered exponential backoff."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    if retry_after_s is not None:
        return retry_after_s * (1.0 + 0.25 * rng.random())
    ceiling = min(policy.cap_s, policy.base_s * 2.0 ** (attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def should_retry(policy: RetryPolicy, error: Exception, attempt: int) -> bool:
    """Whether a request that failed with `error` on attempt `attempt` is tried again."""
    if isinstance(error, TransportError):
        return attempt < policy.transport_attempts
    if isinstance(error, ServerError) and error.status in RETRY_STATUSES:
        too_long = (
            error.retry_after_s is not None and error.retry_after_s > policy.max_retry_after_s
        )
        return attempt < policy.max_attempts and not too_long
    return False


#: Told of each retry: the error, the attempt that failed, the seconds about to be waited.
RetryHook = Callable[[Exception, int, float], None]


async def with_retries(
    call: Callable[[], Awaitable[_T]],
    policy: RetryPolicy,
    on_retry: RetryHook | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random = _jitter,
) -> _T:
    """`call()`'s answer, asking again as `policy` allows; the last error when it gives up."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except (ServerError, TransportError) as error:
            if not should_retry(policy, error, attempt):
                raise
            retry_after = error.retry_after_s if isinstance(error, ServerError) else None
            wait = delay_s(policy, attempt, retry_after, rng)
            if on_retry is not None:
                on_retry(error, attempt, wait)
            await sleep(wait)


def whole_seconds(seconds: float) -> str:
    """`2.3` → `3 s`: a wait, for messages."""
    return f"{max(1, math.ceil(seconds))} s"
