"""Memory seen from tests: the peak resident memory of a process (and, if asked, of the
processes below it) while a test does something; what waits in reference cycles."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType, TracebackType

import psutil


def resident(process: psutil.Process, children: bool = False) -> int:
    """`process`'s RSS, plus its descendants' with `children`: the sum counts pages they share
    more than once, so it bounds from above what their container is charged."""
    total: int = process.memory_info().rss
    if children:
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a worker replaced meanwhile
                total += child.memory_info().rss
    return total


@dataclass
class RssPeak:
    """Samples `process`'s resident memory (with its descendants' if `children`) in a thread
    while in use: `start` when entered, `peak` the largest seen, `growth` the difference."""

    process: psutil.Process
    children: bool = False
    interval_s: float = 0.005
    start: int = 0
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            self.peak = max(self.peak, resident(self.process, self.children))

    def __enter__(self) -> RssPeak:
        self.start = self.peak = resident(self.process, self.children)

        def sample() -> None:
            while not self._stop.wait(self.interval_s):
                self._sample()

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._sample()

    @property
    def growth(self) -> int:
        return self.peak - self.start


def frames_in_cycles(holding: Callable[[object], bool]) -> list[str]:
    """Names of the frames, reachable only through reference cycles (garbage that only the
    cyclic collector would free), whose locals hold a value `holding` matches. Collects: call it
    with the collector disabled since before the work that may leave such cycles."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return [
            garbage.f_code.co_name
            for garbage in gc.garbage
            if isinstance(garbage, FrameType)
            and any(holding(value) for value in garbage.f_locals.values())
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
