"""``python -m gateway`` / ``ocr-gateway``: read settings once, configure logging, serve."""

import importlib.util
import logging
import signal
import sys
from typing import Any

import uvicorn

from common import SettingsLoadError, load_settings
from common.allocator import tune_allocator
from common.settings import EXIT_BAD_SETTINGS
from gateway.app import create_app
from gateway.settings import GatewaySettings
from telemetry import configure_logging, configure_tracing

logger = logging.getLogger("gateway")


def proxy_options(settings: GatewaySettings) -> dict[str, Any]:
    """uvicorn's proxy options, explicit: left alone, uvicorn believes ``X-Forwarded-For`` from
    loopback (or ``$FORWARDED_ALLOW_IPS``), so a local client could pick its address, and so its
    rate-limit bucket, with a header. Proxy headers are read only from ``trusted_proxies``."""
    return {
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
    }


def main() -> None:
    """Serve the gateway with uvicorn until SIGINT / SIGTERM (uvicorn shuts down gracefully)."""
    try:
        settings = load_settings(GatewaySettings)
    except SettingsLoadError as err:
        print(f"ocr-gateway: {err}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_SETTINGS) from None
    tune_allocator()  # before gRPC, uvicorn or telemetry start a thread
    # uvicorn's "trace" is below DEBUG; the stdlib logging of our modules stops at DEBUG.
    configure_logging(
        "DEBUG" if settings.log_level == "trace" else settings.log_level,
        "gateway",
        tracebacks=settings.log_tracebacks,
    )
    tracer_provider = configure_tracing("ocr-gateway")
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "auto"
    logger.info(
        "gateway on %s:%s -> model %r at %s; trusted proxies: %s",
        settings.host,
        settings.port,
        settings.model_name,
        settings.model_address,
        ",".join(settings.trusted_proxies) or "none",
    )
    # uvicorn drains on SIGTERM, then re-raises it; a finished drain is a clean exit (status 0).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    uvicorn.run(
        create_app(settings, tracer_provider),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # keep the JSON logging configured above
        loop=loop,
        **proxy_options(settings),
    )


if __name__ == "__main__":
    main()
