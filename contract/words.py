"""One recognised word as the `words` output carries it (and the gateway answers it)."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field


class Word(BaseModel):
    """One recognised word and its box, in pixels of the upright page that was read (the
    upload itself unless `rotate=auto` or `deskew` turned it: see `contract.page.PageFacts`)."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="ignore")

    text: str = Field(description="The word as recognised.")
    confidence: float = Field(description="Recognition confidence, 0-100.")
    left: int = Field(description="X of the box's left edge.")
    top: int = Field(description="Y of the box's top edge.")
    width: int = Field(description="Box width.")
    height: int = Field(description="Box height.")
    page: int = Field(default=1, description="Page of the document the word is on, from 1.")
    block: int = Field(description="Index of the text block holding the word, from 1.")
    paragraph: int = Field(description="Index of the paragraph within its block, from 1.")
    line: int = Field(description="Index of the line within its block, from 1.")


#: The keys of each word object, in the order they are written.
WORD_FIELDS: Final[tuple[str, ...]] = tuple(Word.model_fields)
