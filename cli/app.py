"""`ocr`: the command line's entry point (`ocr = "cli.app:main"`).

Arguments are checked, inputs found and outputs planned before the server is asked anything,
so a usage error costs nothing and exits 2. Then the server is checked once (a few seconds at
most: an unreachable one is a single line and exit 1), the batch runs, the summary follows.
Nothing leaves as a traceback: every failure ends as one `ocr: ...` line.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

from cli.args import Invocation, UsageError, build_parser, parse_args, parse_page_ranges
from cli.backend import Backend, Unreachable
from cli.batch import Batch, Summary
from cli.inputs import Discovery, count_pages, discover
from cli.outputs import Planned, plan_outputs
from cli.progress import reporter_for

#: Exit statuses: every file read; a file failed (or the server was unreachable); a usage error.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: The shell's status for a command stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run `ocr` with `argv` (default: the command line); the exit status."""
    stderr = sys.stderr
    try:
        invocation = parse_args(sys.argv[1:] if argv is None else argv)
        return asyncio.run(run(invocation, sys.stdin.buffer, sys.stdout.buffer, stderr))
    except UsageError as err:
        stderr.write(build_parser().format_usage())
        print(f"ocr: error: {err}", file=stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ocr: interrupted", file=stderr)  # after the summary, which says how to resume
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`ocr scan.png | head -1`): nothing left to say.
        _silence_stdout()
        return EXIT_FAILED
    except Exception as err:  # the promise: one line, never a traceback
        print(f"ocr: unexpected error: {type(err).__name__}: {err}", file=stderr)
        return EXIT_FAILED


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def single_answer(invocation: Invocation) -> bool:
    """Whether the answer goes to stdout: one file (or -), one format and no --out."""
    if invocation.out is not None or len(invocation.paths) != 1 or len(invocation.formats) != 1:
        return False
    only = invocation.paths[0]
    return only == "-" or not Path(only).is_dir()


def plan(invocation: Invocation, found: Discovery, single: bool) -> list[Planned]:
    """Every file and where its answers go; :class:`UsageError` for an impossible plan."""
    if single:
        return [Planned(item, {}) for item in found.files]
    return plan_outputs(found.files, invocation.formats, invocation.out)


def make_backend(invocation: Invocation) -> Backend:
    """The gateway over HTTP, or with `--grpc` the model server over gRPC."""
    if invocation.grpc is None:
        from cli.http_backend import HttpBackend

        return HttpBackend(
            invocation.url,
            api_key=invocation.api_key,
            jobs=invocation.jobs,
            timeout_s=invocation.timeout_s,
        )
    try:
        from cli.grpc_backend import GrpcBackend
    except ImportError as err:
        raise Unreachable(
            f"--grpc needs the gateway's packages ({err.name}): pip install 'ocr-platform[cli]'"
        ) from None
    return GrpcBackend(
        invocation.grpc, token=invocation.model_token, timeout_s=invocation.timeout_s
    )


async def run(invocation: Invocation, stdin: BinaryIO, stdout: BinaryIO, stderr: TextIO) -> int:
    """The whole run, once the arguments are parsed; the exit status."""
    single = single_answer(invocation)
    if single and invocation.formats[0].binary and stdout.isatty():
        raise UsageError(
            f"the {invocation.formats[0].name} answer is binary: redirect stdout or use --out"
        )
    found = discover(invocation.paths, stdin=stdin, exclude=invocation.out)
    planned = plan(invocation, found, single)
    selection = parse_page_ranges(invocation.options.pages) if invocation.options.pages else None
    pages = [count_pages(p.item, selection) for p in planned]
    reporter = reporter_for(stderr, quiet=invocation.quiet, single=single)
    summary = Summary(not_images=list(found.skipped), failed=list(found.rejected))
    for name, why in found.rejected:
        print(f"ocr: {name}: FAILED: {why}", file=stderr)
    if not planned:
        reporter.finish(summary)
        if not found.rejected:
            print(f"ocr: no image or PDF found in {' '.join(invocation.paths)}", file=stderr)
        return EXIT_OK if summary.ok else EXIT_FAILED
    try:
        backend = make_backend(invocation)
    except Unreachable as err:
        print(f"ocr: {err}", file=stderr)
        return EXIT_FAILED
    try:
        try:
            await backend.check()
        except Unreachable as err:
            print(f"ocr: {err}", file=stderr)
            return EXIT_FAILED
        reporter.start(
            len(planned),
            sum(pages),
            f"via {invocation.server}, {invocation.jobs} at a time",
        )
        batch = Batch(planned, pages, backend, invocation, reporter, summary=summary)
        try:
            summary = await batch.run()
        finally:
            reporter.finish(summary)
        for content in batch.for_stdout:
            stdout.write(content)
        stdout.flush()
    finally:
        await backend.aclose()
    return EXIT_OK if summary.ok else EXIT_FAILED
