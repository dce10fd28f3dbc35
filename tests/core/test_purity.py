"""render_core is sans-IO: no module in it may import an I/O or concurrency module.

Checked statically with ``ast`` (``sys.modules`` would not do: the standard
library's own modules import ``socket`` behind the scenes). Both top-level and
function-local imports count.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

CORE = pathlib.Path(__file__).resolve().parents[2] / "render_core"

FORBIDDEN = {
    "asyncio",
    "concurrent",
    "email",  # email.utils imports socket
    "http",  # http.client opens connections
    "multiprocessing",
    "random",  # randomness is passed in
    "requests",
    "aiohttp",
    "h11",
    "httpx",
    "urllib3",
    "select",
    "selectors",
    "signal",
    "socket",
    "socketserver",
    "ssl",
    "subprocess",
    "threading",
    "time",  # time is passed in
    "render_transports",
    "render_devserver",
    "render_sdk",
}
ALLOWED_SUBMODULES = {"urllib.parse"}
FORBIDDEN_SUBMODULES = {"urllib.request", "urllib.error", "os.system"}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
        ):
            found.append((node.lineno, "__import__"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
        ):
            found.append((node.lineno, "importlib.import_module"))
    return found


def _violations(source: str) -> list[str]:
    problems = []
    for lineno, name in _imports(ast.parse(source)):
        root = name.split(".")[0]
        if name in ALLOWED_SUBMODULES:
            continue
        if (
            root in FORBIDDEN
            or name in FORBIDDEN_SUBMODULES
            or name in ("__import__", "importlib.import_module")
        ):
            problems.append(f"line {lineno}: {name}")
    return problems


MODULES = sorted(CORE.glob("**/*.py"))


def test_core_has_modules() -> None:
    names = {path.stem for path in MODULES}
    assert {"api", "codec", "errors", "http", "models", "sse", "backoff", "flows"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_imports_no_io(path: pathlib.Path) -> None:
    assert _violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "import socket",
        "import asyncio.events",
        "from time import monotonic",
        "from http import client",
        "def f():\n    import threading\n",
        "import email.utils",
        "from urllib.request import urlopen",
        "import random as r",
        "__import__('socket')",
        "import importlib\nimportlib.import_module('ssl')",
        "from render_transports import x",
    ],
)
def test_checker_catches_io_imports(source: str) -> None:
    """The checker itself must not be a test that cannot fail."""
    assert _violations(source) != []


@pytest.mark.parametrize(
    "source",
    ["import json", "from urllib.parse import quote", "import attrs", "from typing import Any"],
)
def test_checker_allows_pure_imports(source: str) -> None:
    assert _violations(source) == []
