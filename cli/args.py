"""The `ocr` command line: its arguments, checked, as one :class:`Invocation`.

Everything wrong with the arguments is found here, before any file is read or any request is
sent, and reported as a usage error (exit status 2).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn
from urllib.parse import urlsplit

import contract
from cli.formats import DEFAULT_FORMAT, FORMATS, CliFormat, parse_formats
from contract.formats import ACCEPTED_DOCUMENT_FORMAT_NAMES
from contract.parameters import MAX_LANG_CODES

DEFAULT_URL: Final = "http://localhost:8001"
#: Uploads in flight at once. Four keeps a model server of a few cores busy while each answer
#: travels back and is written (its workers never wait on the client), yet stays below the
#: gateway's default queue, so a laptop-sized platform answers without 429s; a bigger
#: deployment (more model replicas) takes more.
DEFAULT_JOBS: Final = 4
#: Most uploads in flight: beyond it a client only queues work on the server.
MAX_JOBS: Final = 256
#: Seconds one request may take: a long document on a busy server is read in minutes (the
#: gateway's own document timeout is 600 s).
DEFAULT_TIMEOUT_S: Final = 660.0
#: The path of the gateway's OCR route under its base URL.
OCR_PATH: Final = "/gateway/ocr"

ENV_URL: Final = "OCR_URL"
ENV_API_KEY: Final = "OCR_API_KEY"
ENV_MODEL_TOKEN: Final = "OCR_MODEL_TOKEN"  # noqa: S105  # the variable's name, not a token

# ASCII digits only, spaces allowed around numbers, as the gateway parses `pages`.
_PAGE_RANGE: Final = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", re.ASCII)
_GRPC_TARGET: Final = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>[0-9]+)")

_DESCRIPTION: Final = "Read the text in images, PDFs and multi-page TIFFs with the OCR platform."
_EPILOG: Final = f"""\
inputs:
  PATH is a file, a folder (read recursively) or - (standard input). In a folder, only files
  whose first bytes are an accepted format ({ACCEPTED_DOCUMENT_FORMAT_NAMES})
  are read, whatever their names; the others are skipped and counted in the summary. A file
  named on the command line that is no accepted format fails.

outputs:
  Each input gives <stem>.<ext> per format (txt, json, hocr, tsv, alto.xml, pdf): in --out,
  keeping the sub-folders found under a folder PATH; without --out, beside the input. Inputs
  with the same stem in one place are written as <name>.<ext> (scan.png.txt). An output that
  would replace an input is refused before anything is read. With a single file (or -) and a
  single format and no --out, the answer goes to standard output.

progress:
  On a terminal, a live bar on standard error (percent, files and pages, pages/s, time left);
  otherwise one plain line per file, no escape codes. A summary ends every batch.

retries:
  Answers 429 and 503 are tried again after the server's Retry-After (jittered), else with
  exponential backoff, up to 6 attempts; a lost connection up to 3. A file that fails does not
  stop the others; an unreachable server, a refused API key or a server that stays
  unavailable stops the batch (--skip-existing resumes it).

exit status:
  0 every file was read, 1 a file failed (or the server could not be reached), 2 usage error.

environment:
  {ENV_URL}          the gateway's URL when --url is not given (default {DEFAULT_URL})
  {ENV_API_KEY}      the API key when --api-key is not given (kept out of the process list)
  {ENV_MODEL_TOKEN}  with --grpc: the model server's bearer token (OCR_MODEL_AUTH_TOKEN there)
"""


class UsageError(Exception):
    """The command line asks for something impossible; `ocr` exits with status 2."""


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How every page is read: the gateway's form fields (None: the server's default)."""

    lang: str | None = None
    psm: int | None = None
    rotate: str | None = None
    deskew: bool | None = None
    pages: str | None = None
    """The `pages` field as given (`1-3,7`); checked by :func:`parse_page_ranges`."""
    dpi: int | None = None
    pdf_text: str | None = None

    def form_fields(self) -> dict[str, str]:
        """The multipart form fields these options send to the gateway."""
        fields: dict[str, str] = {}
        if self.lang is not None:
            fields[contract.LANG.name] = self.lang
        if self.psm is not None:
            fields[contract.PSM.name] = str(self.psm)
        if self.rotate is not None:
            fields[contract.ROTATE.name] = self.rotate
        if self.deskew is not None:
            fields[contract.DESKEW.name] = "true" if self.deskew else "false"
        if self.pages is not None:
            fields["pages"] = self.pages
        if self.dpi is not None:
            fields[contract.DPI.name] = str(self.dpi)
        if self.pdf_text is not None:
            fields[contract.PDF_TEXT.name] = self.pdf_text
        return fields


