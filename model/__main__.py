"""Entry point: `python -m model` serves the OCR model (REST :8080, gRPC :8081)."""

from __future__ import annotations

import os


def main() -> None:
    """Read settings once, build the model, load it and serve until SIGINT/SIGTERM."""
    # Tesseract's OpenMP threads would fight the worker pool for cores: one thread per image.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    from telemetry import configure_logging, configure_tracing

    from .server import OcrModelServer, create_model
    from .settings import ModelSettings

    settings = ModelSettings()
    # Before KServe is built: it then keeps this configuration instead of installing its own.
    configure_logging(settings.log_level, "model", tracebacks=settings.log_tracebacks)
    tracer_provider = configure_tracing("ocr-model")
    model = create_model(settings)
    model.load()
    OcrModelServer(settings, model.metrics, tracer_provider).start([model])


if __name__ == "__main__":
    main()
