"""Admission by deadline and bytes, driven through the pool with a fake backend and a clock the
test moves; and the cost estimate on its own.

The fake backend holds every recognition until the test releases it; the pool's clock only
moves when the test says so, so what the pool expects of its queue is exact, and nothing
sleeps. The estimate is set to a cost per request the test picks (no cost per megapixel), so
each request of the test is expected to take exactly that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image
from prometheus_client import CollectorRegistry

from model.engine import (
    Admission,
    AdmissionRefusedError,
    CostEstimate,
    EnginePool,
    OcrEngine,
    OcrOptions,
    OcrResult,
)
from model.engine.admission import HEADROOM, LEARNING_RATE, megapixels_of
from model.engine.image import DecodeLimits
from model.metrics import ModelMetrics
from tests.support.fake_backend import PAGE, TEXT, FakeBackend
from tests.support.images import encode

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]

#: What every request of these tests is expected to take, until the estimate learns otherwise.
COST_S = 1.0


class Clock:
    """Monotonic seconds that move only when the test advances them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Pools:
    """Builds pools on one fake backend and one clock; closes them (released) at the end."""

    backend: FakeBackend = field(default_factory=FakeBackend)
    clock: Clock = field(default_factory=Clock)
    made: list[EnginePool] = field(default_factory=list)

    def __call__(self, workers: int, max_queue_bytes: int = 2**30) -> EnginePool:
        engine = OcrEngine(self.backend, max_pixels=10_000_000, max_frames=4)
        pool = EnginePool(
            engine,
            workers,
            OcrOptions(),
            max_queue_bytes=max_queue_bytes,
            clock=self.clock,
            estimate=CostEstimate(per_request_s=COST_S, per_megapixel_s=0.0),
        )
        self.made.append(pool)
        return pool


@pytest.fixture
def pools() -> Iterator[Pools]:
    made = Pools()
    yield made
    made.backend.release.set()
    for pool in made.made:
        pool.close(wait=True)


def ocr(pool: EnginePool, budget_s: float | None, psm: int = 3) -> asyncio.Task[OcrResult]:
    return asyncio.create_task(pool.recognize(PAGE, OcrOptions(psm=psm), budget_s))


def refused(coroutine: Coroutine[Any, Any, OcrResult]) -> AdmissionRefusedError:
    """The refusal the coroutine raises in its first step, before it waits for anything."""
    with pytest.raises(AdmissionRefusedError) as caught:
        coroutine.send(None)
    return caught.value


async def settle() -> None:
    """Let the tasks created so far reach the pool (each is admitted or refused at once)."""
    for _ in range(3):
        await asyncio.sleep(0)


def test_requests_are_admitted_while_they_fit_their_deadline_and_refused_after(
    pools: Pools,
) -> None:
    pool = pools(workers=1)
    budget_s = 10.0
    allowed_s = HEADROOM * budget_s  # 8 s: the time a request may be planned to take

    async def scenario() -> None:
        running = ocr(pool, None)
        await pools.backend.entered(1)
        # The k-th waiting request starts after the running one (1 s) and k-1 before it:
        # it fits while k + 1 <= 8, so 7 wait.
        fits = int(allowed_s / COST_S) - 1
        waiting = [ocr(pool, budget_s) for _ in range(fits)]
        await settle()
        assert pool.admission.requests == 1 + fits
        assert pool.admission.queue_s == pytest.approx((1 + fits) * COST_S)
        late = refused(pool.recognize(PAGE, OcrOptions(), budget_s))
        assert late.reason == "deadline"
        # It would start in 8 s and take 1 s, 1 s more than it may plan for: the hint.
        assert late.retry_after_s == pytest.approx(1.0)
        # A request with twice the time fits behind them all.
        patient = ocr(pool, 2 * budget_s)
        await settle()
        assert pool.admission.requests == 2 + fits
        pools.backend.release.set()
        results = await asyncio.gather(running, *waiting, patient)
        assert [result.text for result in results] == [TEXT] * (fits + 2)
        assert pool.admission.requests == 0
        assert pool.admission.queue_s == 0

    asyncio.run(scenario())


