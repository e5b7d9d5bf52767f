"""Entry point: `python -m model` serves the OCR model (REST :8080, gRPC :8081)."""

from __future__ import annotations

import logging
import os


def main() -> None:
    """Read settings once, build the model, load it and serve until SIGINT/SIGTERM."""
    # Tesseract's OpenMP threads would fight the worker pool for cores: one thread per image.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    from .server import OcrModelServer, create_model
    from .settings import ModelSettings

    settings = ModelSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    model = create_model(settings)
    model.load()
    OcrModelServer(settings).start([model])


if __name__ == "__main__":
    main()
