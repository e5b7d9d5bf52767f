"""The platform and the seed-style stack as real processes on free loopback ports.

A stack is a gateway and a model server started with `subprocess` from the repository root,
polled until ready (never a fixed sleep), and stopped by the PIDs we started: SIGTERM, then
SIGKILL when the grace time runs out. `Monitor` samples their CPU time and resident memory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil
from prometheus_client.parser import text_string_to_metric_families

from .results import Usage

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
#: Everything a request may take in the benchmark: 64 queued full pages wait about a minute.
REQUEST_BUDGET_S = 300


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def http_ok(url: str) -> bool:
    """True when GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  # loopback URL we built
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _base_env() -> dict[str, str]:
    """Our environment without settings of the services or tracing, which would skew a run."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OCR_MODEL_", "OCR_GATEWAY_", "OTEL_"))
    }


class Process:
    """A process we started, its role in the stack and its log file."""

    def __init__(self, role: str, module: str, args: list[str], env: Mapping[str, str], log: Path):
        self.role = role
        self.log = log
        with log.open("wb") as handle:
            self.popen = subprocess.Popen(  # noqa: S603  # our interpreter and our module
                [sys.executable, "-m", module, *args],
                cwd=ROOT,
                env={**_base_env(), **env},
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL; always reaps the process."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
                return
            except subprocess.TimeoutExpired:
                self.popen.kill()
        self.popen.wait()

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@dataclass(frozen=True)
class Gateway:
    """A started gateway process, where to ask whether it is ready, and how it was configured."""

    process: Process
    ready_urls: tuple[str, ...]
    """Every URL that must answer 200 before the stack takes uploads."""
    settings: str


class Stack:
    """A model server and a gateway in front of it; `upload_url` takes the uploads."""

    name = "stack"
    #: Roles whose child processes count toward their memory (sampled while a level runs).
    tree_roles: frozenset[str] = frozenset()

    def __init__(self, log_dir: Path, ready_timeout_s: float = 120.0) -> None:
        self._log_dir = log_dir
        self._ready_timeout_s = ready_timeout_s
        self.processes: list[Process] = []
        self.settings: dict[str, str] = {}
        self.upload_url = ""
        self.metrics_url = ""
        self.grpc_target = ""
        """host:port of the model server's gRPC (KServe v2) endpoint."""
        self.stopped = False
        """True after `cut_short`: `ensure_started` starts it again."""

    def _model_env(self) -> dict[str, str]:
        return {
            "OCR_MODEL_WORKERS": "0",
            "OCR_MODEL_MAX_REQUEST_S": str(REQUEST_BUDGET_S),
            "OCR_MODEL_GRACE_PERIOD_S": "5",
            "OCR_MODEL_LOG_LEVEL": "warning",
        }

    def _launch(self, http_port: int, grpc_port: int, gateway_port: int) -> Gateway:
        """Start the gateway in front of the model server listening on the given ports."""
        raise NotImplementedError

    def start(self) -> None:
        """Start both processes and wait until the gateway says it is ready."""
        http_port, grpc_port, gateway_port = free_port(), free_port(), free_port()
        model_env = self._model_env()
        ports = {"OCR_MODEL_HTTP_PORT": str(http_port), "OCR_MODEL_GRPC_PORT": str(grpc_port)}
        stamp = time.strftime("%H%M%S")
        model = Process(
            "model",
            "model",
            [],
            {**model_env, **ports},
            self._log_dir / f"{self.name}-model-{stamp}.log",
        )
        self.processes = [model]
        gateway = self._launch(http_port, grpc_port, gateway_port)
        self.processes.append(gateway.process)
        self.settings = {"model": _describe(model_env), "gateway": gateway.settings}
        self.upload_url = f"http://{HOST}:{gateway_port}/gateway/ocr"
        self.metrics_url = f"http://{HOST}:{http_port}/metrics"
        self.grpc_target = f"{HOST}:{grpc_port}"
        self.stopped = False
        deadline = time.monotonic() + self._ready_timeout_s
        while not all(http_ok(url) for url in gateway.ready_urls):
            dead = [p for p in self.processes if not p.alive()]
            if dead or time.monotonic() > deadline:
                self.stop()
                culprit = dead[0] if dead else gateway.process
                raise RuntimeError(
                    f"{self.name} stack did not become ready ({culprit.role} "
                    f"{'exited' if dead else 'timed out'}); log tail:\n{culprit.tail()}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the gateway first, then the model server."""
        for process in reversed(self.processes):
            process.stop()
        self.processes = []

    def cut_short(self) -> None:
        """Stop now: the requests left behind by a level cut short would keep the CPU busy
        while the next measurements run."""
        self.stop()
        self.stopped = True

    def ensure_started(self) -> None:
        """Start the stack again if `cut_short` stopped it."""
        if self.stopped:
            self.start()

    def pids(self) -> dict[str, int]:
        return {p.role: p.pid for p in self.processes}


def _describe(env: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(env.items()))


class PlatformStack(Stack):
    """`python -m gateway` in front of `python -m model` (tesserocr), as `make run` starts them."""

    name = "platform"

    def _launch(self, http_port: int, grpc_port: int, gateway_port: int) -> Gateway:
        env = {
            "OCR_GATEWAY_HOST": HOST,
            "OCR_GATEWAY_LOG_LEVEL": "warning",
            "OCR_GATEWAY_REQUEST_TIMEOUT_S": str(REQUEST_BUDGET_S),
        }
        process = Process(
            "gateway",
            "gateway",
            [],
            {
                **env,
                "OCR_GATEWAY_PORT": str(gateway_port),
                "OCR_GATEWAY_MODEL_ADDRESS": f"{HOST}:{grpc_port}",
            },
            self._log_dir / f"platform-gateway-{gateway_port}.log",
        )
        # The gateway's readiness asks the model server over gRPC.
        return Gateway(process, (f"http://{HOST}:{gateway_port}/readyz",), _describe(env))


class SeedStack(Stack):
    """The seed's way: `bench.seed_gateway` calling the model's REST v2 with pytesseract."""

    name = "seed-style"
    tree_roles = frozenset({"model"})  # a Tesseract CLI process per image

    def _model_env(self) -> dict[str, str]:
        return {**super()._model_env(), "OCR_MODEL_ENGINE": "pytesseract"}

    def _launch(self, http_port: int, grpc_port: int, gateway_port: int) -> Gateway:
        process = Process(
            "gateway",
            "bench.seed_gateway",
            [
                "--host",
                HOST,
                "--port",
                str(gateway_port),
                "--model-url",
                f"http://{HOST}:{http_port}",
            ],
            {},
            self._log_dir / f"seed-gateway-{gateway_port}.log",
        )
        return Gateway(
            process,
            # The seed-style gateway does not look at the model: ask both.
            (
                f"http://{HOST}:{http_port}/v2/models/ocr-model/ready",
                f"http://{HOST}:{gateway_port}/readyz",
            ),
            "python -m bench.seed_gateway: a blocking urllib call inside the async handler",
        )


def _children_rss(process: psutil.Process) -> int:
    """Resident bytes of the children of `process` (the seed's Tesseract CLI runs)."""
    total = 0
    for child in process.children(recursive=True):
        try:
            total += int(child.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def _reset_peak_rss(pid: int) -> None:
    """Start a new peak-RSS window for `pid` (Linux: writing 5 to clear_refs resets VmHWM)."""
    # Where that fails, the peak covers the process's whole life, which can only overstate it.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _peak_rss(process: psutil.Process) -> int:
    """The process's peak resident bytes since the last reset (VmHWM), or its RSS now."""
    try:
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return int(process.memory_info().rss)


def _cpu_s(process: psutil.Process, children: bool) -> float:
    times = process.cpu_times()
    total = float(times.user + times.system)
    if children:  # finished children: the Tesseract CLI runs of the pytesseract backend
        total += float(times.children_user + times.children_system)
    return total


def _cpu_by_process() -> dict[tuple[int, str], float]:
    """CPU seconds so far of every process on the machine, by (pid, name)."""
    found: dict[tuple[int, str], float] = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        times = proc.info.get("cpu_times")
        if times is not None:
            found[(proc.pid, proc.info.get("name") or "?")] = float(times.user + times.system)
    return found


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine spent busy (every process, every core) since boot."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@dataclass(frozen=True)
class EngineCounters:
    """The model server's own accounting: engine stage seconds and queue waits so far."""

    busy_s: float
    queue_wait_s: float
    images: int
    workers: int


def engine_counters(metrics_url: str) -> EngineCounters | None:
    """Read the model's Prometheus metrics; None when they cannot be read."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as response:  # noqa: S310  # loopback
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    busy = wait = 0.0
    images = workers = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ocr_stage_duration_seconds_sum":
                busy += sample.value
            elif sample.name == "ocr_queue_wait_seconds_sum":
                wait += sample.value
            elif sample.name == "ocr_queue_wait_seconds_count":
                images += int(sample.value)
            elif sample.name == "ocr_engine_workers":
                workers = int(sample.value)
    return EngineCounters(busy, wait, images, workers)


class Monitor:
    """CPU seconds and peak resident memory of each role while the `with` block runs, and the
    CPU time every other process on the machine took meanwhile (`background_cpu_pct`).

    Peaks come from the kernel (VmHWM, reset on entry), so nothing polls the processes we
    measure; only the roles in `tree_roles`, whose children come and go, are sampled for them.
    Stack processes count their finished children's CPU too; `client` (this process) does not,
    since the stacks it started are its children.
    """

    def __init__(
        self,
        pids: Mapping[str, int],
        tree_roles: frozenset[str] = frozenset(),
        interval_s: float = 0.2,
    ) -> None:
        self._procs = {role: psutil.Process(pid) for role, pid in pids.items()}
        self._procs["client"] = psutil.Process(os.getpid())
        self._tree_roles = tree_roles & self._procs.keys()
        self._interval_s = interval_s
        self._tree_peak: dict[str, int] = dict.fromkeys(self._tree_roles, 0)
        self._cpu0: dict[str, float] = {}
        self._busy0 = self._wall0 = 0.0
        self.background_cpu_pct = 0.0
        """Share of the machine's CPU capacity used by processes not in `pids` nor this one."""
        self.background_top: list[str] = []
        """The other processes that took the most CPU meanwhile, as `name[pid] seconds`."""
        self._others0: dict[tuple[int, str], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_loop, name="monitor", daemon=True)
        self.usage: dict[str, Usage] = {}

    def _sample_trees(self) -> None:
        for role in self._tree_roles:
            proc = self._procs[role]
            try:
                rss = int(proc.memory_info().rss) + _children_rss(proc)
            except psutil.NoSuchProcess:
                continue
            self._tree_peak[role] = max(self._tree_peak[role], rss)

    def _sample_loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample_trees()

    def __enter__(self) -> Monitor:
        for proc in self._procs.values():
            _reset_peak_rss(proc.pid)
        self._cpu0 = {role: _cpu_s(p, role != "client") for role, p in self._procs.items()}
        self._others0 = _cpu_by_process()
        self._busy0, self._wall0 = _busy_cpu_s(), time.monotonic()
        if self._tree_roles:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tree_roles:
            self._stop.set()
            self._thread.join()
        for role, proc in self._procs.items():
            try:
                cpu = _cpu_s(proc, role != "client") - self._cpu0[role]
                peak = max(_peak_rss(proc), self._tree_peak.get(role, 0))
            except psutil.NoSuchProcess:
                cpu, peak = 0.0, 0
            self.usage[role] = Usage(cpu_s=cpu, peak_rss_mb=peak / 2**20)
        ours = sum(u.cpu_s for u in self.usage.values())
        capacity = (time.monotonic() - self._wall0) * (psutil.cpu_count() or 1)
        other = _busy_cpu_s() - self._busy0 - ours
        self.background_cpu_pct = max(0.0, 100.0 * other / capacity) if capacity > 0 else 0.0
        self.background_top = self._top_others()

    def _top_others(self, count: int = 3, min_s: float = 0.5) -> list[str]:
        ours = {p.pid for p in self._procs.values()}
        # The other stack is this process's child too, but not part of this measurement.
        for role, proc in self._procs.items():
            if role == "client":
                continue
            with contextlib.suppress(psutil.NoSuchProcess):
                ours.update(child.pid for child in proc.children(recursive=True))
        spent = [
            (seconds - self._others0.get(key, 0.0), key)
            for key, seconds in _cpu_by_process().items()
            if key[0] not in ours
        ]
        spent.sort(reverse=True)
        return [f"{name}[{pid}] {cpu:.1f}s" for cpu, (pid, name) in spent[:count] if cpu >= min_s]
