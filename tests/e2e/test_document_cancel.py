"""A client that leaves stops its document: once the NDJSON stream's connection is closed, the
gateway cancels the page calls still queued and sends no further page, as the model's own
request counter shows.

One engine worker and two pages at a time: the model reads one page while the next waits,
and each page (a full A4 scan, rendered at 300 dpi) takes well over 0.3 s, so a gateway that
went on reading would move the counter within any two quiet seconds.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Platform, start_platform
from tests.support.documents_hostile import (
    model_samples,
    repeated_page_pdf,
    requests_total,
    stable_value,
)
from tests.support.model_documents import vector_pdf

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PAGES = 30
CONCURRENCY = 2
#: Seconds the model's counter must stay still to count as settled: several pages' time.
QUIET_S = 2.0
#: Shortest mean engine time a page must take for QUIET_S to prove anything.
SLOW_PAGE_S = 0.3


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start_platform(
        tmp_path_factory.mktemp("cancel"),
        {"OCR_MODEL_WORKERS": "1", "OCR_GATEWAY_PAGE_CONCURRENCY": str(CONCURRENCY)},
    )
    yield running
    running.service.stop(signal.SIGINT)


def engine_seconds(model: str) -> tuple[float, float]:
    """(pages, seconds) the model's engine has spent reading pages, from its stage histogram."""
    pages = model_samples(model, "ocr_stage_duration_seconds_count")
    seconds = model_samples(model, "ocr_stage_duration_seconds_sum")
    return pages.get((("stage", "recognize"),), 0.0), sum(seconds.values())


def test_closing_the_stream_stops_the_document(platform: Platform) -> None:
    model = f"http://127.0.0.1:{platform.model_http_port}"
    document = repeated_page_pdf(PAGES)
    before = requests_total(model)
    pages_before, seconds_before = engine_seconds(model)

    started = time.monotonic()
    with (
        httpx.Client(timeout=60) as client,
        client.stream(
            "POST",
            f"{platform.url}/gateway/ocr",
            files={"image_file": ("long.pdf", document, "application/pdf")},
            headers={"Accept": "application/x-ndjson"},
        ) as response,
    ):
        assert response.status_code == 200
        first = next(response.iter_lines())
        first_line_s = time.monotonic() - started
    # Leaving both blocks closed the connection with the answer half read.
    assert '"page"' in first

    settled = stable_value(lambda: requests_total(model), quiet_s=QUIET_S, timeout_s=60)
    read = settled - before
    pages, seconds = engine_seconds(model)
    mean_page_s = (seconds - seconds_before) / max(1.0, pages - pages_before)
    print(  # the figures of the run, with -s
        f"first line after {first_line_s:.2f}s; {read:.0f} of {PAGES} pages read; "
        f"{mean_page_s:.2f}s a page"
    )
    assert mean_page_s >= SLOW_PAGE_S, "pages too fast: QUIET_S would not show more reading"
    # The first page and those already running or queued when the client left (seen: the one
    # the worker was reading finishes, the queued ones are dropped); 2 more for the race of a
    # page ending as the disconnect is noticed. Reading on would reach 30.
    assert 1 <= read <= 1 + CONCURRENCY + 2, f"{read:.0f} of {PAGES} pages read in all"
    in_flight = model_samples(model, "ocr_in_flight_requests")
    assert sum(in_flight.values()) == 0

    # The service goes on serving.
    after = httpx.post(
        f"{platform.url}/gateway/ocr",
        files={"image_file": ("next.pdf", vector_pdf([["Next client please"]]))},
        timeout=60,
    )
    assert after.status_code == 200, after.text
    assert "Next client" in after.json()["text"]
