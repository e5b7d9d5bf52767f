"""429 and 503 are asked again after the server's Retry-After, bounded; other errors are not."""

from __future__ import annotations

import asyncio
import random
from email.utils import formatdate

import pytest

from cli.backend import ServerError, TransportError
from cli.retry import RetryPolicy, delay_s, parse_retry_after, should_retry, with_retries

pytestmark = pytest.mark.unit

POLICY = RetryPolicy()


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    for bad in (None, "", "soon", "-1", "1.5e3"):
        assert parse_retry_after(bad) is None


def test_retry_after_is_never_cut_and_at_most_a_quarter_longer() -> None:
    rng = random.Random(1)  # noqa: S311  # reproducible jitter
    waits = [delay_s(POLICY, 1, 10.0, rng) for _ in range(1000)]
    assert min(waits) >= 10.0
    assert max(waits) <= 12.5
    assert max(waits) - min(waits) > 1.0  # jittered, so a refused batch does not return at once


def test_backoff_doubles_up_to_the_cap_with_equal_jitter() -> None:
    rng = random.Random(2)  # noqa: S311  # reproducible jitter
    for attempt in range(1, 12):
        ceiling = min(POLICY.cap_s, POLICY.base_s * 2 ** (attempt - 1))
        waits = [delay_s(POLICY, attempt, None, rng) for _ in range(200)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
    assert delay_s(POLICY, 20, None, rng) <= POLICY.cap_s


def test_what_is_retried() -> None:
    busy = ServerError(429, "rate_limited", "slow down", retry_after_s=3)
    down = ServerError(503, "model_unavailable", "later")
    bad = ServerError(422, "invalid_argument", "corrupt")
    lost = TransportError("connection refused")
    assert should_retry(POLICY, busy, 1)
    assert should_retry(POLICY, down, POLICY.max_attempts - 1)
    assert not should_retry(POLICY, down, POLICY.max_attempts)
    assert not should_retry(POLICY, bad, 1)
    assert should_retry(POLICY, lost, POLICY.transport_attempts - 1)
    assert not should_retry(POLICY, lost, POLICY.transport_attempts)
    # A wait longer than the policy believes is not waited for: the file fails now.
    far = ServerError(429, "rate_limited", "slow down", retry_after_s=POLICY.max_retry_after_s + 1)
    assert not should_retry(POLICY, far, 1)


def test_with_retries_waits_as_told_then_answers() -> None:
    errors: list[Exception] = [
        ServerError(429, "rate_limited", "slow down", retry_after_s=2),
        ServerError(503, "gateway_busy", "busy", retry_after_s=None),
    ]
    slept: list[float] = []
    told: list[tuple[int, float]] = []

    async def call() -> str:
        if errors:
            raise errors.pop(0)
        return "text"

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    answer = asyncio.run(
        with_retries(
            call,
            POLICY,
            on_retry=lambda _error, attempt, wait: told.append((attempt, wait)),
            sleep=sleep,
            rng=random.Random(3),  # noqa: S311  # reproducible jitter
        )
    )
    assert answer == "text"
    assert len(slept) == 2
    assert 2.0 <= slept[0] <= 2.5
    assert POLICY.base_s <= slept[1] <= 2 * POLICY.base_s
    assert [attempt for attempt, _ in told] == [1, 2]


def test_with_retries_gives_up_with_the_last_error() -> None:
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        raise ServerError(503, "model_unavailable", "later")

    async def sleep(_seconds: float) -> None:
        return None

    with pytest.raises(ServerError, match="later"):
        asyncio.run(with_retries(call, POLICY, sleep=sleep))
    assert calls == POLICY.max_attempts


def test_final_errors_are_not_retried() -> None:
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        raise ServerError(422, "invalid_argument", "corrupt")

    with pytest.raises(ServerError):
        asyncio.run(with_retries(call, POLICY))
    assert calls == 1
