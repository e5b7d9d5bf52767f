"""The bytes of a request held from its receipt, before any work on it: what the protocol guards
ask of the engine's admission.

A gRPC `ModelInferRequest` of 8 MiB becomes ~4 more copies in the serving process before the
engine's admission sees it (protobuf's parse, KServe's input, the image, the copy sent to a
worker); a request refused there had cost all of them. The gRPC message guard therefore holds a
message's bytes as soon as it is received, before protobuf parses it, and the REST guard a
body's `Content-Length` before it is read; `OCR_MODEL_MAX_QUEUE_BYTES` bounds what is held
(`Admission.hold`). A refusal is the engine's: RESOURCE_EXHAUSTED / 429 with its retry hint,
counted as `ocr_admission_refusals_total{reason="memory"}`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .engine import CURRENT_HOLD, Admission, AdmissionRefusedError, Hold
from .errors import ModelOverloaded, to_protocol_error


class Intake:
    """Holds the bytes of requests from their receipt to the end of their call."""

    def __init__(self, admission: Admission, on_refusal: Callable[[str], None]) -> None:
        self._admission = admission
        self._on_refusal = on_refusal

    def hold(self, nbytes: int) -> Hold:
        """Hold `nbytes` just received; ModelOverloaded (with the retry hint) when the engine
        holds too many bytes already. Release it with `holding` or `release`."""
        held = self.try_hold(nbytes)
        if isinstance(held, ModelOverloaded):
            raise held
        return held

    def try_hold(self, nbytes: int) -> Hold | ModelOverloaded:
        """As `hold`, but the refusal is returned, never raised: it carries no traceback, so
        nothing it refers to keeps the caller's frame, and the message that frame holds,
        alive. A raised refusal's traceback reaches the frame (through the frames it calls)
        and ends in a reference cycle when the call answers with it: the message then waits
        for the cyclic garbage collector, and 24 refused 18 MiB uploads held 440 MiB."""
        try:
            return self._admission.hold(nbytes)
        except AdmissionRefusedError as error:
            return self._refused(error)  # created, not raised: no traceback, no context

    def _refused(self, error: AdmissionRefusedError) -> ModelOverloaded:
        self._on_refusal(error.reason)
        refusal = to_protocol_error(error)
        assert isinstance(refusal, ModelOverloaded)
        return refusal

    def release(self, hold: Hold) -> None:
        """Give `hold`'s bytes back (a second release does nothing)."""
        self._admission.release(hold)

    @contextmanager
    def holding(self, hold: Hold) -> Iterator[None]:
        """The call answered meanwhile is the one `hold` belongs to (the engine counts its
        bytes once); the bytes are given back when it ends, however it ends."""
        token = CURRENT_HOLD.set(hold)
        try:
            yield
        finally:
            CURRENT_HOLD.reset(token)
            self.release(hold)
