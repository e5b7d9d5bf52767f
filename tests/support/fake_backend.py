"""A fake `Backend` whose recognitions block until the test releases them, for pool tests.

It records the options and the time budget each recognition was handed and the thread it ran
on, and returns canned text. Requests are told apart by their page-segmentation mode (`psm`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from model.engine import OcrOptions, Orientation, Word
from model.engine.types import Block, Box, Paragraph, TextLine
from tests.support.images import line_png

PAGE = line_png("Pool under test")
TEXT = "canned text\n"
WORDS = (Word("canned", 90.0, 0, 0, 10, 10, 1, 1), Word("text", 80.0, 12, 0, 10, 10, 1, 1))
_LINE = Box(0, 0, 22, 10)
BLOCKS = (Block(_LINE, (Paragraph(_LINE, (TextLine(_LINE, WORDS),)),)),)
#: Upper bound of every wait in this module; a healthy run needs milliseconds.
WAIT_S = 5.0


@dataclass
class Call:
    """What the backend saw of one recognition."""

    psm: int
    timeout_s: float | None
    thread: str


@dataclass
class FakeBackend:
    """A `Backend` whose recognitions block until `release` is set."""

    name: str = "fake"
    release: threading.Event = field(default_factory=threading.Event)
    calls: list[Call] = field(default_factory=list)
    warmed: list[tuple[str, OcrOptions]] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def languages(self) -> frozenset[str]:
        return frozenset({"eng"})

    def warm(self, options: OcrOptions) -> None:
        with self._changed:
            self.warmed.append((threading.current_thread().name, options))
            self._changed.notify_all()

    def recognize(
        self, image: Image.Image, options: OcrOptions, timeout_s: float | None = None
    ) -> tuple[str, tuple[Block, ...]]:
        with self._changed:
            self.calls.append(Call(options.psm, timeout_s, threading.current_thread().name))
            self._changed.notify_all()
        if not self.release.wait(WAIT_S):
            raise AssertionError("the test never released the backend")
        return TEXT, BLOCKS

    def orientation(self, image: Image.Image) -> Orientation | None:
        return None

    def seen(self) -> list[int]:
        """The psm of every recognition that reached the backend, in order."""
        with self._changed:
            return [call.psm for call in self.calls]

    def wait_for(self, what: str, check: Callable[[], bool]) -> None:
        """Block until `check()` (read under the lock) holds; fail after WAIT_S."""
        with self._changed:
            if not self._changed.wait_for(check, WAIT_S):
                raise AssertionError(f"timed out waiting for {what}")

    async def entered(self, count: int) -> None:
        """Wait, off the event loop, until `count` recognitions have reached the backend."""
        await asyncio.to_thread(
            self.wait_for, f"{count} calls in the backend", lambda: len(self.calls) >= count
        )
