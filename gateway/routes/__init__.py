"""HTTP routers of the gateway, one module per concern."""

from gateway.routes.health import router as health_router
from gateway.routes.metrics import router as metrics_router
from gateway.routes.ocr import router as ocr_router

__all__ = ["health_router", "metrics_router", "ocr_router"]
