"""Request parameters of the OCR model (v2 `parameters`) and their limits.

The gateway validates its form fields with these limits and the engine checks options against
them, so a value the gateway lets through is never refused by the model for being out of range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class StringParameter:
    """A string parameter (v2 `string_param`) matching `pattern`, at most `max_length` long."""

    name: str
    description: str
    pattern: str
    max_length: int
    default: str


@dataclass(frozen=True, slots=True)
class IntParameter:
    """An integer parameter (v2 `int64_param`) within `minimum..maximum`."""

    name: str
    description: str
    minimum: int
    maximum: int

    @property
    def values(self) -> range:
        """The accepted values."""
        return range(self.minimum, self.maximum + 1)


#: Installed model names joined by "+": at most 8 codes of at most 32 characters each.
LANG_PATTERN: Final = r"^[A-Za-z0-9_]{1,32}(\+[A-Za-z0-9_]{1,32}){0,7}$"

LANG: Final = StringParameter(
    "lang",
    "Tesseract language(s), installed codes joined by '+', e.g. `eng` or `eng+deu`.",
    LANG_PATTERN,
    max_length=8 * 33 - 1,
    default="eng",
)
PSM: Final = IntParameter(
    "psm", "Tesseract page-segmentation mode (`tesseract --help-psm`).", minimum=0, maximum=13
)
OEM: Final = IntParameter(
    "oem", "Tesseract engine mode: 0 legacy, 1 LSTM, 2 both, 3 default.", minimum=0, maximum=3
)

PARAMETERS: Final = (LANG, PSM, OEM)
