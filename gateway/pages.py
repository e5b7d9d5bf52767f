"""Read a document's pages on the model, several at once, each outcome as soon as it is ready.

The page is the model's unit and the document the gateway's: `read_pages` runs one model call
per page, at most `concurrency` at a time (so one document keeps every engine worker of every
model replica busy, and no more), and yields each page's outcome the moment its call ends, in
completion order. A page whose call fails yields its error and the document goes on. Closing
the iterator early (the client went away) cancels the calls still running, so the model drops
their queued work.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.errors import GatewayError

_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class PageOutcome(Generic[_R]):
    """One page's result, or the error that stopped it (exactly one of the two is set)."""

    number: int
    result: _R | None = None
    error: GatewayError | None = None


async def read_pages(
    numbers: Iterable[int],
    read_one: Callable[[int], Awaitable[_R]],
    concurrency: int,
) -> AsyncGenerator[PageOutcome[_R], None]:
    """Call `read_one(n)` for each page number, `concurrency` at a time; yield each outcome
    as soon as it is known. A GatewayError from `read_one` is that page's outcome; anything
    else is a bug and propagates (after the other calls are cancelled)."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    waiting = iter(numbers)
    running: set[asyncio.Task[PageOutcome[_R]]] = set()

    async def run(number: int) -> PageOutcome[_R]:
        try:
            return PageOutcome(number, result=await read_one(number))
        except GatewayError as error:
            return PageOutcome(number, error=error)

    def start_next() -> None:
        number = next(waiting, None)
        if number is not None:
            running.add(asyncio.create_task(run(number), name=f"page-{number}"))

    try:
        for _ in range(concurrency):
            start_next()
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=lambda t: t.result().number):
                running.discard(task)
                start_next()  # before yielding: the consumer may take its time
                yield task.result()
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
