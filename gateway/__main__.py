"""``python -m gateway`` / ``ocr-gateway``: read settings once, configure logging, serve."""

import importlib.util
import logging
import sys

import uvicorn
from pydantic import ValidationError

from gateway.app import create_app
from gateway.settings import GatewaySettings

logger = logging.getLogger("gateway")


def main() -> None:
    """Serve the gateway with uvicorn until SIGINT / SIGTERM (uvicorn shuts down gracefully)."""
    try:
        settings = GatewaySettings()
    except ValidationError as err:
        print(f"invalid gateway settings (OCR_GATEWAY_*):\n{err}", file=sys.stderr)
        raise SystemExit(2) from None
    # uvicorn's "trace" is below DEBUG; the stdlib logging of our modules stops at DEBUG.
    level = "DEBUG" if settings.log_level == "trace" else settings.log_level.upper()
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "auto"
    logger.info(
        "gateway on %s:%s -> model %r at %s",
        settings.host,
        settings.port,
        settings.model_name,
        settings.model_address,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        loop=loop,
    )


if __name__ == "__main__":
    main()