@dataclass(frozen=True, slots=True)
class Invocation:
    """One run of `ocr`, as the command line asked for it."""

    paths: tuple[str, ...]
    formats: tuple[CliFormat, ...]
    options: ReadOptions
    out: Path | None
    jobs: int
    url: str
    """The gateway's base URL (no trailing slash, no `/gateway/ocr`)."""
    grpc: str | None
    """`host:port` of the model server's KServe v2 gRPC endpoint; None: through the gateway."""
    api_key: str | None
    model_token: str | None
    skip_existing: bool
    quiet: bool
    timeout_s: float

    @property
    def ocr_url(self) -> str:
        """Where uploads are posted."""
        return self.url + OCR_PATH

    @property
    def server(self) -> str:
        """The server talked to, for messages."""
        return f"the model server at {self.grpc}" if self.grpc else f"the gateway at {self.url}"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises :class:`UsageError` (the caller prints and exits 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The `ocr` argument parser (`ocr --help`)."""
    parser = _Parser(
        prog="ocr",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="file, folder or - (stdin)")
    parser.add_argument("-o", "--out", type=Path, metavar="DIR", help="folder the outputs go to")
    parser.add_argument(
        "-f",
        "--format",
        default=DEFAULT_FORMAT.name,
        metavar="LIST",
        help=f"comma-separated output formats: {','.join(f.name for f in FORMATS)} "
        f"(default {DEFAULT_FORMAT.name}); one request per format",
    )
    parser.add_argument("-l", "--lang", help="Tesseract language(s), e.g. eng or eng+deu")
    parser.add_argument("--psm", type=int, metavar="N", help="page segmentation mode, 0-13")
    parser.add_argument(
        "--rotate",
        choices=contract.ROTATE.choices,
        help="auto: turn sideways and upside-down pages upright",
    )
    parser.add_argument(
        "--deskew", action="store_true", default=None, help="straighten slightly tilted pages"
    )
    parser.add_argument(
        "--pages", metavar="RANGES", help="pages of PDFs and TIFFs to read, e.g. 1-3,7"
    )
    parser.add_argument(
        "--dpi",
        type=int,
        metavar="N",
        help=f"resolution PDF pages are rendered at, {contract.DPI.minimum}-{contract.DPI.maximum}",
    )
    parser.add_argument(
        "--pdf-text",
        choices=contract.PDF_TEXT.choices,
        help="keep: a born-digital PDF page's own text instead of OCR",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=DEFAULT_JOBS,
        metavar="N",
        help=f"files uploaded at once (default {DEFAULT_JOBS})",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--url", help=f"the gateway's base URL (default ${ENV_URL} or {DEFAULT_URL})"
    )
    where.add_argument(
        "--grpc",
        metavar="HOST:PORT",
        help="talk KServe v2 gRPC straight to the model server instead of the gateway",
    )
    parser.add_argument(
        "--api-key", metavar="KEY", help=f"the gateway's API key (default ${ENV_API_KEY})"
    )
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip inputs whose outputs all exist already (resume a batch)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress and no summary, only errors"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"longest wait for one answer (default {DEFAULT_TIMEOUT_S:.0f})",
    )
    return parser


def parse_args(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Invocation:
    """The invocation `argv` (without the program name) asks for; :class:`UsageError` if
    it is malformed. `environ` (default `os.environ`) supplies the defaults of `--url`,
    `--api-key` and the model token."""
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(list(argv))
    try:
        formats = parse_formats(args.format)
    except ValueError as err:
        raise UsageError(f"--format: {err}") from None
    options = ReadOptions(
        lang=_checked_lang(args.lang),
        psm=_checked_int("--psm", args.psm, contract.PSM),
        rotate=args.rotate,
        deskew=args.deskew,
        pages=_checked_pages(args.pages),
        dpi=_checked_int("--dpi", args.dpi, contract.DPI),
        pdf_text=args.pdf_text,
    )
    if not 1 <= args.jobs <= MAX_JOBS:
        raise UsageError(f"--jobs must be between 1 and {MAX_JOBS}, not {args.jobs}")
    if not args.timeout > 0:
        raise UsageError("--timeout must be more than 0 seconds")
    paths = tuple(args.paths)
    if paths.count("-") > 1:
        raise UsageError("- (standard input) can be read only once")
    if "-" in paths and len(paths) > 1 and args.out is None:
        raise UsageError("- with other inputs needs --out: standard input has no folder")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: not a folder")
    return Invocation(
        paths=paths,
        formats=formats,
        options=options,
        out=args.out,
        jobs=args.jobs,
        url=normalise_url(args.url or env.get(ENV_URL) or DEFAULT_URL),
        grpc=None if args.grpc is None else checked_grpc_target(args.grpc),
        api_key=args.api_key or env.get(ENV_API_KEY) or None,
        model_token=env.get(ENV_MODEL_TOKEN) or None,
        skip_existing=args.skip_existing,
        quiet=args.quiet,
        timeout_s=args.timeout,
    )


def normalise_url(value: str) -> str:
    """The gateway's base URL from `value`: http(s), a host, no trailing `/` nor `/gateway/ocr`
    (the route's full URL is accepted too). :class:`UsageError` when it is no such URL."""
    url = value.strip().rstrip("/")
    if url.endswith(OCR_PATH):
        url = url[: -len(OCR_PATH)]
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise UsageError(f"--url {value!r}: expected http(s)://host[:port], e.g. {DEFAULT_URL}")
    if parts.query or parts.fragment:
        raise UsageError(f"--url {value!r}: a base URL has no query or fragment")
    return url


def checked_grpc_target(value: str) -> str:
    """`host:port` (`[::1]:8081` for IPv6) as given; :class:`UsageError` otherwise."""
    match = _GRPC_TARGET.fullmatch(value.strip())
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise UsageError(f"--grpc {value!r}: expected HOST:PORT, e.g. localhost:8081")
    return value.strip()


def parse_page_ranges(value: str) -> tuple[int, ...]:
    """`1-3,7` → (1, 2, 3, 7): page numbers from 1 and ascending ranges, comma-separated, as
    the gateway reads its `pages` field. ValueError saying what is wrong."""
    pages: set[int] = set()
    for item in value.split(","):
        match = _PAGE_RANGE.fullmatch(item)
        if match is None:
            shown = item.strip() or "an empty item"
            raise ValueError(f"{shown!r} is not a page or a range such as 1-3,7")
        first = int(match[1])
        last = first if match[2] is None else int(match[2])
        if first < 1:
            raise ValueError("pages are numbered from 1")
        if last < first:
            raise ValueError(f"the range {first}-{last} is not ascending: write {last}-{first}")
        if last > contract.PAGE_NUMBER.maximum:
            raise ValueError(f"page {last} is beyond any document")
        pages.update(range(first, last + 1))
    return tuple(sorted(pages))


def _checked_pages(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_page_ranges(value)
    except ValueError as err:
        raise UsageError(f"--pages {value!r}: {err}") from None
    return value.strip()


def _checked_lang(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > contract.LANG.max_length or not re.fullmatch(contract.LANG_PATTERN, value):
        raise UsageError(
            f"--lang {value!r}: 1 to {MAX_LANG_CODES} Tesseract language "
            "codes joined by +, e.g. eng or eng+deu"
        )
    return value


def _checked_int(flag: str, value: int | None, spec: contract.IntParameter) -> int | None:
    if value is not None and value not in spec.values:
        raise UsageError(f"{flag} must be between {spec.minimum} and {spec.maximum}, not {value}")
    return value
