"""Admission by deadline: take a request when it can finish in time, refuse it at once otherwise.

A request's cost is estimated before any work is done, from its pixels (read from the image's
headers; a PDF page is taken to be a US-letter page at the request's dpi, so nothing parses a
document in the serving process): `seconds = per_request_s + per_megapixel_s x megapixels`.
Both terms are learned from the requests that are read (`CostEstimate`; one stopped at its
deadline counts too when it ran longer than expected: it took at least that), and so is how far off
the estimate tends to be (its mean deviation): a request is planned at its expected seconds plus
`DEVIATIONS` times that deviation, as TCP plans a round trip, so a steady machine admits up to
its capacity and a noisy one (neighbours taking the CPU in turns) keeps a wider margin.

The pool's work is held in expected seconds: what the running requests still have to do (their
estimate less the time they have run) plus the estimates of the waiting ones, stretched while
every worker runs past its estimate (the machine is slower than the estimate knows yet).
Workers take requests in order, so the running ones are the `workers` oldest in the pool. A new
request would start once a worker is free: at once if one is idle, else after `backlog /
workers` seconds. It is admitted when that start plus its own estimate fits in `HEADROOM` of
the time it has left; otherwise it is refused at once, with the seconds after which it would
have fitted (the queue draining at the expected pace; the hints of requests refused together
are staggered at that pace, so their clients come back one by one): the retry hint. A request
that would start at once is admitted: no amount of waiting makes it fit better (the engine's
own deadline checks answer it); but one whose expected time exceeds its whole budget only into
an empty pool, so doomed work does not take every worker while the estimate keeps learning.

Two more bounds: the bytes of the inputs held (`max_bytes`, the serving process's memory), and a
hard cap on the number of requests in the pool (`max_requests`). A request is refused for bytes
only when others hold some: one larger than the budget still runs alone. The bytes are held
from the moment the serving process has the request: a gRPC message as soon as it is received,
before protobuf parses it, and a REST body from its `Content-Length`, before it is read
(`hold`, released when the call ends; the ticket of such a request counts no bytes again);
otherwise from admission to the end of the work. So a refusal for memory costs no copy beyond
the bytes received.

Admitted work that then waits too long is still expired by the workers: the estimate is an
estimate.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final, Literal

import contract

from . import image as image_codec
from .types import EngineBusyError

#: Share of a request's time it may be planned to use: the rest absorbs the estimate's error
#: (pages of the same size differ by ~10-20 %; a busy machine slows every worker) and the time
#: to answer.
HEADROOM: Final = 0.8
#: How far each finished request moves the estimate at its size (an EWMA's weight); the first
#: requests are averaged equally until there are 1/LEARNING_RATE of them.
LEARNING_RATE: Final = 0.1
#: How many mean deviations above its expected seconds a request is planned.
DEVIATIONS: Final = 2.0
#: The largest relative error one request counts for in the deviation: a stray page ten times
#: slower than expected widens the margin as much as one twice as slow.
MAX_RELATIVE_ERROR: Final = 1.0
#: The estimate before any request finished: a dense text page on one current x86 core takes
#: ~0.3 s a megapixel plus ~5 ms per request (engine, pipe, dispatch); these start above that.
PRIOR_PER_REQUEST_S: Final = 0.02
PRIOR_PER_MEGAPIXEL_S: Final = 0.5
#: A PDF page's size when its pixels are not read in the serving process: US letter, 8.5 x 11 in.
PDF_PAGE_SQUARE_INCHES: Final = 8.5 * 11
#: The shortest retry hint: sooner, the queue has hardly moved.
MIN_RETRY_S: Final = 0.1

Reason = Literal["deadline", "memory", "queue"]
#: Why a request is refused: it cannot finish in time, the pool holds too many bytes, or too
#: many requests.
REASONS: Final[tuple[Reason, ...]] = ("deadline", "memory", "queue")


class AdmissionRefusedError(EngineBusyError):
    """The request was refused at once; `retry_after_s` says when capacity is expected."""

    def __init__(self, message: str, reason: Reason, retry_after_s: float) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.retry_after_s = retry_after_s


def megapixels_of(
    data: bytes, limits: image_codec.DecodeLimits, *, page: int = 1, dpi: int = contract.DEFAULT_DPI
) -> float:
    """Megapixels the engine will read for `data`, from its headers (no pixel decoded).

    An image's size comes from `image.probe`, which refuses (InvalidImageError) what the engine
    would refuse; a PDF page is taken to be a US-letter page at `dpi`.
    """
    if contract.formats.sniff_document_format(data) is contract.formats.PDF_FORMAT:
        return PDF_PAGE_SQUARE_INCHES * dpi * dpi / 1e6
    return image_codec.probe(data, limits, page=page, dpi=dpi).pixels / 1e6


class CostEstimate:
    """Seconds a request of a given size holds a worker: `per_request_s + per_megapixel_s x MP`,
    and the mean relative `deviation` of the actual seconds from that.

    Learned by normalised least mean squares: each finished request moves the prediction at
    its own size by `LEARNING_RATE` of the error (an EWMA at that size), split between the two
    terms by size, so small requests teach the fixed cost and large ones the rate per
    megapixel. Not thread-safe: `Admission` holds its lock around it.
    """

    def __init__(
        self,
        per_request_s: float = PRIOR_PER_REQUEST_S,
        per_megapixel_s: float = PRIOR_PER_MEGAPIXEL_S,
        learning_rate: float = LEARNING_RATE,
    ) -> None:
        self.per_request_s = per_request_s
        self.per_megapixel_s = per_megapixel_s
        self.learning_rate = learning_rate
        self.observations = 0
        self.deviation = 0.0

    def seconds(self, megapixels: float) -> float:
        """Expected seconds for a request of `megapixels`."""
        return self.per_request_s + self.per_megapixel_s * megapixels

    def planned(self, megapixels: float) -> float:
        """Seconds a request of `megapixels` is planned to take: expected plus the margin."""
        return self.seconds(megapixels) * (1 + DEVIATIONS * self.deviation)

    def learn(self, megapixels: float, seconds: float) -> None:
        """Account for a request of `megapixels` that held its worker `seconds`."""
        self.observations += 1
        rate = max(self.learning_rate, 1 / self.observations)
        predicted = self.seconds(megapixels)
        if self.observations > 1 and predicted > 0:  # the first one is off by the prior's error
            error = min(MAX_RELATIVE_ERROR, abs(seconds - predicted) / predicted)
            self.deviation += max(self.learning_rate, 1 / (self.observations - 1)) * (
                error - self.deviation
            )
        target = predicted + rate * (seconds - predicted)  # >= 0: between two times
        step = (target - predicted) / (1 + megapixels * megapixels)
        per_request_s = self.per_request_s + step
        per_megapixel_s = self.per_megapixel_s + step * megapixels
        # Neither term may go negative; the other then takes the whole target.
        if per_megapixel_s < 0:
            per_request_s, per_megapixel_s = target, 0.0
        elif per_request_s < 0:
            per_request_s, per_megapixel_s = 0.0, target / megapixels
        self.per_request_s, self.per_megapixel_s = per_request_s, per_megapixel_s


@dataclass(eq=False, slots=True)
class Ticket:
    """One admitted request: its size, expected seconds, and when it started (None: waiting)."""

    megapixels: float
    nbytes: int
    cost_s: float
    started: float | None = None
    held: bool = False
    """Its bytes are counted by a `Hold` already (not again by the ticket)."""


@dataclass(eq=False, slots=True)
class Hold:
    """The bytes of a request held from its receipt (see `Admission.hold`)."""

    nbytes: int
    released: bool = False


#: The hold of the request the current task answers, set by whoever took it (the gRPC message
#: guard, the REST guard) for the call's duration; None when nothing holds its bytes yet.
CURRENT_HOLD: ContextVar[Hold | None] = ContextVar("ocr_current_hold", default=None)


class Admission:
    """The admission decision and the pool's expected work; thread-safe.

    `clock` returns monotonic seconds (tests pass one they control). Call `admit` before
    submitting a request and `finish` once it ended, however it ended.
    """

    def __init__(
        self,
        workers: int,
        *,
        max_bytes: int,
        max_requests: int,
        clock: Callable[[], float] = time.monotonic,
        estimate: CostEstimate | None = None,
        headroom: float = HEADROOM,
    ) -> None:
        self.workers = workers
        self.max_bytes = max_bytes
        self.max_requests = max_requests
        self.estimate = estimate or CostEstimate()
        self.headroom = headroom
        self._clock = clock
        self._lock = threading.Lock()
        # In arrival order, which is the order workers take them; the first `workers` run.
        self._tickets: dict[Ticket, None] = {}
        self._waiting_s = 0.0
        self._bytes = 0
        # When the next request refused for its deadline is told to come back, at the earliest.
        self._next_retry = 0.0

    def hold(self, nbytes: int) -> Hold:
        """Hold `nbytes` of a request just received, before any work on it (parsing
        included); raises AdmissionRefusedError ("memory") when they would pass `max_bytes`
        while others hold bytes. `release` the hold when the call ends, however it ends."""
        with self._lock:
            self._check_bytes(self._clock(), nbytes)
            self._bytes += nbytes
            return Hold(nbytes)

    def release(self, hold: Hold) -> None:
        """Give back `hold`'s bytes (once; a second release does nothing)."""
        with self._lock:
            if not hold.released:
                hold.released = True
                self._bytes -= hold.nbytes

    def admit(
        self, megapixels: float, nbytes: int, budget_s: float | None, *, held: bool = False
    ) -> Ticket:
        """A ticket for a request of `megapixels` and `nbytes` with `budget_s` left (None: no
        deadline); raises AdmissionRefusedError when it should not wait. `held`: a `Hold`
        counts its bytes already (the ticket neither checks nor counts them again)."""
        with self._lock:
            now = self._clock()
            if len(self._tickets) >= self.max_requests:
                waiting = len(self._tickets) - self.workers
                raise AdmissionRefusedError(
                    f"all {self.workers} OCR workers are busy and {waiting} requests are "
                    "queued, the most the engine takes; retry shortly",
                    "queue",
                    self._hint(now, lambda freed_bytes, freed: freed >= 1),
                )
            if not held:
                self._check_bytes(now, nbytes)
            cost = self.estimate.planned(megapixels)
            start = self._start_s(now)
            if budget_s is not None and start + cost > self.headroom * budget_s:
                # Waiting cannot make a request that would start at once fit better: it goes
                # in (the engine's own deadline checks answer it), unless not even its expected
                # time fits its whole budget; then only into an empty pool, one long shot at a
                # time, which keeps the estimate learning should the machine be faster again.
                long_shot = self.estimate.seconds(megapixels) > budget_s
                if start or (long_shot and self._tickets):
                    raise AdmissionRefusedError(
                        f"the OCR engine is busy: this request would start in {start:.1f} s and "
                        f"take {cost:.1f} s, more than the {budget_s:.1f} s it has; retry later",
                        "deadline",
                        self._retry_s(now, start, cost, self.headroom * budget_s),
                    )
            ticket = Ticket(megapixels, nbytes, cost, held=held)
            self._tickets[ticket] = None
            self._waiting_s += cost
            if not held:
                self._bytes += nbytes
            self._promote(now)
            return ticket

    def finish(self, ticket: Ticket, *, learn: bool, stopped: bool = False) -> None:
        """`ticket`'s request ended (answered, failed or cancelled). With `learn` (it was read)
        its time teaches the estimate; with `stopped` (it ran out of time) its time is what it
        took at least, and teaches the estimate when that is longer than expected: a machine
        that slowed down shows first in the requests it stops. Other failures and cancellations
        say nothing of cost."""
        with self._lock:
            if ticket not in self._tickets:
                return  # finished twice
            del self._tickets[ticket]
            now = self._clock()
            if ticket.started is None:
                self._waiting_s -= ticket.cost_s
            elif learn or (
                stopped and now - ticket.started > self.estimate.seconds(ticket.megapixels)
            ):
                self.estimate.learn(ticket.megapixels, now - ticket.started)
            if not ticket.held:
                self._bytes -= ticket.nbytes
            self._promote(now)
            if len(self._tickets) <= self.workers:
                self._waiting_s = 0.0  # nobody waits: no rounding error carried on

    @property
    def queue_s(self) -> float:
        """Expected seconds of work in the pool: running requests' rest plus waiting ones."""
        with self._lock:
            return self._backlog_s(self._clock())

    @property
    def queued_bytes(self) -> int:
        """Bytes of input held: by requests in the pool and by calls being received or parsed."""
        with self._lock:
            return self._bytes

    @property
    def requests(self) -> int:
        """Requests in the pool, running or waiting."""
        with self._lock:
            return len(self._tickets)

    def expected_s(self, megapixels: float) -> float:
        """Expected seconds of a request of `megapixels`, as the estimate stands."""
        with self._lock:
            return self.estimate.seconds(megapixels)

    def coefficients(self) -> tuple[float, float, float]:
        """The estimate's seconds per request, seconds per megapixel and mean deviation."""
        with self._lock:
            estimate = self.estimate
            return estimate.per_request_s, estimate.per_megapixel_s, estimate.deviation

    # --- under the lock ---

    def _check_bytes(self, now: float, nbytes: int) -> None:
        if self._bytes and self._bytes + nbytes > self.max_bytes:
            raise self._memory_refusal(now, self._bytes, self._bytes + nbytes - self.max_bytes)

    def _memory_refusal(self, now: float, held: int, needed: int) -> AdmissionRefusedError:
        return AdmissionRefusedError(
            f"the OCR engine is busy: it holds {held / 2**20:.1f} MiB of uploads, "
            f"{self.max_bytes / 2**20:.1f} MiB at most; retry shortly",
            "memory",
            self._hint(now, lambda freed_bytes, freed: freed_bytes >= needed),
        )

    def _running(self) -> list[Ticket]:
        return list(itertools.islice(self._tickets, self.workers))

    def _promote(self, now: float) -> None:
        """Mark as started the requests the workers now hold (the oldest `workers`)."""
        for ticket in self._running():
            if ticket.started is None:
                ticket.started = now
                self._waiting_s -= ticket.cost_s

    def _rest_s(self, ticket: Ticket, now: float) -> float:
        if ticket.started is None:
            return ticket.cost_s
        return max(0.0, ticket.cost_s - (now - ticket.started))

    def _backlog_s(self, now: float) -> float:
        running = self._running()
        waiting_s = max(0.0, self._waiting_s)
        if len(running) == self.workers and all(t.cost_s > 0 for t in running):
            # When every worker runs late, the machine is slower than the estimate knows yet
            # (neighbours took the CPU): the waiting requests will be late as much.
            late = min((now - (t.started or now)) / t.cost_s for t in running)
            waiting_s *= max(1.0, late)
        return sum(self._rest_s(ticket, now) for ticket in running) + waiting_s

    def _start_s(self, now: float) -> float:
        """Seconds until a request arriving now would start."""
        if len(self._tickets) < self.workers:
            return 0.0
        return self._backlog_s(now) / self.workers

    def _retry_s(self, now: float, start: float, cost: float, allowed: float) -> float:
        """When a request refused for its deadline should come back. The backlog drains a
        second per second: after `start + cost - allowed` it would fit (or start at once, and
        be admitted). Requests refused before it were told to come back too, so the hints are
        staggered at the pace the workers take such requests (`cost / workers` apart), so
        refused clients return one by one, not together; never later than when the work
        queued now is done (it would then start at once)."""
        if not start:  # a long shot: it goes in once the pool is empty
            return self._hint(now, lambda freed_bytes, freed: freed == len(self._tickets))
        earliest = now + min(start, start + cost - allowed)
        retry_at = min(max(earliest, self._next_retry), now + start)
        self._next_retry = retry_at + cost / self.workers
        return max(MIN_RETRY_S, retry_at - now)

    def _hint(self, now: float, enough: Callable[[int, int], bool]) -> float:
        """Seconds until the oldest requests have ended so that `enough(bytes, requests)` of
        them are freed, each ending when its rest is done and the work before it is spread
        over the workers."""
        done_s = ahead_s = 0.0
        freed_bytes = 0
        for freed, ticket in enumerate(self._tickets, start=1):
            rest = self._rest_s(ticket, now)
            ahead_s += rest
            done_s = max(rest, ahead_s / self.workers)
            freed_bytes += ticket.nbytes
            if enough(freed_bytes, freed):
                break
        return max(MIN_RETRY_S, done_s)
