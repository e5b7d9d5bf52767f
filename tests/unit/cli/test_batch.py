"""The batch with a scripted server: failures do not stop it, what would fail every file does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.args import ReadOptions, parse_args
from cli.backend import Answer, ServerError, TransportError
from cli.batch import Batch, FileResult, Summary
from cli.formats import CliFormat
from cli.inputs import InputFile
from cli.outputs import plan_outputs
from cli.retry import RetryPolicy

pytestmark = pytest.mark.unit

Script = Callable[[str, str], Answer]
"""(file name, format) → the answer, or raises the error the server gives."""


class ScriptedBackend:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls: list[tuple[str, str]] = []

    async def check(self) -> None:
        return None

    async def read(
        self, data: bytes, filename: str, output_format: CliFormat, options: ReadOptions
    ) -> Answer:
        self.calls.append((filename, output_format.name))
        await asyncio.sleep(0)
        return self.script(filename, output_format.name)

    async def aclose(self) -> None:
        return None


class Recorder:
    def __init__(self) -> None:
        self.results: list[FileResult] = []
        self.notes: list[str] = []

    def start(self, files: int, pages: int, description: str) -> None:
        return None

    def file_done(self, result: FileResult) -> None:
        self.results.append(result)

    def note(self, message: str) -> None:
        self.notes.append(message)

    def finish(self, summary: Summary) -> None:
        return None


#: No waiting between attempts in these tests.
FAST = RetryPolicy(base_s=0.0, cap_s=0.0)


def run(
    tmp_path: Path, names: list[str], script: Script, *args: str
) -> tuple[Summary, Recorder, ScriptedBackend]:
    files = []
    for name in names:
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + name.encode())
        files.append(InputFile(name, path, "image", "image/png"))
    invocation = parse_args([str(tmp_path / "in"), "--out", str(tmp_path / "out"), *args], {})
    planned = plan_outputs(files, invocation.formats, invocation.out)
    backend = ScriptedBackend(script)
    recorder = Recorder()
    batch = Batch(planned, [1] * len(planned), backend, invocation, recorder, policy=FAST)
    return asyncio.run(batch.run()), recorder, backend


def test_a_failing_file_does_not_stop_the_others(tmp_path: Path) -> None:
    def script(name: str, _fmt: str) -> Answer:
        if name == "b.png":
            raise ServerError(422, "invalid_argument", "corrupt")
        return Answer(f"text of {name}".encode())

    summary, recorder, _ = run(tmp_path, ["a.png", "b.png", "c.png"], script)
    assert summary.read == 2
    assert summary.failed == [("b.png", "corrupt [422 invalid_argument]")]
    assert summary.stopped is None
    assert not summary.ok
    assert (tmp_path / "out" / "c.txt").read_text() == "text of c.png"
    assert not (tmp_path / "out" / "b.txt").exists()
    assert sorted(r.status for r in recorder.results) == ["failed", "read", "read"]


def test_429_is_retried_and_noted(tmp_path: Path) -> None:
    refusals = [ServerError(429, "rate_limited", "slow down", retry_after_s=0)]

    def script(name: str, _fmt: str) -> Answer:
        if refusals:
            raise refusals.pop()
        return Answer(b"text")

    summary, recorder, backend = run(tmp_path, ["a.png"], script)
    assert summary.ok
    assert len(backend.calls) == 2
    assert recorder.notes == [
        "a.png: slow down [429 rate_limited]; trying again in 1 s (attempt 2 of 6)"
    ]


@pytest.mark.parametrize(
    ("error", "stopped"),
    [
        (TransportError("connection refused"), "lost the gateway at http://localhost:8001"),
        (ServerError(401, "unauthorized", "key?"), "refused the API key"),
        (ServerError(503, "model_unavailable", "down"), "stayed unavailable"),
    ],
)
def test_what_fails_every_file_stops_the_batch(
    tmp_path: Path, error: Exception, stopped: str
) -> None:
    def script(_name: str, _fmt: str) -> Answer:
        raise error

    names = [f"{n}.png" for n in range(10)]
    summary, _, _ = run(tmp_path, names, script, "--jobs", "2")
    assert summary.stopped is not None
    assert stopped in summary.stopped
    # The two in flight end; the rest are left for --skip-existing.
    assert len(summary.failed) == 2
    assert summary.not_started == 8


def test_failed_pages_are_a_failure_with_the_file_written(tmp_path: Path) -> None:
    def script(_name: str, fmt: str) -> Answer:
        return Answer(b"{}" if fmt == "json" else b"text", failed_pages=(2,))

    summary, recorder, backend = run(tmp_path, ["doc.png"], script, "--format", "txt,json")
    assert [call[1] for call in backend.calls] == ["txt", "json"]
    assert (tmp_path / "out" / "doc.json").read_text() == "{}"
    (result,) = recorder.results
    assert result.status == "failed"
    assert result.message == "page 2 could not be read (the others are written)"
    assert len(result.outputs) == 2
    assert summary.failed == [(result.name, result.message)]


def test_skip_existing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("done before")
    summary, _, backend = run(
        tmp_path, ["a.png", "b.png"], lambda *_: Answer(b"new"), "--skip-existing"
    )
    assert backend.calls == [("b.png", "txt")]
    assert summary.skipped_existing == 1
    assert summary.read == 1
    assert (out / "a.txt").read_text() == "done before"
