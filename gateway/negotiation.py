"""Which answer format a request asks for, what the model must send for it, and its file name.

The formats, their media types and extensions are part of the contract
(:mod:`contract.output_formats`): the form field ``format`` names one; without it the ``Accept``
header picks one by media type (``*/*`` or no header: JSON). A document format (hOCR, TSV, ALTO,
PDF) is the model output of that name, served as a download named after the upload.
"""

import re
from pathlib import PurePosixPath
from typing import Final, Literal, get_args
from urllib.parse import quote

import contract
from contract import OutputFormat
from gateway.errors import NotAcceptableError

#: The `format` field's values, spelled out for the type checker and the OpenAPI enum; the
#: import-time check below holds them to `contract.OUTPUT_FORMATS`.
FormatName = Literal["json", "text", "hocr", "tsv", "alto", "pdf", "ndjson"]
#: The `rotate` field's values (`contract.ROTATE.choices`).
RotateChoice = Literal["none", "auto"]
#: The `pdf_text` field's values (`contract.PDF_TEXT.choices`).
PdfTextChoice = Literal["ocr", "keep"]

if get_args(FormatName) != tuple(f.name for f in contract.OUTPUT_FORMATS):
    raise RuntimeError("gateway.negotiation.FormatName differs from contract.OUTPUT_FORMATS")
if get_args(RotateChoice) != contract.ROTATE.choices:
    raise RuntimeError("gateway.negotiation.RotateChoice differs from contract.ROTATE.choices")
if get_args(PdfTextChoice) != contract.PDF_TEXT.choices:
    raise RuntimeError("gateway.negotiation.PdfTextChoice differs from contract.PDF_TEXT.choices")

JSON: Final = contract.OUTPUT_FORMATS_BY_NAME["json"]
TEXT: Final = contract.OUTPUT_FORMATS_BY_NAME["text"]
NDJSON: Final = contract.OUTPUT_FORMATS_BY_NAME["ndjson"]

#: What the JSON answer is built from: the default outputs and the page facts.
JSON_OUTPUTS: Final[tuple[str, ...]] = (
    contract.TEXT.name,
    contract.CONFIDENCE.name,
    contract.WORDS.name,
    contract.PAGE.name,
)
#: The media types an `Accept` header may name, without parameters, in the contract's order.
ACCEPTABLE_MEDIA_TYPES: Final[tuple[str, ...]] = tuple(
    f.media_type.split(";", 1)[0].strip() for f in contract.OUTPUT_FORMATS
)
#: The stem of the download's name when the upload's name gives none.
DEFAULT_STEM: Final = "page"
_MAX_STEM_CHARS: Final = 100
_PATH_SEPARATORS: Final = re.compile(r"[/\\]")
# Most media ranges of one Accept header looked at; real clients send a handful.
_MAX_ACCEPT_RANGES: Final = 64


def model_outputs(output_format: OutputFormat) -> tuple[str, ...]:
    """The model outputs an answer in ``output_format`` is made of: no more than it needs."""
    if output_format.output is not None:
        return (output_format.output.name,)
    if output_format is TEXT:
        return (contract.TEXT.name,)
    return JSON_OUTPUTS


def choose_format(format_name: str | None, accept: str | None) -> OutputFormat:
    """The format of the answer: the ``format`` field's, else the best one ``accept`` allows.

    No ``Accept`` header (or an empty one) means JSON; one that allows none of the formats
    raises :class:`NotAcceptableError`.
    """
    if format_name is not None:
        return contract.OUTPUT_FORMATS_BY_NAME[format_name]
    if accept is None or not accept.strip():
        return JSON
    chosen = best_match(accept)
    if chosen is None:
        raise NotAcceptableError(ACCEPTABLE_MEDIA_TYPES)
    return chosen


def best_match(accept: str) -> OutputFormat | None:
    """The format ``accept`` prefers (RFC 9110 section 12.5.1), or None if it allows none.

    Each format gets the quality of the most specific range matching its media type
    (``type/subtype`` over ``type/*`` over ``*/*``); the highest quality wins, then the more
    specific range, then the range listed first, then the contract's order (JSON first).
    """
    ranges = _media_ranges(accept)
    best: tuple[float, int, int] | None = None
    chosen: OutputFormat | None = None
    for output_format, media_type in zip(
        contract.OUTPUT_FORMATS, ACCEPTABLE_MEDIA_TYPES, strict=True
    ):
        main_type = media_type.split("/", 1)[0]
        match: tuple[float, int, int] | None = None  # (quality, specificity, -position)
        for position, (media_range, quality) in enumerate(ranges):
            if media_range == media_type:
                specificity = 2
            elif media_range == f"{main_type}/*":
                specificity = 1
            elif media_range == "*/*":
                specificity = 0
            else:
                continue
            if match is None or specificity > match[1]:
                match = (quality, specificity, -position)
        if match is None or match[0] <= 0:
            continue
        if best is None or match > best:
            best, chosen = match, output_format
    return chosen


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    """(media range, quality) of each entry of ``accept``, lower-cased, parameters dropped;
    an entry with an unreadable quality is left out."""
    ranges: list[tuple[str, float]] = []
    for entry in accept.split(",")[:_MAX_ACCEPT_RANGES]:
        media_range, *parameters = entry.split(";")
        media_range = media_range.strip().lower()
        if not media_range:
            continue
        quality: float | None = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                quality = _quality(value.strip())
        if quality is not None:
            ranges.append((media_range, quality))
    return ranges


def _quality(value: str) -> float | None:
    """A qvalue: 0 to 1 with up to three decimals; None when it is not one."""
    if not re.fullmatch(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?", value):
        return None
    return float(value)


def content_disposition(upload_name: str | None, output_format: OutputFormat) -> str:
    """``attachment`` named ``<upload stem>.<extension>`` (RFC 6266): a plain ASCII
    ``filename``, plus ``filename*`` in UTF-8 when the name is not plain ASCII."""
    filename = f"{download_stem(upload_name)}.{output_format.extension}"
    fallback = "".join(
        char if char.isascii() and char.isprintable() and char not in '"\\' else "_"
        for char in filename
    )
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def download_stem(upload_name: str | None) -> str:
    """The upload's file name without folders, extension, control characters or leading dots,
    at most 100 characters; ``page`` when nothing is left."""
    name = _PATH_SEPARATORS.split(upload_name or "")[-1]
    stem = PurePosixPath(name).stem if name not in ("", ".", "..") else ""
    stem = "".join(char for char in stem if char.isprintable()).strip().lstrip(".").strip()
    return stem[:_MAX_STEM_CHARS] or DEFAULT_STEM
