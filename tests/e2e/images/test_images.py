"""Build both images with scripts/build-images.sh and run them the way a cluster would.

podman (rootful, state in `.tools/podman`, kept between local runs so the debootstrapped base
image and the layer cache are reused) builds `ocr-gateway` and `ocr-model`; the containers run
with a read-only root filesystem and a writable /tmp on free host ports (`--network=host`), the
gateway calling the model container over gRPC. A cold run (debootstrap plus both builds) takes
about four minutes on two cores; a warm one well under a minute.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.images.podman import CONTAINER_TMP, Container, Podman
from tests.support.documents_hostile import model_samples
from tests.support.images import line_png
from tests.support.processes import ROOT, free_port, http_ok, wait_until
from tests.support.uploads import (
    WORST_CLIENTS,
    WORST_SIDE,
    big_page,
    check_answers,
    polite_client,
)

pytestmark = [
    pytest.mark.e2e,
    # The first test pays for debootstrap and both image builds.
    pytest.mark.timeout(1800),
]

STATE_DIR = ROOT / ".tools" / "podman"
TAG = "e2e"
COMPONENTS = ("gateway", "model")
UID = "10001"
TEXT = "Containers read this 2024"


@pytest.fixture(scope="module")
def podman() -> Podman:
    engine = Podman.prepare(STATE_DIR)
    engine.remove_leftover_containers()
    return engine


@dataclass(frozen=True)
class Images:
    """The images built for this module, by component, and the revision they are labelled with."""

    names: dict[str, str]
    revision: str

    def __getitem__(self, component: str) -> str:
        return self.names[component]


@pytest.fixture(scope="module")
def images(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Images:
    """Both images, built now (layers cached from earlier runs are reused)."""
    previous = {c: podman.image_id(f"ocr-{c}:{TAG}") for c in COMPONENTS}
    # What build-images.sh labels the images with (unless a commit lands during the build).
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    built = podman.build_images(TAG, tmp_path_factory.mktemp("build") / "build.log")
    # The image the tag pointed to before is now untagged: remove it by ID so the state directory
    # does not grow by a venv layer per code change (layers the new image shares stay).
    for component, old_id in previous.items():
        if old_id is not None and old_id != podman.image_id(built[component]):
            podman.run("rmi", old_id, check=False)
    return Images(built, head.stdout.strip() if head.returncode == 0 else "unknown")


def wait_ready(container: Container, url: str, what: str) -> None:
    """Poll `url` until it answers 200; fail with the container's output if it exits."""
    wait_until(lambda: not container.alive() or http_ok(url), 120, what)
    if not container.alive():
        raise RuntimeError(f"{what} exited at start:\n{container.output()}")


@dataclass(frozen=True)
class Deployed:
    """The two containers, the gateway pointed at the model over gRPC."""

    model: Container
    gateway: Container
    model_http_port: int
    gateway_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def container(self, component: str) -> Container:
        return self.gateway if component == "gateway" else self.model


def run_model(
    podman: Podman,
    image: str,
    log_dir: Path,
    init: bool,
    env: Mapping[str, str] | None = None,
    options: Sequence[str] = (),
) -> tuple[Container, int, int]:
    """Start the model image on free ports (with `env` and podman `options` added)."""
    http, grpc = free_port(), free_port()
    container = podman.start(
        image,
        {
            "OCR_MODEL_HTTP_PORT": str(http),
            "OCR_MODEL_GRPC_PORT": str(grpc),
            "OCR_MODEL_GRACE_PERIOD_S": "5",
            **(env or {}),
        },
        log_dir / f"model-{http}.log",
        init=init,
        options=options,
    )
    return container, http, grpc


def run_gateway(
    podman: Podman, image: str, log_dir: Path, model_grpc: int, init: bool
) -> tuple[Container, int]:
    """Start the gateway image on a free port, pointed at a model's gRPC port."""
    port = free_port()
    container = podman.start(
        image,
        {
            "OCR_GATEWAY_HOST": "127.0.0.1",
            "OCR_GATEWAY_PORT": str(port),
            "OCR_GATEWAY_MODEL_ADDRESS": f"127.0.0.1:{model_grpc}",
        },
        log_dir / f"gateway-{port}.log",
        init=init,
    )
    return container, port