def test_refused_clients_are_told_to_come_back_one_by_one(pools: Pools) -> None:
    pool = pools(workers=2)

    async def scenario() -> None:
        first = [ocr(pool, None) for _ in range(2)]
        await pools.backend.entered(2)
        second = [ocr(pool, None) for _ in range(2)]  # wait behind both workers
        await settle()
        # Start: (2 x 1 s running + 2 x 1 s waiting) / 2 workers = 2 s; then 1 s of its own,
        # against 0.8 x 3 s = 2.4 s planned: it would fit 0.6 s from now. Those refused after
        # it are told to come back at the pace the workers take them, half a second apart,
        # but never after the queued work is done (2 s: they would then start at once).
        hints = [refused(pool.recognize(PAGE, OcrOptions(), 3.0)).retry_after_s for _ in range(5)]
        assert hints == pytest.approx([0.6, 1.1, 1.6, 2.0, 2.0])
        pools.clock.advance(0.65)  # the running two are well over half done
        assert pool.admission.queue_s == pytest.approx(2 * 0.35 + 2 * COST_S)
        admitted = ocr(pool, 3.0)  # it now fits: start 1.35 s + 1 s <= 2.4 s
        await settle()
        assert pool.admission.requests == 5
        pools.backend.release.set()
        await asyncio.gather(*first, *second, admitted)

    asyncio.run(scenario())


def test_a_request_that_would_start_at_once_goes_in_unless_it_is_a_long_shot(
    pools: Pools,
) -> None:
    """Waiting cannot make it fit better: the engine's own deadline checks answer it. One whose
    expected time exceeds its whole budget only goes into an empty pool."""
    pool = pools(workers=2)

    async def scenario() -> None:
        busy = ocr(pool, None)
        await pools.backend.entered(1)
        # A worker is free: 1 s expected fits 1.1 s (not 80 % of it, but waiting won't help).
        tight = ocr(pool, 1.1 * COST_S)
        await pools.backend.entered(2)
        late = refused(pool.recognize(PAGE, OcrOptions(), COST_S / 10))
        assert late.reason == "deadline"
        # Both workers run 1 s requests: it would start in 1 s, then fit only when idle.
        assert late.retry_after_s == pytest.approx(1.0)
        pools.clock.advance(COST_S)  # they take what they were expected to
        pools.backend.release.set()
        await asyncio.gather(busy, tight)
        pools.backend.release.clear()
        running = ocr(pool, None)
        await pools.backend.entered(3)
        # A worker is free, but 1 s cannot fit 0.1 s: a long shot waits for an empty pool,
        # which the running request leaves in 1 s.
        shot = refused(pool.recognize(PAGE, OcrOptions(), COST_S / 10))
        assert shot.retry_after_s == pytest.approx(1.0)
        pools.backend.release.set()
        await running
        # Alone, it goes in: it may be read in time should the machine be faster than thought.
        assert (await ocr(pool, COST_S / 10)).text == TEXT

    asyncio.run(scenario())


