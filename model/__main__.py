"""Entry point: `python -m model` serves the OCR model (REST :8080, gRPC :8081)."""

from __future__ import annotations

import sys


def main() -> None:
    """Read settings once, build the model, load it and serve until SIGINT/SIGTERM."""
    from common import SettingsLoadError, load_settings
    from common.allocator import tune_allocator
    from common.settings import EXIT_BAD_SETTINGS

    from .settings import ModelSettings

    try:
        settings = load_settings(ModelSettings)
    except SettingsLoadError as err:
        print(f"ocr-model: {err}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_SETTINGS) from None

    tune_allocator()  # before gRPC, KServe or telemetry start a thread
    # KServe is imported only now: a bad setting is answered before its import-time setup.
    from telemetry import configure_logging, configure_tracing

    from .assembly import create_model
    from .server import OcrModelServer

    # Before KServe is built: it then keeps this configuration instead of installing its own.
    configure_logging(settings.log_level, "model", tracebacks=settings.log_tracebacks)
    tracer_provider = configure_tracing("ocr-model")
    model = create_model(settings)
    model.load()
    OcrModelServer(settings, model.metrics, tracer_provider, model.intake).start([model])


if __name__ == "__main__":
    main()