@pytest.fixture(scope="module")
def deployed(
    podman: Podman, images: Images, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    logs = tmp_path_factory.mktemp("containers")
    started: list[Container] = []
    try:
        model, http, grpc = run_model(podman, images["model"], logs, init=True)
        started.append(model)
        wait_ready(model, f"http://127.0.0.1:{http}/v2/models/ocr-model/ready", "model container")
        gateway, port = run_gateway(podman, images["gateway"], logs, grpc, init=True)
        started.append(gateway)
        wait_ready(gateway, f"http://127.0.0.1:{port}/readyz", "gateway container")
        yield Deployed(model, gateway, http, port)
    finally:
        for container in reversed(started):
            container.remove()


def test_gateway_container_reads_text_through_model_container(deployed: Deployed) -> None:
    response = httpx.post(
        f"{deployed.url}/gateway/ocr",
        files={"image_file": ("line.png", line_png(TEXT), "image/png")},
        data={"psm": "7"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"].strip() == TEXT
    assert body["model"] == "ocr-model"


def test_gateway_readiness_asks_the_model_container(deployed: Deployed) -> None:
    """/readyz asks the model container over gRPC (ServerReady, ModelReady)."""
    ready = httpx.get(f"{deployed.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    model = httpx.get(f"http://127.0.0.1:{deployed.model_http_port}/v2/health/ready", timeout=10)
    assert model.status_code == 200


@pytest.mark.parametrize("component", COMPONENTS)
def test_runs_as_uid_10001(deployed: Deployed, component: str) -> None:
    container = deployed.container(component)
    uid, gid = container.exec("id", "-u"), container.exec("id", "-g")
    assert (uid.stdout.strip(), gid.stdout.strip()) == (UID, UID), uid.stderr + gid.stderr


@pytest.mark.parametrize("component", COMPONENTS)
def test_root_filesystem_is_read_only_and_tmp_writable(deployed: Deployed, component: str) -> None:
    container = deployed.container(component)
    refused = container.exec("touch", "/opt/venv/probe")
    assert refused.returncode != 0
    assert "Read-only file system" in refused.stderr
    assert container.exec("touch", f"{CONTAINER_TMP}/probe").returncode == 0


# Run as root inside the image so that nothing is hidden by permissions.
NO_TOOLCHAIN_SCRIPT = r"""
for tool in gcc cc c++ g++ clang make; do command -v "$tool"; done
for path in /root/.cache /nonexistent/.cache /usr/share/python-wheels /opt/venv/bin/pip /opt/pip; do
  [ -e "$path" ] && echo "$path"
done
find / -xdev \( -name '*.whl' -o -path '*/.cache/pip' -o -name 'pip' -path '*/site-packages/*' \) \
  -print 2>/dev/null
true
"""


@pytest.mark.parametrize("component", COMPONENTS)
def test_runtime_image_has_no_compiler_pip_or_caches(
    podman: Podman, images: Images, component: str
) -> None:
    result = podman.run(
        "run", "--rm", "--network=host", "--user", "0", "--entrypoint", "/bin/sh",
        images[component], "-c", NO_TOOLCHAIN_SCRIPT,
    )  # fmt: skip
    assert result.stdout.split() == [], f"found in {images[component]}: {result.stdout}"


@pytest.mark.parametrize("component", COMPONENTS)
def test_the_only_console_script_is_the_components_own(
    podman: Podman, images: Images, component: str
) -> None:
    """The project declares `ocr`, `ocr-gateway` and `ocr-model`; an image holds one of their
    packages, so the others would fail with ModuleNotFoundError."""
    result = podman.run(
        "run", "--rm", "--network=host", "--entrypoint", "/bin/sh", images[component],
        "-c", "cd /opt/venv/bin && ls ocr*",
    )  # fmt: skip
    assert result.stdout.split() == [f"ocr-{component}"]


@pytest.mark.parametrize("component", COMPONENTS)
def test_image_configuration(podman: Podman, images: Images, component: str) -> None:
    """Non-root numeric user, exec-form entrypoint, OCI labels with the git revision."""
    inspected = json.loads(podman.run("image", "inspect", images[component]).stdout)[0]
    config = inspected["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["/opt/venv/bin/python", "-m", component]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == f"ocr-{component}"
    assert labels["org.opencontainers.image.revision"] == images.revision
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    if component == "model":
        assert "OMP_THREAD_LIMIT" not in env  # the engine sets it, in one place
        assert env["OCR_MODEL_TESSDATA_DIR"] == "/usr/share/tesseract-ocr/5/tessdata"


def test_model_image_has_the_tesseract_cli_and_languages(podman: Podman, images: Images) -> None:
    """The pytesseract engine runs the CLI; both engines read Debian's tessdata."""
    result = podman.run(
        "run", "--rm", "--network=host", "--read-only", "--entrypoint", "tesseract",
        images["model"], "--list-langs",
    )  # fmt: skip
    languages = set((result.stdout + result.stderr).split())
    assert {"eng", "deu"} <= languages


#: Exit status after SIGTERM, per component and with or without `--init` (Kubernetes runs the
#: entrypoint as PID 1, without an init). Both exit 0 either way: uvicorn (>= 0.29) re-raises
#: SIGTERM after its graceful shutdown, and the gateway's own handler turns that into exit 0.
#: A 137 would mean SIGKILL after the grace period, i.e. SIGTERM was not handled.
EXPECTED_EXIT = {
    ("model", True): {0},
    ("model", False): {0},
    ("gateway", True): {0},
    ("gateway", False): {0},
}
#: The last line each component logs on a graceful shutdown.
SHUTDOWN_DONE = {
    "gateway": "Application shutdown complete",
    "model": "gRPC server shutdown complete",
}


@pytest.mark.parametrize("init", [True, False], ids=["init", "pid1"])
@pytest.mark.parametrize("component", COMPONENTS)
def test_sigterm_shuts_down_gracefully(
    podman: Podman,
    images: Images,
    tmp_path: Path,
    component: str,
    init: bool,
) -> None:
    if component == "model":
        container, http, _ = run_model(podman, images["model"], tmp_path, init=init)
        url = f"http://127.0.0.1:{http}/v2/models/ocr-model/ready"
    else:  # no model behind it: liveness does not need one
        container, port = run_gateway(podman, images["gateway"], tmp_path, free_port(), init=init)
        url = f"http://127.0.0.1:{port}/healthz"
    try:
        wait_ready(container, url, f"{component} container")
        code = container.stop(grace_s=30)
    finally:
        container.remove()
    output = container.output()
    assert container.stop_seconds < 20, f"SIGTERM took {container.stop_seconds:.1f}s:\n{output}"
    assert code in EXPECTED_EXIT[(component, init)], f"exit {code}:\n{output}"
    assert SHUTDOWN_DONE[component] in output, output


# --- the model under a real memory limit (the container's cgroup) ------------------------------

MIB = 1024 * 1024


def cgroup_memory(container: Container) -> dict[str, int]:
    """The container's memory cgroup as the kernel keeps it: `limit`, `peak` (the most it was
    charged) and `oom_kills` (processes the kernel killed for memory), cgroup v1 or v2."""
    script = (
        "cd /sys/fs/cgroup/memory 2>/dev/null && "
        "echo limit $(cat memory.limit_in_bytes) && echo peak $(cat memory.max_usage_in_bytes) "
        "&& grep oom_kill memory.oom_control || "
        "{ cd /sys/fs/cgroup && echo limit $(cat memory.max) && echo peak $(cat memory.peak) "
        "&& grep oom_kill memory.events; }"
    )
    result = container.exec("/bin/sh", "-c", script)
    found = dict(line.split()[:2] for line in result.stdout.splitlines() if line.strip())
    assert "limit" in found, (
        f"no memory cgroup read ({container.process.poll()}): {result.stdout} {result.stderr}"
    )
    return {
        "limit": int(found["limit"]),
        "peak": int(found["peak"]),
        "oom_kills": int(found.get("oom_kill", "0")),
    }


def worker_stops(http_port: int) -> dict[str, float]:
    """The model's worker stops by reason, from its /metrics."""
    samples = model_samples(f"http://127.0.0.1:{http_port}", "ocr_engine_worker_stops_total")
    return {dict(labels)["reason"]: value for labels, value in samples.items()}


def test_the_model_container_reads_the_worst_case_under_the_charts_memory_limit(
    podman: Podman, images: Images, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The security review's worst case, 24 clients sending 18.5 MiB uploads at once, against
    the model image under a real memory limit, the chart's (1 GiB, two workers, their 384 MiB
    limit): every page is read and the kernel kills nothing (a killed worker would show as
    `lost`, a killed serving process as the container gone). The kernel's own peak is
    printed."""
    chart = yaml.safe_load((ROOT / "helm" / "ocr-platform" / "values.yaml").read_text())
    limit_mib = 1024
    assert chart["model"]["resources"]["limits"]["memory"] == "1Gi"
    logs = tmp_path_factory.mktemp("memory")
    started: list[Container] = []
    try:
        model, http, grpc = run_model(
            podman,
            images["model"],
            logs,
            init=True,
            env={
                "OCR_MODEL_WORKERS": "2",
                "OCR_MODEL_WORKER_MEMORY_BYTES": str(chart["model"]["workerMemoryBytes"]),
            },
            options=[f"--memory={limit_mib}m", f"--memory-swap={limit_mib}m"],
        )
        started.append(model)
        wait_ready(model, f"http://127.0.0.1:{http}/v2/models/ocr-model/ready", "model container")
        gateway, port = run_gateway(podman, images["gateway"], logs, grpc, init=True)
        started.append(gateway)
        wait_ready(gateway, f"http://127.0.0.1:{port}/readyz", "gateway container")
        assert cgroup_memory(model)["limit"] == limit_mib * MIB

        upload = big_page(WORST_SIDE)
        client = polite_client(f"http://127.0.0.1:{port}", upload, 1)
        with ThreadPoolExecutor(WORST_CLIENTS) as pool:
            answers = [r for rs in pool.map(client, range(WORST_CLIENTS)) for r in rs]

        # Exit status 137: the kernel killed the serving process for memory.
        assert model.alive(), f"model container exited {model.process.poll()}"
        memory, stops = cgroup_memory(model), worker_stops(http)
        print(
            f"\n{limit_mib} MiB container: the kernel's peak {memory['peak'] / MIB:.0f} MiB, "
            f"worker stops {stops}, answers {dict(Counter(a.status_code for a in answers))}"
        )
        assert memory["oom_kills"] == 0
        assert stops.get("lost", 0) == 0
        check_answers(answers, WORST_CLIENTS)  # every page read
    finally:
        for container in reversed(started):
            container.remove()
