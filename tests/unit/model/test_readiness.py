"""Readiness follows the model: the data plane's `ready()` and grpc.health.v1 report the model,
not the process, and a model that is not ready is refused, never reloaded on demand."""

from __future__ import annotations

import asyncio
from typing import Any

import kserve
import pytest
from grpc_health.v1 import health_pb2
from kserve.errors import ModelNotFound, ModelNotReady
from kserve.model_repository import ModelRepository

from model.server import INFERENCE_SERVICE, OcrDataPlane, ReadinessHealthServicer

pytestmark = pytest.mark.unit

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Model(kserve.Model):  # type: ignore[misc]  # kserve ships no type information
    def __init__(self) -> None:
        super().__init__("ocr-model")
        self.loads = 0

    def load(self) -> bool:
        self.loads += 1
        self.ready = True
        return True


def plane(*models: Model) -> OcrDataPlane:
    registry = ModelRepository()
    for model in models:
        registry.update(model)
    return OcrDataPlane(model_registry=registry)


def test_ready_while_every_model_is() -> None:
    model = Model()
    model.load()
    data_plane = plane(model)
    assert asyncio.run(data_plane.ready())
    model.ready = False
    assert not asyncio.run(data_plane.ready())
    assert not asyncio.run(plane().ready())  # no model at all


def test_a_model_that_is_not_ready_is_refused_not_reloaded() -> None:
    model = Model()
    data_plane = plane(model)
    with pytest.raises(ModelNotReady):
        asyncio.run(data_plane.get_model("ocr-model"))
    assert model.loads == 0
    assert not asyncio.run(data_plane.model_ready("ocr-model"))


def test_an_unknown_model_is_named_cut_short() -> None:
    data_plane = plane(Model())
    for call in (
        lambda: data_plane.get_model_from_registry("x" * 1_000_000),
        lambda: asyncio.run(data_plane.get_model("x" * 1_000_000)),
        lambda: asyncio.run(data_plane.model_ready("x" * 1_000_000)),
    ):
        with pytest.raises(ModelNotFound) as caught:
            call()
        assert len(str(caught.value)) < 150


def test_the_repository_extension_is_not_offered() -> None:
    assert plane().metadata()["extensions"] == []


class Context:
    async def abort(self, *args: Any) -> None:
        raise AssertionError(args)


def check(servicer: ReadinessHealthServicer, service: str) -> Any:
    request = health_pb2.HealthCheckRequest(service=service)
    return asyncio.run(servicer.Check(request, Context())).status


def test_health_follows_the_model_for_both_services() -> None:
    model = Model()
    servicer = ReadinessHealthServicer(plane(model))
    for service in ("", INFERENCE_SERVICE):
        assert check(servicer, service) == NOT_SERVING
    model.load()
    for service in ("", INFERENCE_SERVICE):
        assert check(servicer, service) == SERVING
    model.ready = False
    for service in ("", INFERENCE_SERVICE):
        assert check(servicer, service) == NOT_SERVING


def test_health_stays_not_serving_once_shutting_down() -> None:
    model = Model()
    model.load()
    servicer = ReadinessHealthServicer(plane(model))
    assert check(servicer, "") == SERVING
    asyncio.run(servicer.enter_graceful_shutdown())
    assert check(servicer, "") == NOT_SERVING


def test_follow_tells_watchers_without_a_check() -> None:
    model = Model()
    servicer = ReadinessHealthServicer(plane(model))

    async def run() -> list[Any]:
        seen = []
        following = asyncio.create_task(servicer.follow(interval_s=0.01))
        try:
            for ready in (True, False):
                model.ready = ready
                want = SERVING if ready else NOT_SERVING
                # What a Watch stream waits on.
                condition = servicer._server_watchers[INFERENCE_SERVICE]
                async with condition:
                    await condition.wait_for(
                        lambda want=want: servicer._server_status[INFERENCE_SERVICE] == want
                    )
                seen.append(servicer._server_status[""])
        finally:
            following.cancel()
        return seen

    assert asyncio.run(asyncio.wait_for(run(), 5)) == [SERVING, NOT_SERVING]
