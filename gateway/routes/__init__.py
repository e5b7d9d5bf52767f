"""HTTP routers of the gateway, one module per concern."""

from gateway.routes.docs import router as docs_router
from gateway.routes.health import router as health_router
from gateway.routes.languages import router as languages_router
from gateway.routes.metrics import router as metrics_router
from gateway.routes.ocr import router as ocr_router
from gateway.routes.ui import router as ui_router

__all__ = [
    "docs_router",
    "health_router",
    "languages_router",
    "metrics_router",
    "ocr_router",
    "ui_router",
]
