"""The packages' layering: dependencies point down, and no modules import in a circle.

``render_core`` (sans-IO) is the bottom; ``render_transports`` (the I/O adapters) sits
on it; ``render_sdk`` (the faces, the worker runtime) on both; ``render_devserver`` may
use all three, and ``render`` is the 1.x name of ``render_sdk``. ``render_sdk`` uses
the dev server only from inside functions (the testing harness, ``render-workflows
dev``), so importing it never loads the server.

Checked statically with ``ast``: a module-level import is one that runs when the
module is imported; an import inside a function, or under ``if TYPE_CHECKING:``, is
deferred.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

OURS = ("render_core", "render_transports", "render_sdk", "render_devserver", "render")

# What each package may import when one of its modules is imported.
AT_IMPORT: dict[str, set[str]] = {
    "render_core": {"render_core"},
    "render_transports": {"render_core", "render_transports"},
    "render_sdk": {"render_core", "render_transports", "render_sdk"},
    "render_devserver": {"render_core", "render_transports", "render_sdk", "render_devserver"},
    "render": {"render_core", "render_sdk", "render"},
}
# What it may import inside a function or for type checking only.
DEFERRED: dict[str, set[str]] = {
    **AT_IMPORT,
    "render_sdk": AT_IMPORT["render_sdk"] | {"render_devserver"},
}

# render_transports is the adapters, nothing else.
ADAPTERS = {
    "__init__",
    "_http1",
    "_http11",
    "base",
    "requests_transport",
    "aiohttp_transport",
    "h11_transport",
    "keepalive_transport",
}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports included)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _targets(name: str, known: set[str]) -> str:
    """``a.b.c`` if that is one of our modules, else the longest known prefix (or name)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return name


def imports(
    source: str, module: str, known: set[str], is_package: bool = False
) -> list[tuple[int, str, bool]]:
    """Every import of ``source``: (line, imported module, runs at import time)."""
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, at_import: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            at_import = False
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, at_import)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, _targets(a.name, known), at_import) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node, is_package)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                # `from pkg import sub` imports the submodule when there is one.
                found.append(
                    (node.lineno, full if full in known else _targets(base, known), at_import)
                )
        for child in ast.iter_child_nodes(node):
            visit(child, at_import)

    visit(ast.parse(source), True)
    return found


def _sources() -> dict[str, pathlib.Path]:
    return {
        _module_name(path): path
        for package in OURS
        for path in sorted((ROOT / package).glob("**/*.py"))
    }


SOURCES = _sources()
KNOWN = set(SOURCES)


def layer_violations(module: str, source: str, is_package: bool = False) -> list[str]:
    package = module.split(".", maxsplit=1)[0]
    problems = []
    for line, target, at_import in imports(source, module, KNOWN, is_package):
        root = target.split(".")[0]
        if root not in OURS:
            continue
        allowed = AT_IMPORT[package] if at_import else DEFERRED[package]
        if root not in allowed:
            when = "at import" if at_import else "deferred"
            problems.append(f"{module}:{line} imports {target} ({when})")
    return problems


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in SOURCES.items():
        found = imports(path.read_text(encoding="utf-8"), module, KNOWN, path.stem == "__init__")
        graph[module] = {t for _, t, now in found if now and t in KNOWN and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph`` (one path per circle found by a depth-first walk)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return found


def test_every_package_is_read() -> None:
    assert {m.split(".")[0] for m in SOURCES} == set(OURS)
    assert {"render_sdk.client.clients", "render_sdk.worker.runtime"} <= KNOWN


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_imports_point_down(module: str) -> None:
    path = SOURCES[module]
    source = path.read_text(encoding="utf-8")
    assert layer_violations(module, source, path.stem == "__init__") == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert cycles(_graph()) == []


def test_render_transports_holds_only_adapters() -> None:
    names = {path.stem for path in (ROOT / "render_transports").glob("*.py")}
    assert names == ADAPTERS
    assert not [
        p for p in (ROOT / "render_transports").iterdir() if p.is_dir() and p.name != "__pycache__"
    ]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("render_core.api", "import render_transports.base"),
        ("render_core.api", "def f():\n    from render_sdk import Render\n"),
        ("render_core.api", "if TYPE_CHECKING:\n    from render_devserver import server\n"),
        ("render_transports.base", "from render_sdk.client import clients"),
        ("render_transports.base", "def f():\n    import render_devserver.server\n"),
        ("render_transports.base", "import render"),
        ("render_sdk.testing", "from render_devserver.server import DevServer"),
        ("render_sdk.testing", "class C:\n    import render_devserver\n"),
        ("render_sdk.client.clients", "from ...render_devserver import server"),
    ],
)
def test_the_checker_catches_an_upward_import(module: str, source: str) -> None:
    """The checker itself must not be a test that cannot fail."""
    assert layer_violations(module, source) != []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("render_core.api", "from render_core import http\nimport json"),
        ("render_transports.base", "from render_core.http import Request"),
        ("render_sdk.testing", "def f():\n    from render_devserver.server import DevServer\n"),
        ("render_sdk.testing", "if TYPE_CHECKING:\n    from render_devserver import server\n"),
        ("render_sdk.client.clients", "from . import waiting\nfrom .. import _otel"),
        ("render_devserver.api", "import render_sdk"),
    ],
)
def test_the_checker_allows_a_downward_import(module: str, source: str) -> None:
    assert layer_violations(module, source) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
