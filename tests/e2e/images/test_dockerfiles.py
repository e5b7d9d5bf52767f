"""Static checks of gateway/Dockerfile, model/Dockerfile and .dockerignore (no engine needed).

Multi-stage, base images pinned, a numeric non-root USER, an exec-form ENTRYPOINT, no remote
ADD, no toolchain in the runtime stage, and a build context holding only what `pip install .`
needs.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest

from tests.support.dockerfiles import dockerfile, parse
from tests.support.processes import ROOT

pytestmark = pytest.mark.unit

COMPONENTS = ("gateway", "model")
PORTS = {"gateway": {"8001"}, "model": {"8080", "8081"}}


@pytest.mark.parametrize("component", COMPONENTS)
def test_multi_stage_with_pinned_bases(component: str) -> None:
    stages = dockerfile(component)
    assert len(stages) >= 2
    names: set[str] = set()
    for stage in stages:
        if stage.image not in names:  # FROM an earlier stage needs no tag
            assert "$" not in stage.image, f"unresolved build arg in FROM {stage.image}"
            repository, _, tag = stage.image.partition("@")[0].rpartition(":")
            assert repository, f"untagged FROM {stage.image}"
            assert "/" not in tag, f"untagged FROM {stage.image}"
            assert tag != "latest", f"FROM {stage.image}"
        if stage.name:
            names.add(stage.name)


@pytest.mark.parametrize("component", COMPONENTS)
def test_base_image_is_a_build_arg(component: str) -> None:
    global_args, stages = parse(ROOT / component / "Dockerfile")
    assert global_args.get("BASE_IMAGE") == "debian:bookworm-slim"
    assert all(stage.image == "debian:bookworm-slim" for stage in stages)


@pytest.mark.parametrize("component", COMPONENTS)
def test_runtime_runs_python_as_numeric_non_root_user(component: str) -> None:
    runtime = dockerfile(component)[-1]
    users = runtime.all("USER")
    assert users, "the runtime stage sets USER"
    # Numeric, so that Kubernetes' runAsNonRoot can verify it without an /etc/passwd lookup.
    assert users[-1] == "10001:10001"


@pytest.mark.parametrize("component", COMPONENTS)
def test_entrypoint_is_exec_form(component: str) -> None:
    entrypoints = dockerfile(component)[-1].all("ENTRYPOINT")
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["/opt/venv/bin/python", "-m", component]


@pytest.mark.parametrize("component", COMPONENTS)
def test_no_remote_add(component: str) -> None:
    for stage in dockerfile(component):
        for arguments in stage.all("ADD"):
            assert not re.search(r"\b(https?|git)://|git@", arguments), f"ADD {arguments}"


@pytest.mark.parametrize("component", COMPONENTS)
def test_runtime_stage_installs_no_toolchain(component: str) -> None:
    runtime = dockerfile(component)[-1]
    script = " ".join(runtime.all("RUN"))
    for package in ("build-essential", "gcc", "g++", "python3-dev", "python3-pip", "pip install"):
        assert package not in script, f"runtime stage: {package}"
    if "apt-get install" in script:
        assert "--no-install-recommends" in script
        assert "rm -rf /var/lib/apt/lists/*" in script
    copies = runtime.all("COPY")
    assert all(c.startswith("--from=") for c in copies), "the runtime copies from the builder only"


@pytest.mark.parametrize("component", COMPONENTS)
def test_runtime_environment_ports_and_labels(component: str) -> None:
    runtime = dockerfile(component)[-1]
    env = " ".join(runtime.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    if component == "model":
        assert "OMP_THREAD_LIMIT" not in env  # the engine sets it, in one place
        assert "OCR_MODEL_TESSDATA_DIR=/usr/share/tesseract-ocr/5/tessdata" in env
        assert "tesseract-ocr-eng" in " ".join(runtime.all("RUN"))
        assert "tesseract-ocr-osd" in " ".join(runtime.all("RUN"))  # rotate=auto
    assert {p for e in runtime.all("EXPOSE") for p in e.split()} == PORTS[component]
    labels = " ".join(runtime.all("LABEL"))
    assert f'org.opencontainers.image.title="ocr-{component}"' in labels
    assert 'org.opencontainers.image.revision="${REVISION}"' in labels


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(excludes?, pattern) per .dockerignore line, in Docker's syntax (`**` any depth)."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((not negated, re.compile(regex)))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last matching line wins; a line matching a parent directory counts."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for excludes, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            verdict = excludes
    return verdict


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".tools/podman/root/overlay",
        "node_modules/.bin/buf",
        "tests/unit/gateway/test_app.py",
        ".git/HEAD",
        ".mypy_cache/3.11/cache.db",
        "gateway/__pycache__/app.cpython-311.pyc",
        "model/engine/__pycache__/pool.cpython-311.pyc",
        "ocr_platform.egg-info/PKG-INFO",
        "helm/ocr-platform/values.yaml",
        "build/lib/gateway/app.py",
    ],
)
def test_dockerignore_keeps_local_state_out(path: str) -> None:
    assert ignored(path, dockerignore_rules())


@pytest.mark.parametrize("component", COMPONENTS)
def test_dockerignore_lets_every_copied_source_in(component: str) -> None:
    rules = dockerignore_rules()
    for stage in dockerfile(component):
        for arguments in stage.all("COPY"):
            if arguments.startswith("--from="):
                continue
            for source in shlex.split(arguments)[:-1]:
                source = source.rstrip("/")
                assert (ROOT / source).exists(), source
                assert not ignored(source, rules), f"{source} is excluded from the context"
                if (ROOT / source).is_dir():
                    files = [
                        p for p in (ROOT / source).rglob("*.py") if "__pycache__" not in p.parts
                    ]
                    kept = [p for p in files if not ignored(str(p.relative_to(ROOT)), rules)]
                    assert kept == files


@pytest.mark.parametrize("component", COMPONENTS)
def test_image_carries_only_its_own_code(component: str) -> None:
    """The other component's code stays out, and so do its changes from this image's cache."""
    copied = {
        shlex.split(arguments)[0].rstrip("/")
        for stage in dockerfile(component)
        for arguments in stage.all("COPY")
        if not arguments.startswith("--from=")
    }
    assert {component, "contract", "common", "telemetry"} <= copied
    assert not copied & (set(COMPONENTS) - {component})
