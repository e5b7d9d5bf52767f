"""InferenceClient against real in-process gRPC servers: retries, deadlines, readiness."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from gateway.client import MESSAGE_HEADROOM_BYTES, InferenceClient, channel_options
from gateway.errors import UpstreamError
from tests.unit.gateway.fakes import (
    MODEL_NAME,
    SAMPLE_TEXT,
    Failure,
    FakeModelServicer,
    png_bytes,
    serve_fake_model,
)
from tests.unit.gateway.helpers import CLOSED_ADDRESS, SettingsFactory

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(30)]

UNAVAILABLE = Failure(grpc.StatusCode.UNAVAILABLE, "model is starting")


@asynccontextmanager
async def client_of(
    servicer: FakeModelServicer, make_settings: SettingsFactory, **overrides: Any
) -> AsyncIterator[InferenceClient]:
    """A started client of a fake model server serving ``servicer``."""
    async with (
        serve_fake_model(servicer) as address,
        InferenceClient(make_settings(model_address=address, **overrides)) as client,
    ):
        yield client


async def test_unavailable_is_retried_until_success(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer(failures=[UNAVAILABLE, UNAVAILABLE])
    async with serve_fake_model(servicer) as address:
        settings = make_settings(model_address=address, retry_max_attempts=3)
        async with InferenceClient(settings) as client:
            result = await client.infer(png_bytes(), request_id="r1", lang="eng")
    assert result.text == SAMPLE_TEXT
    assert len(servicer.requests) == 3
    # Every attempt sends the same request.
    assert all(r == servicer.requests[0] for r in servicer.requests)


async def test_retries_stop_at_max_attempts(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer(failures=[UNAVAILABLE] * 5)
    async with serve_fake_model(servicer) as address:
        settings = make_settings(model_address=address, retry_max_attempts=2)
        async with InferenceClient(settings) as client:
            with pytest.raises(UpstreamError) as caught:
                await client.infer(png_bytes(), request_id="r1", lang="eng")
    assert (caught.value.status, caught.value.code) == (503, "model_unavailable")
    assert len(servicer.requests) == 2


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (
            Failure(grpc.StatusCode.INVALID_ARGUMENT, "unknown language 'xx'"),
            422,
            "invalid_argument",
        ),
        (Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full"), 429, "model_overloaded"),
        (Failure(grpc.StatusCode.NOT_FOUND, "no model"), 502, "model_not_found"),
        (Failure(grpc.StatusCode.INTERNAL, "boom"), 502, "upstream_error"),
    ],
)
async def test_other_failures_are_not_retried(
    make_settings: SettingsFactory, failure: Failure, status: int, code: str
) -> None:
    servicer = FakeModelServicer(failures=[failure, failure, failure])
    async with client_of(servicer, make_settings) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.infer(png_bytes(), request_id="r1", lang="xx")
    assert (caught.value.status, caught.value.code) == (status, code)
    assert len(servicer.requests) == 1


async def test_invalid_argument_details_reach_the_message(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer(failures=[Failure(grpc.StatusCode.INVALID_ARGUMENT, "bad psm")])
    async with client_of(servicer, make_settings) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.infer(png_bytes(), request_id="r1", lang="eng", psm=13)
    assert caught.value.message == "bad psm"


async def test_slow_model_ends_at_the_deadline(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer(hang=True)
    async with client_of(servicer, make_settings) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamError) as caught:
            await client.infer(png_bytes(), request_id="r1", lang="eng", timeout_s=0.3)
        elapsed = time.monotonic() - started
    assert (caught.value.status, caught.value.code) == (504, "model_timeout")
    assert 0.25 <= elapsed < 1.5
    assert len(servicer.requests) == 1


async def test_backoff_never_sleeps_past_the_deadline(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer(failures=[UNAVAILABLE] * 5)
    slow_retries = {
        "retry_max_attempts": 5,
        "retry_initial_backoff_s": 10.0,
        "retry_max_backoff_s": 10.0,
    }
    async with client_of(servicer, make_settings, **slow_retries) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamError) as caught:
            await client.infer(png_bytes(), request_id="r1", lang="eng", timeout_s=0.5)
        elapsed = time.monotonic() - started
    # A backoff of >= 5 s cannot fit in 0.5 s: the client answers at once, without sleeping.
    assert caught.value.code == "model_unavailable"
    assert elapsed < 0.5
    assert len(servicer.requests) == 1


async def test_unreachable_model_is_unavailable_within_the_deadline(
    make_settings: SettingsFactory,
) -> None:
    async with InferenceClient(make_settings(model_address=CLOSED_ADDRESS)) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamError) as caught:
            await client.infer(png_bytes(), request_id="r1", lang="eng", timeout_s=1.0)
        assert time.monotonic() - started < 1.5
        assert caught.value.code == "model_unavailable"
        assert await client.server_ready() is False
        assert await client.model_ready() is False


async def test_readiness_comes_from_the_model_server(make_settings: SettingsFactory) -> None:
    async with client_of(FakeModelServicer(ready=True), make_settings) as client:
        assert await client.server_ready() is True
        assert await client.model_ready() is True
    other_model = {"model_name": "other-model"}
    async with client_of(FakeModelServicer(ready=True), make_settings, **other_model) as client:
        assert await client.server_ready() is True
        assert await client.model_ready() is False
    async with client_of(FakeModelServicer(ready=False), make_settings) as client:
        assert await client.server_ready() is False
        assert await client.model_ready() is False


async def test_request_reaches_the_model_as_contracted(make_settings: SettingsFactory) -> None:
    image = png_bytes()
    servicer = FakeModelServicer()
    async with client_of(servicer, make_settings) as client:
        await client.infer(image, request_id="req-9", lang="eng+deu", psm=4)
    (request,) = servicer.requests
    assert (request.model_name, request.id) == (MODEL_NAME, "req-9")
    assert request.raw_input_contents[0][4:] == image
    assert request.parameters["lang"].string_param == "eng+deu"
    assert request.parameters["psm"].int64_param == 4


async def test_client_must_be_started_once(make_settings: SettingsFactory) -> None:
    client = InferenceClient(make_settings())
    with pytest.raises(RuntimeError):
        await client.infer(b"x", request_id="r", lang="eng")
    await client.start()
    try:
        with pytest.raises(RuntimeError):
            await client.start()
    finally:
        await client.close()
    await client.close()  # closing twice is harmless


def test_message_limits_follow_the_upload_limit(make_settings: SettingsFactory) -> None:
    options = dict(channel_options(make_settings(max_upload_bytes=1000)))
    assert options["grpc.max_send_message_length"] == 1000 + MESSAGE_HEADROOM_BYTES
    assert options["grpc.max_receive_message_length"] == 1000 + MESSAGE_HEADROOM_BYTES
    assert int(options["grpc.keepalive_time_ms"]) > 0


@pytest.mark.parametrize(("policy", "spread"), [("round_robin", True), ("pick_first", False)])
async def test_lb_policy_spreads_calls_over_every_resolved_address(
    make_settings: SettingsFactory, policy: str, spread: bool
) -> None:
    """What a headless Service gives the gateway: one name, many pod addresses."""
    first, second = FakeModelServicer(), FakeModelServicer()
    async with serve_fake_model(first) as a, serve_fake_model(second) as b:
        target = "ipv4:" + ",".join((a, b))
        async with InferenceClient(make_settings(model_address=target, lb_policy=policy)) as client:
            # Subchannels connect in the background: warm up (bounded) before counting.
            for i in range(50):
                await client.infer(png_bytes(), request_id=f"warm{i}", lang="eng")
                if first.requests and second.requests:
                    break
            first.requests.clear()
            second.requests.clear()
            for i in range(10):
                await client.infer(png_bytes(), request_id=f"r{i}", lang="eng")
    counts = sorted((len(first.requests), len(second.requests)))
    assert counts == ([5, 5] if spread else [0, 10])
