"""The files `ocr` reads: found from its PATH arguments, recognised by their bytes, pages counted.

A folder is walked recursively, in name order, without following links to folders. What a file
is comes from its first bytes (:mod:`contract.formats`, as the gateway decides), never from its
name: a folder's other files are skipped, a named file that is no accepted format fails.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import BinaryIO, Final, Literal

from cli.args import UsageError
from contract.formats import (
    ACCEPTED_DOCUMENT_FORMAT_NAMES,
    PDF_FORMAT,
    sniff_document_format,
    sniff_image_format,
)

#: Bytes read to recognise a file: a PDF's signature may sit anywhere in its first 1024.
SNIFF_BYTES: Final = PDF_FORMAT.window
#: The name standard input is shown and saved under.
STDIN_NAME: Final = "stdin"

Kind = Literal["image", "tiff", "pdf"]
"""An image is one page; a TIFF or a PDF may hold many."""


@dataclass(frozen=True, slots=True)
class InputFile:
    """One file to read: where it is, what it is, and where under `--out` its outputs go."""

    name: str
    """As shown in messages: the path as given or as found in a folder; `-` for stdin."""
    path: Path | None
    """None for standard input (its bytes are in `data`)."""
    kind: Kind
    media_type: str
    folder: PurePath = field(default_factory=PurePath)
    """The sub-folder of the folder PATH it was found in: its outputs go there under --out."""
    data: bytes | None = field(default=None, repr=False)

    @property
    def stem(self) -> str:
        """The outputs' base name: the file name without its extension."""
        return STDIN_NAME if self.path is None else self.path.stem

    @property
    def filename(self) -> str:
        """The file name sent with the upload (the gateway names its downloads after it)."""
        return STDIN_NAME if self.path is None else self.path.name

    def read(self) -> bytes:
        """The whole file."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


@dataclass
class Discovery:
    """What the PATH arguments hold."""

    files: list[InputFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Files found in folders that are no accepted format: left alone."""
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """Named files (or unreadable ones) that cannot be sent, and why: they fail."""


def sniff(head: bytes) -> tuple[Kind, str] | None:
    """The kind and media type of a file starting with `head`, or None: no accepted format."""
    image = sniff_image_format(head)
    if image is not None:
        return ("tiff" if image.pillow == "TIFF" else "image"), image.media_type
    document = sniff_document_format(head)
    if document is not None:
        return "pdf", document.media_type
    return None


def discover(
    paths: Sequence[str], *, stdin: BinaryIO | None = None, exclude: Path | None = None
) -> Discovery:
    """The files `paths` name; folders walked, skipping `exclude` (the output folder, so a
    batch never reads its own outputs). :class:`UsageError` for a path that does not exist."""
    found = Discovery()
    seen: set[Path] = set()
    excluded = exclude.resolve() if exclude is not None else None
    for given in paths:
        if given == "-":
            data = (stdin or _stdin()).read()
            _add_stdin(found, data)
            continue
        path = Path(given)
        if path.is_dir():
            for file, folder in _walk(path, excluded):
                _add(found, seen, file, str(file), folder, named=False)
        elif path.exists():
            _add(found, seen, path, given, PurePath(), named=True)
        else:
            raise UsageError(f"{given}: no such file or folder")
    return found


def _stdin() -> BinaryIO:
    return sys.stdin.buffer


def _add_stdin(found: Discovery, data: bytes) -> None:
    sniffed = sniff(data[:SNIFF_BYTES])
    if sniffed is None:
        found.rejected.append(("-", _not_accepted(data)))
        return
    kind, media_type = sniffed
    found.files.append(InputFile("-", None, kind, media_type, data=data))


def _walk(root: Path, excluded: Path | None) -> Iterable[tuple[Path, PurePath]]:
    """Every file under `root` in name order, with its folder relative to `root`."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if (here / d).resolve() != excluded)
        for name in sorted(filenames):
            yield here / name, here.relative_to(root)


def _add(
    found: Discovery, seen: set[Path], path: Path, name: str, folder: PurePath, *, named: bool
) -> None:
    try:
        resolved = path.resolve()
        if resolved in seen:
            return
        if not path.is_file():  # a socket, a device, a dangling link: nothing to read
            if named:
                found.rejected.append((name, "not a regular file"))
            return
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as err:
        found.rejected.append((name, f"cannot be read: {err.strerror or err}"))
        return
    seen.add(resolved)
    sniffed = sniff(head)
    if sniffed is None:
        if named:
            found.rejected.append((name, _not_accepted(head)))
        else:
            found.skipped.append(name)
        return
    kind, media_type = sniffed
    found.files.append(InputFile(name, path, kind, media_type, folder))


def _not_accepted(head: bytes) -> str:
    if not head:
        return "empty file"
    return f"not an accepted format ({ACCEPTED_DOCUMENT_FORMAT_NAMES})"


def count_pages(item: InputFile, selection: Sequence[int] | None = None) -> int:
    """The pages of `item` the server will read (those of `selection` it has, when given), for
    the progress bar; 1 when they cannot be counted here (the server says why it cannot read
    the file). Opens PDFs with pikepdf and TIFFs with Pillow, which read only their indexes."""
    if item.kind == "image":
        total = 1
    else:
        try:
            total = _document_pages(item)
        except Exception:  # a damaged file: the server says what is wrong with it
            return 1
    if selection is not None:
        total = sum(1 for number in selection if number <= total)
    return max(1, total)


def _document_pages(item: InputFile) -> int:
    source: Path | io.BytesIO = item.path if item.path is not None else io.BytesIO(item.read())
    if item.kind == "pdf":
        import pikepdf

        with pikepdf.open(source) as pdf:
            return len(pdf.pages)
    from PIL import Image

    with Image.open(source) as image:
        return int(getattr(image, "n_frames", 1))
