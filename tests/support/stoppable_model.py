"""Test only: `python -m tests.support.stoppable_model` serves the model like `python -m model`,
and SIGUSR1 calls `model.stop()` (as KServe does on unload), so a test can watch readiness
follow the model. Production has no such path.
"""

from __future__ import annotations

import signal
from types import FrameType

from common import load_settings
from model.assembly import create_model
from model.server import OcrModelServer
from model.settings import ModelSettings
from telemetry import configure_logging


def main() -> None:
    settings = load_settings(ModelSettings)
    configure_logging(settings.log_level, "model")
    model = create_model(settings)
    model.load()

    def stop_model(signum: int, frame: FrameType | None) -> None:
        model.stop()

    signal.signal(signal.SIGUSR1, stop_model)
    OcrModelServer(settings, model.metrics, intake=model.intake).start([model])


if __name__ == "__main__":
    main()
