"""FastAPI dependencies, as ``Annotated`` aliases so route signatures read as types.

Every dependency is ``async def``: FastAPI runs a plain ``def`` in its threadpool, and those
hops cost about a quarter of the gateway's CPU per request (py-spy, see README Performance).
"""

from typing import Annotated, TypeVar

from fastapi import Depends, Request

from gateway.client import InferenceClient
from gateway.context import elapsed_ms, request_id_of
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

_T = TypeVar("_T")


def _app_state(request: Request, name: str, kind: type[_T], hint: str) -> _T:
    """`app.state.<name>`, checked to be a `kind`; a clear error names what was missed."""
    value = getattr(request.app.state, name, None)
    if not isinstance(value, kind):
        raise RuntimeError(f"app.state.{name} is not set; {hint}")
    return value


async def get_settings(request: Request) -> GatewaySettings:
    """The settings the app was created with."""
    return _app_state(request, "settings", GatewaySettings, "build the app with create_app()")


async def get_inference_client(request: Request) -> InferenceClient:
    """The model client opened by the app's lifespan."""
    return _app_state(request, "inference_client", InferenceClient, "is the lifespan running?")


async def get_metrics(request: Request) -> GatewayMetrics:
    """The app's Prometheus metrics."""
    return _app_state(request, "metrics", GatewayMetrics, "build the app with create_app()")


async def get_request_id(request: Request) -> str:
    """This request's id (see :mod:`gateway.context`)."""
    return request_id_of(request.scope)


class Stopwatch:
    """Reads the time elapsed since the request arrived."""

    def __init__(self, request: Request) -> None:
        self._scope = request.scope

    def elapsed_ms(self) -> float:
        """Milliseconds since the request arrived."""
        return elapsed_ms(self._scope)


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
InferenceClientDep = Annotated[InferenceClient, Depends(get_inference_client)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
MetricsDep = Annotated[GatewayMetrics, Depends(get_metrics)]


async def get_stopwatch(request: Request) -> Stopwatch:
    """Reads the time since this request arrived."""
    return Stopwatch(request)


StopwatchDep = Annotated[Stopwatch, Depends(get_stopwatch)]
