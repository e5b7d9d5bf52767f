"""The output formats `ocr --format` writes: their command-line names, the gateway's `format`
field each asks for, and the file extension it is saved with (both from :mod:`contract`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from contract.output_formats import (
    ALTO_XML,
    HOCR_DOCUMENT,
    JSON,
    SEARCHABLE_PDF,
    TEXT_PLAIN,
    TSV_TABLE,
    OutputFormat,
)


@dataclass(frozen=True, slots=True)
class CliFormat:
    """One `--format` choice: its name on the command line and the gateway format behind it."""

    name: str
    gateway: OutputFormat

    @property
    def api_name(self) -> str:
        """The gateway's `format` field value (`text` for `txt`)."""
        return self.gateway.name

    @property
    def extension(self) -> str:
        """The output file's extension, without the dot (`alto.xml` for ALTO)."""
        return self.gateway.extension

    @property
    def binary(self) -> bool:
        """Whether the answer is binary rather than text: the searchable PDF."""
        return self.gateway is SEARCHABLE_PDF


#: Every format, in the order `--help` lists them; `txt` is the default.
FORMATS: Final[tuple[CliFormat, ...]] = (
    CliFormat("txt", TEXT_PLAIN),
    CliFormat("json", JSON),
    CliFormat("hocr", HOCR_DOCUMENT),
    CliFormat("tsv", TSV_TABLE),
    CliFormat("alto", ALTO_XML),
    CliFormat("pdf", SEARCHABLE_PDF),
)
FORMATS_BY_NAME: Final[Mapping[str, CliFormat]] = MappingProxyType({f.name: f for f in FORMATS})
DEFAULT_FORMAT: Final = FORMATS_BY_NAME["txt"]


def parse_formats(value: str) -> tuple[CliFormat, ...]:
    """`txt,json` → those formats, each once, in the order given; ValueError naming a bad one."""
    chosen: list[CliFormat] = []
    for item in value.split(","):
        name = item.strip().lower()
        if name == "text":  # the gateway's name for it, accepted too
            name = "txt"
        found = FORMATS_BY_NAME.get(name)
        if found is None:
            choices = ", ".join(FORMATS_BY_NAME)
            raise ValueError(f"unknown format {item.strip()!r}; choose from {choices}")
        if found not in chosen:
            chosen.append(found)
    return tuple(chosen)