def test_the_bytes_held_are_bounded_and_a_big_request_still_runs_alone(pools: Pools) -> None:
    pool = pools(workers=1, max_queue_bytes=len(PAGE) * 5 // 2)
    # Noise compresses badly: a large upload (its headers are read on a thread).
    big = encode(Image.effect_noise((400, 400), 64).convert("L"))
    assert len(big) > 64 * 1024

    async def scenario() -> None:
        alone = ocr_bytes(pool, big)  # more than the budget, but nothing else is held
        await pools.backend.entered(1)
        over = refused(pool.recognize(PAGE, OcrOptions(), None))
        assert over.reason == "memory"
        assert "MiB" in str(over)
        # The bytes are freed when the running request ends, in 1 s.
        assert over.retry_after_s == pytest.approx(COST_S)
        pools.clock.advance(COST_S)  # it took what it was expected to: the estimate stays
        pools.backend.release.set()
        await alone
        assert pool.admission.queued_bytes == 0
        pools.backend.release.clear()
        held = [ocr(pool, None) for _ in range(2)]
        await pools.backend.entered(2)
        assert pool.admission.queued_bytes == 2 * len(PAGE)
        third = refused(pool.recognize(PAGE, OcrOptions(), None))
        assert third.reason == "memory"
        # One page's bytes must go: the running one's, in 1 s.
        assert third.retry_after_s == pytest.approx(COST_S)
        pools.backend.release.set()
        await asyncio.gather(*held)

    asyncio.run(scenario())


def ocr_bytes(pool: EnginePool, data: bytes) -> asyncio.Task[OcrResult]:
    return asyncio.create_task(pool.recognize(data, OcrOptions(), None))


def test_the_estimate_learns_from_finished_requests(pools: Pools) -> None:
    pool = pools(workers=1)
    megapixels = megapixels_of(PAGE, pool.engine.limits)

    async def scenario() -> None:
        running = ocr(pool, None)
        await pools.backend.entered(1)
        pools.clock.advance(2.5)  # it held its worker 2.5 s of the pool's clock
        pools.backend.release.set()
        await running

    asyncio.run(scenario())
    # The first request teaches its size outright; the later ones an EWMA at their size.
    assert pool.admission.expected_s(megapixels) == pytest.approx(2.5)


def test_only_requests_that_ran_teach_and_dropped_ones_free_their_place(pools: Pools) -> None:
    pool = pools(workers=1)

    async def scenario() -> None:
        running = ocr(pool, None)
        await pools.backend.entered(1)
        abandoned = ocr(pool, None)
        await settle()
        assert pool.admission.queue_s == pytest.approx(2 * COST_S)
        abandoned.cancel()  # its caller left while it waited: it never runs
        with pytest.raises(asyncio.CancelledError):
            await abandoned
        assert pool.admission.queue_s == pytest.approx(COST_S)
        # Undecodable bytes are refused from their headers, before they take a place.
        with pytest.raises(ValueError, match="image"):
            await pool.recognize(b"not an image", OcrOptions(), None)
        assert pool.admission.requests == 1
        pools.clock.advance(3 * COST_S)
        pools.backend.release.set()
        await running

    asyncio.run(scenario())
    assert pool.admission.estimate.observations == 1
    assert pool.admission.expected_s(megapixels_of(PAGE, pool.engine.limits)) == pytest.approx(
        3 * COST_S
    )


def test_when_every_worker_runs_late_the_waiting_work_is_expected_late_too(
    pools: Pools,
) -> None:
    pool = pools(workers=2)

    async def scenario() -> None:
        running = [ocr(pool, None) for _ in range(2)]
        await pools.backend.entered(2)
        waiting = [ocr(pool, None) for _ in range(2)]
        await settle()
        assert pool.admission.queue_s == pytest.approx(4 * COST_S)
        pools.clock.advance(1.5)  # both running requests are half as slow again as expected
        assert pool.admission.queue_s == pytest.approx(2 * COST_S * 1.5)
        pools.backend.release.set()
        await asyncio.gather(*running, *waiting)

    asyncio.run(scenario())


def test_a_request_stopped_at_its_deadline_teaches_what_it_took_at_least() -> None:
    clock = Clock()
    admission = Admission(
        1,
        max_bytes=2**30,
        max_requests=8,
        clock=clock,
        estimate=CostEstimate(per_request_s=COST_S, per_megapixel_s=0.0),
    )
    late = admission.admit(0.1, 100, None)
    expired = admission.admit(0.1, 100, None)  # waits behind it
    clock.advance(3.0)  # the machine slowed down: stopped at its deadline after 3 s
    admission.finish(late, learn=False, stopped=True)
    assert admission.expected_s(0.1) == pytest.approx(3.0)
    clock.advance(0.01)  # the next one's time had run out while it waited: it never ran
    admission.finish(expired, learn=False, stopped=True)
    assert admission.expected_s(0.1) == pytest.approx(3.0)
    assert admission.estimate.observations == 1


def test_pdf_pages_are_sized_from_the_dpi_without_being_parsed() -> None:
    limits = DecodeLimits(max_pixels=10**8, max_frames=4)
    pdf = b"%PDF-1.7\n" + b"\0" * 64  # not even a valid PDF: nothing reads it
    assert megapixels_of(pdf, limits, dpi=300) == pytest.approx(8.5 * 11 * 300 * 300 / 1e6)
    assert megapixels_of(pdf, limits, dpi=150) == pytest.approx(8.5 * 11 * 150 * 150 / 1e6)
    line = encode(Image.new("L", (800, 80), 255))
    assert megapixels_of(line, limits) == pytest.approx(800 * 80 / 1e6)


# --- the estimate on its own ---


def test_the_first_observation_replaces_the_prior_at_its_size() -> None:
    estimate = CostEstimate(per_request_s=5.0, per_megapixel_s=5.0)
    estimate.learn(2.0, 1.0)
    assert estimate.seconds(2.0) == pytest.approx(1.0)


def test_the_estimate_is_an_ewma_at_one_size() -> None:
    estimate = CostEstimate(learning_rate=0.1)
    for _ in range(200):
        estimate.learn(3.74, 1.2)
    assert estimate.seconds(3.74) == pytest.approx(1.2)
    estimate.learn(3.74, 2.2)  # one slow page moves it a tenth of the way
    assert estimate.seconds(3.74) == pytest.approx(1.3)


def test_mixed_sizes_separate_the_fixed_cost_from_the_cost_per_megapixel() -> None:
    per_request_s, per_megapixel_s = 0.005, 0.3  # what a current x86 core measures
    estimate = CostEstimate()
    for _ in range(300):
        for megapixels in (0.064, 3.74, 1.92):  # a line, a page, a photo
            estimate.learn(megapixels, per_request_s + per_megapixel_s * megapixels)
    assert estimate.per_megapixel_s == pytest.approx(per_megapixel_s, rel=0.02)
    assert estimate.per_request_s == pytest.approx(per_request_s, abs=0.002)
    assert estimate.seconds(8.4) == pytest.approx(per_request_s + per_megapixel_s * 8.4, rel=0.02)


def test_the_margin_follows_how_far_off_the_estimate_tends_to_be() -> None:
    steady, noisy = CostEstimate(), CostEstimate()
    for index in range(200):
        steady.learn(3.74, 1.2)
        noisy.learn(3.74, 0.9 if index % 2 else 1.5)  # neighbours take the CPU in turns
    assert steady.deviation == pytest.approx(0, abs=1e-9)
    assert steady.planned(3.74) == pytest.approx(steady.seconds(3.74))
    # Off by a quarter either way: planned two deviations (50 %) above the mean.
    assert noisy.deviation == pytest.approx(0.25, abs=0.02)
    assert noisy.planned(3.74) == pytest.approx(1.5 * noisy.seconds(3.74), rel=0.05)
    # A stray page ten times slower counts as one twice as slow.
    before = steady.deviation
    steady.learn(3.74, 12.0)
    assert steady.deviation == pytest.approx(before + LEARNING_RATE * 1.0)


def test_the_estimate_never_goes_negative() -> None:
    estimate = CostEstimate()
    for _ in range(50):
        estimate.learn(0.01, 0.0)
        estimate.learn(10.0, 0.0)
    assert estimate.per_request_s >= 0
    assert estimate.per_megapixel_s >= 0
    assert estimate.seconds(1.0) >= 0


# --- what the metrics show ---


def test_metrics_show_the_queue_the_estimate_and_every_refusal_reason(pools: Pools) -> None:
    pool = pools(workers=1)
    metrics = ModelMetrics(CollectorRegistry())
    metrics.watch(pool.admission)

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample("ocr_admission_estimate_seconds_per_request") == COST_S
    assert sample("ocr_admission_estimate_seconds_per_megapixel") == 0
    assert sample("ocr_admission_estimate_deviation_ratio") == 0
    for reason in ("deadline", "memory", "queue"):
        assert sample("ocr_admission_refusals_total", reason=reason) == 0

    async def scenario() -> None:
        running = ocr(pool, None)
        await pools.backend.entered(1)
        assert sample("ocr_admission_queue_seconds") == pytest.approx(COST_S)
        assert sample("ocr_admission_queue_bytes") == len(PAGE)
        pools.backend.release.set()
        await running

    asyncio.run(scenario())
    assert sample("ocr_admission_queue_seconds") == 0
    metrics.record_refusal("deadline")
    assert sample("ocr_admission_refusals_total", reason="deadline") == 1
