"""Where each input's answers are written, decided for the whole batch before anything is sent.

Outputs are `<stem>.<ext>`: in `--out` (under the sub-folder an input was found in) or beside
the input. Two inputs that would write the same file are named after their whole file name
instead (`scan.png.txt`, `scan.jpg.txt`); an output that would replace any input of the batch
is refused. Files are written whole or not at all (a temporary file renamed over the target),
so an interrupted batch leaves no half-written output for `--skip-existing` to trust.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cli.args import UsageError
from cli.formats import CliFormat
from cli.inputs import InputFile


@dataclass(frozen=True, slots=True)
class Planned:
    """One input and the file each format is written to (empty: the answer goes to stdout)."""

    item: InputFile
    targets: Mapping[str, Path]
    """Format name → output path."""

    def done_already(self) -> bool:
        """Whether every output exists and is not empty (`--skip-existing`)."""
        return bool(self.targets) and all(
            path.is_file() and path.stat().st_size > 0 for path in self.targets.values()
        )


def output_name(stem: str, output_format: CliFormat) -> str:
    """`scan` + ALTO → `scan.alto.xml`."""
    return f"{stem}.{output_format.extension}"


def base_folder(item: InputFile, out: Path | None) -> Path:
    """The folder `item`'s outputs go to."""
    if out is not None:
        return out / item.folder
    if item.path is None:
        raise UsageError("- (standard input) needs --out unless its answer goes to stdout")
    return item.path.parent


def plan_outputs(
    files: Sequence[InputFile], formats: Sequence[CliFormat], out: Path | None
) -> list[Planned]:
    """Every input's output paths; :class:`UsageError` when one would replace an input or two
    inputs cannot be told apart."""
    stems = _stems(files, out)
    inputs = {item.path.resolve(): item for item in files if item.path is not None}
    planned: list[Planned] = []
    claimed: dict[Path, InputFile] = {}
    for item, stem in zip(files, stems, strict=True):
        folder = base_folder(item, out)
        targets: dict[str, Path] = {}
        for output_format in formats:
            target = folder / output_name(stem, output_format)
            resolved = target.resolve()
            victim = inputs.get(resolved)
            if victim is not None:
                raise UsageError(
                    f"refusing to overwrite the input {victim.name} with the {output_format.name} "
                    f"output of {item.name}; choose another --out"
                )
            other = claimed.setdefault(resolved, item)
            if other is not item:
                raise UsageError(
                    f"{other.name} and {item.name} would both be written to {target}; "
                    "read them in separate runs or into separate --out folders"
                )
            targets[output_format.name] = target
        planned.append(Planned(item, targets))
    return planned


def _stems(files: Sequence[InputFile], out: Path | None) -> list[str]:
    """Each input's output stem: its stem, or its whole name where stems collide."""
    groups: dict[tuple[Path, str], list[int]] = defaultdict(list)
    for index, item in enumerate(files):
        groups[(base_folder(item, out).resolve(), item.stem)].append(index)
    stems = [item.stem for item in files]
    for members in groups.values():
        if len(members) > 1:
            for index in members:
                stems[index] = files[index].filename
    return stems


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole: into a temporary file beside it, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
