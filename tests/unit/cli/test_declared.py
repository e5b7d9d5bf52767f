"""Every third-party module `ocr` imports comes from a distribution its install declares.

`pip install 'ocr-platform[cli]'` (and `make venv`/`make run`) must bring everything the
command line imports: the base dependencies, the `cli` extra and what it names (the gateway
extra, for --grpc). The shipped-package check in tests/unit/packaging does not read cli/.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

import pytest

from tests.support.processes import ROOT

pytestmark = pytest.mark.unit

FIRST_PARTY = frozenset({"cli", "common", "contract", "gateway", "model", "telemetry"})


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name(spec: str) -> str:
    return _normal(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0])


def declared_for_cli() -> set[str]:
    """Distributions `pip install 'ocr-platform[cli]'` installs by name (extras followed)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names: set[str] = set()
    pending = [*project["dependencies"], *extras["cli"]]
    seen_extras: set[str] = set()
    while pending:
        spec = pending.pop()
        self_extras = re.fullmatch(r"ocr-platform\[([a-z,]+)\]", spec.strip())
        if self_extras:
            for extra in self_extras[1].split(","):
                if extra not in seen_extras:
                    seen_extras.add(extra)
                    pending.extend(extras[extra])
            continue
        names.add(_name(spec))
    return names


def cli_imports() -> dict[str, set[str]]:
    """Top-level third-party module → the cli/ files importing it."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_cli_import_is_declared() -> None:
    owners = packages_distributions()
    wanted = declared_for_cli()
    undeclared = {
        module: sorted(files)
        for module, files in cli_imports().items()
        if not {_normal(d) for d in owners.get(module, [])} & wanted
    }
    assert not undeclared, f"imported by cli/ but not declared for it: {undeclared}"
    # The check sees the imports it must.
    assert {"aiohttp", "rich", "pikepdf", "PIL"} <= set(cli_imports())


def test_the_console_script_and_the_package_ship() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["ocr"] == "cli.app:main"
    assert "cli*" in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    makefile = (ROOT / "Makefile").read_text()
    # `make run` (and so `make venv`) installs the cli extra.
    assert re.search(r"pip install .*-e '\.\[[a-z,]*\bcli\b[a-z,]*\]'", makefile)
