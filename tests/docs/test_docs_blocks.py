"""Every Python block of README.md and docs/*.md runs, as written, against a dev server.

Blocks are read from the Markdown files at test time, so the docs cannot drift from
what runs. An HTML comment right before a block says how to run it (invisible in the
rendered page); without one the kind is guessed from the code:

- ``<!-- test: workflow [slug=S] [serves] -->``: a workflow program. It is registered
  by a real dev server and every task it declares must be there. The block marked
  ``serves`` is the program behind the dev server that ``client`` blocks talk to.
- ``<!-- test: file=PATH group=G -->``: one file of a multi-file layout. The files of a
  group are written into one directory and the first one is the program to register.
- ``<!-- test: client -->``: a program using the clients. It runs as a subprocess with
  ``RENDER_USE_LOCAL_DEV=true`` and ``RENDER_LOCAL_DEV_URL`` pointing at the shared
  dev server; ``localhost:8120`` in the code is the address of that server.
- ``<!-- test: script -->``: a program that needs no server.
- ``<!-- test: skip reason -->``: a fragment, not meant to run.

``print(x)  # expected`` lines are checked: the expected text must be in the output.
"""

from __future__ import annotations

import ast
import os
import pathlib
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from render_devserver.server import DevServer
from render_sdk import Render

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"(?:<!--\s*test:\s*(?P<directive>[^>]*?)\s*-->\s*\n)?```python\n(?P<code>.*?)```", re.S
)
EXPECTED = re.compile(r"^\s*print\(.*\)\s+#\s+(?P<expected>.+?)\s*$", re.M)
DEFAULT_ADDRESS = "localhost:8120"
SLUG = "my-workflow"


@dataclass
class Block:
    page: str
    index: int
    code: str
    kind: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.page}#{self.index}"


def _parse_directive(text: str) -> tuple[str | None, dict[str, str]]:
    words = shlex.split(text)
    kind: str | None = None
    options: dict[str, str] = {}
    for word in words:
        if "=" in word:
            key, _, value = word.partition("=")
            options[key] = value
        elif kind is None:
            kind = word
        else:
            options[word] = "true"
    if kind is None and "file" in options:
        kind = "file"
    return kind, options


def _guess(code: str) -> str:
    if "app.start()" in code or ("Workflows(" in code and ".task" in code):
        return "workflow"
    if re.search(r"\b(Render|RenderAsync|DevServer)\(|resolve_config\(", code):
        return "client"
    return "script"


def collect() -> list[Block]:
    blocks: list[Block] = []
    for path in PAGES:
        text = path.read_text(encoding="utf-8")
        for index, match in enumerate(FENCE.finditer(text)):
            kind, options = _parse_directive(match.group("directive") or "")
            code = match.group("code")
            blocks.append(
                Block(str(path.relative_to(ROOT)), index, code, kind or _guess(code), options)
            )
    return blocks


BLOCKS = collect()


def declared_tasks(code: str) -> set[str]:
    """Names of the functions decorated with ``@<app>.task`` (or a ``name=`` override)."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if isinstance(target, ast.Attribute) and target.attr == "task":
                explicit = [k.value for k in (call.keywords if call else []) if k.arg == "name"]
                name = (
                    explicit[0].value
                    if explicit and isinstance(explicit[0], ast.Constant)
                    else None
                )
                names.add(str(name) if name else node.name)
    return names


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def check_expected(code: str, output: str, address: str) -> None:
    for match in EXPECTED.finditer(code):
        expected = match.group("expected").replace(DEFAULT_ADDRESS, address)
        assert expected in output, f"expected {expected!r} in the output:\n{output}"


def run_program(directory: pathlib.Path, code: str, env: dict[str, str]) -> str:
    program = directory / "block.py"
    program.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(program)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def registered(directory: pathlib.Path, program: str, slug: str) -> set[str]:
    server = DevServer(
        [sys.executable, program],
        port=0,
        db=":memory:",
        cwd=str(directory),
        env=clean_env(),
        workflow_slug=slug,
    )
    with server.run_in_thread() as running, Render(base_url=running.url, env={}) as render:
        return {task.name for task in render.workflows.list_tasks()}


def test_every_page_is_scanned_and_every_kind_known() -> None:
    assert len(BLOCKS) >= 30
    assert {b.kind for b in BLOCKS} <= {"workflow", "file", "client", "script", "skip"}
    assert sum(1 for b in BLOCKS if "serves" in b.options) == 1


# --- workflow programs -----------------------------------------------------------------


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "workflow"], ids=lambda b: b.id)
def test_workflow_block_registers_its_tasks(block: Block, tmp_path: pathlib.Path) -> None:
    code = block.code
    if "app.start()" not in code:
        code += "\n\nif __name__ == '__main__':\n    app.start()\n"
    (tmp_path / "main.py").write_text(code, encoding="utf-8")
    expected = declared_tasks(block.code)
    assert expected, "a workflow block declares tasks"
    assert registered(tmp_path, "main.py", block.options.get("slug", SLUG)) == expected


GROUPS: dict[str, list[Block]] = {}
for _block in BLOCKS:
    if _block.kind == "file":
        GROUPS.setdefault(_block.options["group"], []).append(_block)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_file_group_registers_its_tasks(group: str, tmp_path: pathlib.Path) -> None:
    blocks = GROUPS[group]
    for block in blocks:
        path = tmp_path / block.options["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.code, encoding="utf-8")
    first = tmp_path / blocks[0].options["file"]
    expected = set().union(*(declared_tasks(b.code) for b in blocks))
    assert registered(first.parent, first.name, SLUG) == expected


# --- client programs, against one dev server running the documented workflow -----------


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    serving = next(b for b in BLOCKS if "serves" in b.options)
    directory = tmp_path_factory.mktemp("docs-workflow")
    (directory / "main.py").write_text(serving.code, encoding="utf-8")
    server = DevServer(
        [sys.executable, "main.py"],
        port=0,
        db=":memory:",
        cwd=str(directory),
        env=clean_env(),
        workflow_slug=SLUG,
    )
    with server.run_in_thread() as running:
        yield running


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "client"], ids=lambda b: b.id)
def test_client_block_runs(block: Block, docs_server: DevServer, tmp_path: pathlib.Path) -> None:
    address = docs_server.url.removeprefix("http://")
    # Programs that start their own dev server run the documented workflow too.
    serving = next(b for b in BLOCKS if "serves" in b.options)
    (tmp_path / "main.py").write_text(serving.code, encoding="utf-8")
    env = clean_env()
    env["RENDER_USE_LOCAL_DEV"] = "true"
    env["RENDER_LOCAL_DEV_URL"] = docs_server.url
    code = block.code.replace(DEFAULT_ADDRESS, address)
    output = run_program(tmp_path, code, env)
    check_expected(block.code, output, address)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "script"], ids=lambda b: b.id)
def test_script_block_runs(block: Block, tmp_path: pathlib.Path) -> None:
    output = run_program(tmp_path, block.code, clean_env())
    check_expected(block.code, output, DEFAULT_ADDRESS)
