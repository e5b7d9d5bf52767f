"""`read_pages`: bounded fan-out, completion order, per-page errors, cancellation on close.

The model call is a fake whose pages finish when the test says so (one asyncio.Event each),
so the order and the concurrency are the test's, not the scheduler's; nothing sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import grpc
import pytest

from gateway.errors import ModelTimeoutError
from gateway.pages import PageOutcome, read_pages

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


class Pages:
    """A fake model: page n is read when `finish(n)` is called; records concurrency."""

    def __init__(self) -> None:
        self.gates: dict[int, asyncio.Event] = {}
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self.running = 0
        self.most_running = 0
        self.changed = asyncio.Event()

    async def wait_started(self, count: int) -> None:
        while len(self.started) < count:
            await self.changed.wait()
            self.changed.clear()

    def gate(self, number: int) -> asyncio.Event:
        return self.gates.setdefault(number, asyncio.Event())

    def finish(self, *numbers: int) -> None:
        for number in numbers:
            self.gate(number).set()

    async def read(self, number: int) -> str:
        self.started.append(number)
        self.changed.set()
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gate(number).wait()
        except asyncio.CancelledError:
            self.cancelled.append(number)
            raise
        finally:
            self.running -= 1
        if number % 10 == 0:
            raise ModelTimeoutError(grpc.StatusCode.DEADLINE_EXCEEDED, "page too slow")
        return f"text of page {number}"


async def take(iterator: AsyncIterator[PageOutcome[str]]) -> PageOutcome[str]:
    return await asyncio.wait_for(anext(iterator), 5)


def test_pages_come_in_completion_order_with_at_most_concurrency_running() -> None:
    async def scenario() -> None:
        pages = Pages()
        outcomes = read_pages(range(1, 6), pages.read, concurrency=2)
        first = asyncio.ensure_future(take(outcomes))
        await pages.wait_started(2)
        assert pages.started == [1, 2]
        pages.finish(2)
        assert (await first) == PageOutcome(2, result="text of page 2")
        pages.finish(1, 3, 4, 5)
        rest = [outcome.number async for outcome in outcomes]
        assert sorted(rest) == [1, 3, 4, 5]
        assert pages.most_running == 2

    asyncio.run(scenario())


def test_a_failed_page_is_its_outcome_and_the_document_goes_on() -> None:
    async def scenario() -> list[PageOutcome[str]]:
        pages = Pages()
        pages.finish(*range(9, 13))
        return [outcome async for outcome in read_pages([9, 10, 11, 12], pages.read, 8)]

    outcomes = {outcome.number: outcome for outcome in asyncio.run(scenario())}
    assert set(outcomes) == {9, 10, 11, 12}
    failed = outcomes[10]
    assert failed.result is None
    assert isinstance(failed.error, ModelTimeoutError)
    assert outcomes[11].result == "text of page 11"


def test_closing_early_cancels_the_pages_still_being_read() -> None:
    async def scenario() -> Pages:
        pages = Pages()
        outcomes = read_pages(range(1, 101), pages.read, concurrency=4)
        assert isinstance(outcomes, AsyncGenerator)
        pages.finish(1)
        assert (await take(outcomes)).number == 1
        await outcomes.aclose()  # the client went away
        return pages

    pages = asyncio.run(scenario())
    # Pages 2-5 were running and are cancelled; the other 95 never started.
    assert sorted(pages.cancelled) == [2, 3, 4, 5]
    assert len(pages.started) == 5
    assert pages.running == 0


def test_an_unexpected_error_propagates_after_the_others_are_cancelled() -> None:
    async def read(number: int) -> str:
        if number == 1:
            raise RuntimeError("bug")
        await asyncio.Event().wait()
        return ""

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="bug"):
            async for _ in read_pages([1, 2, 3], read, concurrency=3):
                pass

    asyncio.run(scenario())


def test_concurrency_must_be_positive() -> None:
    async def scenario() -> None:
        with pytest.raises(ValueError, match="concurrency"):
            await anext(read_pages([1], Pages().read, concurrency=0))

    asyncio.run(scenario())
