"""gRPC metadata the gateway and the model server exchange beside the v2 messages."""

from __future__ import annotations

from typing import Final

#: Trailing metadata of a RESOURCE_EXHAUSTED answer: milliseconds after which the model server
#: expects capacity for the refused request (a whole number, at least 1).
RETRY_AFTER_MS: Final = "retry-after-ms"

#: Trailing metadata of a `ModelMetadata` answer: the languages a request's `lang` may name
#: (installed, `osd` left out), sorted, comma-separated, e.g. `deu,eng`.
LANGUAGES: Final = "ocr-languages"
