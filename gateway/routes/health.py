"""Liveness (``/healthz``, alias ``/health``) and readiness (``/readyz``) probes."""

import asyncio

from fastapi import APIRouter

from gateway.deps import InferenceClientDep
from gateway.errors import NotReadyError
from gateway.routes.errors import error_responses
from gateway.schemas import LiveStatus, ReadyStatus

router = APIRouter(tags=["health"], redirect_slashes=False)


@router.get("/health", deprecated=True, summary="Liveness (alias of /healthz)")
@router.get("/healthz", summary="Liveness: the process serves HTTP")
async def live() -> LiveStatus:
    """Answers without calling the model server, so a slow model never restarts the gateway."""
    return LiveStatus()


@router.get(
    "/readyz",
    summary="Readiness: the model server and model are ready",
    responses=error_responses(NotReadyError),
)
async def ready(client: InferenceClientDep) -> ReadyStatus:
    """Asks the model server for ServerReady and ModelReady; 503 ``not_ready`` unless both."""
    server_ready, model_ready = await asyncio.gather(client.server_ready(), client.model_ready())
    if not (server_ready and model_ready):
        raise NotReadyError()
    return ReadyStatus()
