"""Gateway metrics in-process: uploads through the real app to a fake gRPC model move each metric.

Values are read from the app's own registry (`app.state.metrics.registry`), the one `/metrics`
serves, so no Prometheus is needed.
"""

from typing import Any

import anyio
import grpc
import grpc.aio
import httpx
import pytest
from fastapi import FastAPI

from gateway.protocol import pb
from tests.unit.gateway.fakes import Failure, FakeModelServicer, png_bytes
from tests.unit.gateway.helpers import SettingsFactory, app_of

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(30)]

OCR = {"route": "/gateway/ocr", "method": "POST"}
INFER = {"method": "ModelInfer"}
PNG = png_bytes()

_Context = grpc.aio.ServicerContext[Any, Any]


async def upload(client: httpx.AsyncClient, data: bytes = PNG) -> httpx.Response:
    return await client.post("/gateway/ocr", files={"image_file": ("scan.bin", data)})


def value(app: FastAPI, name: str, **labels: str) -> float:
    """A sample that must exist."""
    sample = app.state.metrics.registry.get_sample_value(name, labels)
    assert sample is not None, f"{name}{labels} is missing"
    assert isinstance(sample, float)
    return sample


def absent(app: FastAPI, name: str, **labels: str) -> bool:
    return app.state.metrics.registry.get_sample_value(name, labels) is None


async def test_a_good_and_a_failed_upload_move_every_metric(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer(failures=[Failure(grpc.StatusCode.INTERNAL, "model broke")])
    async with app_of(servicer, make_settings) as (app, client):
        assert (await upload(client)).status_code == 502
        assert (await upload(client)).status_code == 200
        exposed = (await client.get("/metrics")).text

    assert value(app, "ocr_gateway_requests_total", **OCR, status="502") == 1
    assert value(app, "ocr_gateway_requests_total", **OCR, status="200") == 1
    assert value(app, "ocr_gateway_request_duration_seconds_count", **OCR) == 2
    assert value(app, "ocr_gateway_request_duration_seconds_sum", **OCR) > 0
    assert value(app, "ocr_gateway_request_duration_seconds_bucket", **OCR, le="+Inf") == 2
    assert value(app, "ocr_gateway_upload_bytes_count") == 2
    assert value(app, "ocr_gateway_upload_bytes_sum") == 2 * len(PNG)
    assert value(app, "ocr_gateway_requests_in_flight") == 0
    # Every ModelInfer is timed, and the failed one is counted by its gRPC status.
    assert value(app, "ocr_gateway_upstream_duration_seconds_count", **INFER) == 2
    assert value(app, "ocr_gateway_upstream_duration_seconds_sum", **INFER) > 0
    assert value(app, "ocr_gateway_upstream_errors_total", **INFER, grpc_code="INTERNAL") == 1
    assert absent(app, "ocr_gateway_upstream_errors_total", **INFER, grpc_code="OK")
    # /metrics serves this very registry.
    assert (
        'ocr_gateway_requests_total{method="POST",route="/gateway/ocr",status="502"} 1.0' in exposed
    )


class CalledServicer(FakeModelServicer):
    """Sets `called` when a ModelInfer call reaches it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.called = anyio.Event()

    async def ModelInfer(self, request: pb.ModelInferRequest, context: _Context) -> Any:
        self.called.set()
        return await super().ModelInfer(request, context)


async def test_in_flight_counts_a_request_while_it_waits_for_the_model(
    make_settings: SettingsFactory,
) -> None:
    servicer = CalledServicer(hang=True)  # answers only when the deadline ends the call
    responses: list[httpx.Response] = []
    async with app_of(servicer, make_settings, request_timeout_s=1.0) as (app, client):

        async def send() -> None:
            responses.append(await upload(client))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(send)
            with anyio.fail_after(5):
                await servicer.called.wait()
            assert value(app, "ocr_gateway_requests_in_flight") == 1
        (response,) = responses

    assert response.status_code == 504
    assert value(app, "ocr_gateway_requests_in_flight") == 0
    assert value(app, "ocr_gateway_requests_total", **OCR, status="504") == 1
    assert value(app, "ocr_gateway_upstream_duration_seconds_count", **INFER) == 1
    code = "DEADLINE_EXCEEDED"
    assert value(app, "ocr_gateway_upstream_errors_total", **INFER, grpc_code=code) == 1


async def test_each_retried_attempt_is_timed_and_counted(make_settings: SettingsFactory) -> None:
    unavailable = Failure(grpc.StatusCode.UNAVAILABLE, "starting")
    servicer = FakeModelServicer(failures=[unavailable, unavailable])
    async with app_of(servicer, make_settings, retry_max_attempts=3) as (app, client):
        assert (await upload(client)).status_code == 200

    assert value(app, "ocr_gateway_requests_total", **OCR, status="200") == 1
    assert value(app, "ocr_gateway_upstream_duration_seconds_count", **INFER) == 3
    assert value(app, "ocr_gateway_upstream_errors_total", **INFER, grpc_code="UNAVAILABLE") == 2


async def test_a_refused_upload_never_reaches_the_model(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer()
    async with app_of(servicer, make_settings) as (app, client):
        assert (await upload(client, b"not an image at all")).status_code == 415

    assert value(app, "ocr_gateway_requests_total", **OCR, status="415") == 1
    assert value(app, "ocr_gateway_upload_bytes_sum") == len(b"not an image at all")
    assert absent(app, "ocr_gateway_upstream_duration_seconds_count", **INFER)
    assert not servicer.requests


async def test_probes_and_scrapes_are_not_counted(make_settings: SettingsFactory) -> None:
    async with app_of(FakeModelServicer(), make_settings) as (app, client):
        for path in ("/healthz", "/health", "/readyz", "/metrics"):
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/no/such/page")).status_code == 404

    counted = {
        (sample.labels["route"], sample.labels["status"])
        for metric in app.state.metrics.requests.collect()
        for sample in metric.samples
        if sample.name == "ocr_gateway_requests_total"
    }
    # Unknown paths share one label value, so a scanner cannot blow up the series count.
    assert counted == {("unmatched", "404")}
    assert value(app, "ocr_gateway_requests_in_flight") == 0
