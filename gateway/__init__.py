"""OCR gateway: the public FastAPI app in front of the KServe v2 gRPC model server.

``create_app`` is imported lazily so that importing a light submodule (``gateway.protocol``,
``gateway.codec``) does not pull in FastAPI.
"""

from typing import TYPE_CHECKING, Any

from gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from gateway.app import create_app

__all__ = ["GatewaySettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from gateway.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
