"""The facts of one page as read: the `page` output of the model and each entry of the
gateway's `pages`. Boxes are in the coordinates of the upright page that was read."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .words import Word


class PageTimings(BaseModel):
    """Engine seconds spent on the page, by stage."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="ignore")

    queue_s: float = Field(description="Waiting for a free engine worker.")
    decode_s: float = Field(description="Bytes to pixels.")
    preprocess_s: float = Field(description="Orientation, deskew and mode conversion.")
    recognize_s: float = Field(description="Tesseract's layout analysis and recognition.")


class PageFacts(BaseModel):
    """One page as it was read.

    To map a box back to the upload: undo `skew` (rotate by `-skew` degrees about the centre of
    the `width` x `height` page, then take away the white margin straightening added: half the
    growth in width and height on each side), then undo `rotation` (turn the page `rotation`
    degrees counter-clockwise).
    """

    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="ignore")

    page: int = Field(description="Page number, from 1: the page of the file that was read.")
    page_count: int = Field(
        default=1,
        description="Pages in the file the model was sent (PDF pages, TIFF or GIF frames); 1 "
        "for a single image.",
    )
    source: Literal["ocr", "pdf"] = Field(
        default="ocr",
        description="Where the text comes from: `ocr`, recognised by Tesseract; `pdf`, taken "
        "from the PDF page's own text.",
    )
    width: int = Field(description="Width in pixels of the upright page that was read.")
    height: int = Field(description="Height in pixels of the upright page that was read.")
    dpi: float | None = Field(
        description="Resolution the file declares, if any; for a PDF page, the dpi it was "
        "rendered at."
    )
    rotation: int = Field(
        description="Clockwise turn applied to set the page upright: 0/90/180/270."
    )
    rotation_confidence: float | None = Field(
        description="Tesseract OSD's orientation confidence, when `rotate=auto` ran."
    )
    skew: float = Field(description="Degrees of deskew applied (counter-clockwise positive).")
    text: str = Field(description="Text of the page.")
    confidence: float = Field(description="Mean word confidence of the page, 0-100.")
    words: list[Word] = Field(description="The page's words with their boxes.")
    timings: PageTimings
