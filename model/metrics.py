"""Model server metrics: OCR outcomes, engine stage latency, queueing, admission, result shape.

Names start with `ocr_` and never collide with KServe's built-ins (`request_predict_seconds`
and friends, in the default registry). The metrics live in a registry of their own, created
per server; `OcrModelServer` adds it to the default registry that KServe's `/metrics` serves.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from telemetry import exemplar

from .engine import ADMISSION_REASONS, Admission, OcrResult

STAGES: Final = ("decode", "preprocess", "recognize")
STAGE_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
QUEUE_BUCKETS: Final = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PIXEL_BUCKETS: Final = (1e4, 1e5, 5e5, 1e6, 2e6, 4e6, 8e6, 16e6, 40e6)
COUNT_BUCKETS: Final = (0, 1, 5, 10, 50, 100, 500, 1000, 5000, 20000)
CONFIDENCE_BUCKETS: Final = tuple(float(v) for v in range(10, 101, 10))


class ModelMetrics:
    """The OCR model's Prometheus metrics, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "ocr_requests",
            "OCR requests by outcome (success or error) and requested language.",
            ["status", "lang"],
            registry=registry,
        )
        self.stage_duration = Histogram(
            "ocr_stage_duration_seconds",
            "Engine time per stage: decode (image bytes to pixels), preprocess, recognize.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.queue_wait = Histogram(
            "ocr_queue_wait_seconds",
            "Time a request waited for a free engine worker.",
            buckets=QUEUE_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "ocr_in_flight_requests",
            "Requests inside the engine pool, queued or running.",
            registry=registry,
        )
        self.workers = Gauge(
            "ocr_engine_workers",
            "Engine workers (OCR_MODEL_WORKERS, or one per available core when 0).",
            registry=registry,
        )
        self.worker_stops = Counter(
            "ocr_engine_worker_stops",
            "Engine worker processes stopped and restarted, by reason: deadline (still busy "
            "past its page's deadline), memory (over OCR_MODEL_WORKER_MEMORY_BYTES), "
            "pod_memory (the model's processes together over its container's memory limit), "
            "lost (died or failed on its own).",
            ["reason"],
            registry=registry,
        )
        self.admission_refusals = Counter(
            "ocr_admission_refusals",
            "Requests refused at once by the engine pool, by reason: deadline (it could not "
            "finish in time behind the work queued), memory (over OCR_MODEL_MAX_QUEUE_BYTES of "
            "queued uploads), queue (over OCR_MODEL_MAX_QUEUE requests waiting).",
            ["reason"],
            registry=registry,
        )
        for reason in ADMISSION_REASONS:  # every reason exists at 0 from the start
            self.admission_refusals.labels(reason)
        self.admission_queue = Gauge(
            "ocr_admission_queue_seconds",
            "Seconds of work the engine pool holds, as the admission plans them: what the "
            "running requests have left plus the waiting ones' estimates with their margin "
            "(over the workers: the wait a request arriving now would have).",
            registry=registry,
        )
        self.admission_queue_bytes = Gauge(
            "ocr_admission_queue_bytes",
            "Bytes of uploads held by the engine pool (bounded by OCR_MODEL_MAX_QUEUE_BYTES).",
            registry=registry,
        )
        self.admission_per_megapixel = Gauge(
            "ocr_admission_estimate_seconds_per_megapixel",
            "The admission's learned cost of a request per megapixel (seconds).",
            registry=registry,
        )
        self.admission_deviation = Gauge(
            "ocr_admission_estimate_deviation_ratio",
            "How far off the admission's estimate tends to be: the mean relative deviation of "
            "requests' seconds from it; each is planned 2 deviations above its estimate.",
            registry=registry,
        )
        self.admission_per_request = Gauge(
            "ocr_admission_estimate_seconds_per_request",
            "The admission's learned fixed cost of a request, whatever its size (seconds).",
            registry=registry,
        )
        self.image_pixels = Histogram(
            "ocr_image_pixels", "Decoded image size.", buckets=PIXEL_BUCKETS, registry=registry
        )
        self.characters = Histogram(
            "ocr_result_characters",
            "Characters of recognised text per result.",
            buckets=COUNT_BUCKETS,
            registry=registry,
        )
        self.words = Histogram(
            "ocr_result_words",
            "Words recognised per result.",
            buckets=COUNT_BUCKETS,
            registry=registry,
        )
        self.confidence = Histogram(
            "ocr_result_confidence_percent",
            "Mean word confidence per result (0-100).",
            buckets=CONFIDENCE_BUCKETS,
            registry=registry,
        )
        self.empty_results = Counter(
            "ocr_empty_results", "Results with no recognised text.", registry=registry
        )
        self.cache_lookups = Counter(
            "ocr_result_cache_lookups",
            "Result cache lookups by outcome (hit or miss); none while the cache is off.",
            ["result"],
            registry=registry,
        )
        self.cache_entries = Gauge(
            "ocr_result_cache_entries", "Results held by the result cache.", registry=registry
        )

    def watch(self, admission: Admission) -> None:
        """Read the admission's queue and estimate at every scrape."""
        self.admission_queue.set_function(lambda: admission.queue_s)
        self.admission_queue_bytes.set_function(lambda: admission.queued_bytes)
        self.admission_per_megapixel.set_function(lambda: admission.coefficients()[1])
        self.admission_per_request.set_function(lambda: admission.coefficients()[0])
        self.admission_deviation.set_function(lambda: admission.coefficients()[2])

    def record_success(self, lang: str, result: OcrResult, *, cached: bool = False) -> None:
        """Account for one answered image (call inside the request's span for exemplars).

        A `cached` result took no engine time: its stage and queue timings are not observed.
        """
        if not cached:
            trace_exemplar = exemplar()
            timings = result.timings
            for stage, seconds in zip(
                STAGES, (timings.decode_s, timings.preprocess_s, timings.recognize_s), strict=True
            ):
                self.stage_duration.labels(stage).observe(seconds, trace_exemplar)
            self.queue_wait.observe(timings.queue_s, trace_exemplar)
        self.image_pixels.observe(result.width * result.height)
        text = result.text.strip()
        self.characters.observe(len(text))
        self.words.observe(len(result.words))
        self.confidence.observe(result.confidence)
        if not text:
            self.empty_results.inc()
        self.requests.labels("success", lang).inc()

    def record_error(self, lang: str) -> None:
        """Account for one refused request."""
        self.requests.labels("error", lang).inc()

    def record_refusal(self, reason: str) -> None:
        """Account for one request the engine pool refused at once, for `reason`."""
        self.admission_refusals.labels(reason).inc()
