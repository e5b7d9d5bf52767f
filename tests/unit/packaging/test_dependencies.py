"""Every third-party module the services import is a declared dependency of the project.

A module that arrives only through another package (grpc-interceptor through KServe, say)
breaks the day that package drops it; this reads our imports and the pyproject together.
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

#: The packages that ship; tests, bench and scripts use the dev extra.
SHIPPED = ("common", "contract", "gateway", "model", "telemetry")
FIRST_PARTY = frozenset(SHIPPED)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    """Distributions named by the base dependencies and the gateway and model extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"]]
    for extra in ("gateway", "model"):
        specs += project["optional-dependencies"][extra]
    return {_normal(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in specs}


def imported_modules() -> dict[str, set[str]]:
    """Top-level third-party module → the files importing it."""
    found: dict[str, set[str]] = {}
    for package in SHIPPED:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
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


def test_every_imported_module_comes_from_a_declared_distribution() -> None:
    owners = packages_distributions()
    wanted = declared()
    undeclared = {
        module: sorted(files)
        for module, files in imported_modules().items()
        if not {_normal(d) for d in owners.get(module, [])} & wanted
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_check_sees_the_imports_it_must() -> None:
    modules = imported_modules()
    # Imported only by our code, easy to forget: the check must see them.
    assert {"grpc_interceptor", "fastapi", "starlette", "tesserocr", "kserve"} <= set(modules)
