"""``GET /metrics``: Prometheus exposition (OpenMetrics with exemplars when asked for)."""

from fastapi import APIRouter, Request, Response

from telemetry import metrics_response

router = APIRouter(tags=["observability"], redirect_slashes=False)


@router.get(
    "/metrics", summary="Prometheus metrics of this gateway process", include_in_schema=False
)
async def metrics(request: Request) -> Response:
    """Negotiates the format from ``Accept``: Prometheus asks for OpenMetrics to get exemplars."""
    body, content_type = metrics_response(
        request.app.state.metrics.registry, request.headers.get("accept")
    )
    return Response(content=body, media_type=content_type)
