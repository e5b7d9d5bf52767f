"""One document, two model replicas: the gateway's pages spread over both.

Two model server processes on their own ports and one gateway balancing over them with
``OCR_GATEWAY_MODEL_ADDRESS=ipv4:127.0.0.1:A,127.0.0.1:B`` and ``round_robin``: the same
mechanism as a ``dns:///`` target of the chart's headless Service, whose name resolves to
every model pod. Each model's own request counter shows where the pages were read.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway, ModelServer, start_gateway, start_model_server
from tests.support.documents_hostile import requests_total
from tests.support.model_documents import line_pages, scanned_pdf
from tests.support.text import cer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

TEXTS = tuple(f"Page {n} of the spread document" for n in range(1, 9))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModelServer, ...]]:
    """Two model servers of one engine worker each (the machine has two cores)."""
    log_dir = tmp_path_factory.mktemp("scaleout")
    started: list[ModelServer] = []
    try:
        for _ in range(2):
            started.append(
                start_model_server(log_dir, OCR_MODEL_WORKERS="1", OCR_MODEL_GRPC_HOST="127.0.0.1")
            )
        yield tuple(started)
    finally:
        for model in started:
            model.service.stop(signal.SIGINT)


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, models: tuple[ModelServer, ...]
) -> Iterator[Gateway]:
    addresses = ",".join(model.grpc_target for model in models)
    running = start_gateway(
        Path(tmp_path_factory.mktemp("scaleout-gateway")),
        models[0],
        OCR_GATEWAY_MODEL_ADDRESS=f"ipv4:{addresses}",
        OCR_GATEWAY_LB_POLICY="round_robin",
        OCR_GATEWAY_PAGE_CONCURRENCY="4",
    )
    yield running
    running.service.stop(signal.SIGINT)


def test_the_pages_of_one_document_land_on_both_models(
    models: tuple[ModelServer, ...], gateway: Gateway
) -> None:
    document = scanned_pdf(line_pages(*TEXTS), dpi=150)
    before = [requests_total(model.rest_url) for model in models]
    read_before = [requests_total(model.rest_url, "success") for model in models]

    response = httpx.post(
        f"{gateway.url}/gateway/ocr",
        files={"image_file": ("spread.pdf", document, "application/pdf")},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["page_count"] == len(TEXTS)
    for truth, page in zip(TEXTS, body["pages"], strict=True):
        assert cer(truth, page["text"]) <= 0.05

    calls = [requests_total(m.rest_url) - was for m, was in zip(models, before, strict=True)]
    read = [
        requests_total(m.rest_url, "success") - was
        for m, was in zip(models, read_before, strict=True)
    ]
    print(f"pages read per model: {read}")  # the figures of the run, with -s
    assert all(count > 0 for count in read), f"pages read per model: {read}"
    # One call a page, each read once, none refused or repeated on the other replica.
    assert sum(calls) == sum(read) == len(TEXTS)
