"""HTTP routers of the gateway, one module per concern."""

from gateway.routes.docs import router as docs_router
from gateway.routes.health import router as health_router
from gateway.routes.metrics import router as metrics_router
from gateway.routes.ocr import router as ocr_router

__all__ = ["docs_router", "health_router", "metrics_router", "ocr_router"]
