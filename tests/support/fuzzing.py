"""How long fuzz tests run: bounded in `make test`, long with OCR_FUZZ_EXAMPLES (make fuzz)."""

from __future__ import annotations

import os


def examples(default: int) -> int:
    """Examples per fuzz test: `default`, or OCR_FUZZ_EXAMPLES when set (e.g. by make fuzz)."""
    return int(os.environ.get("OCR_FUZZ_EXAMPLES", default))
