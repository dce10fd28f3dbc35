"""The samples of the official ``render`` 1.x package run unchanged on this SDK.

The samples are read at test time from the official package installed in its own venv
(its README, and the docstrings of ``render``, ``Workflows`` and ``Workflows.task``);
nothing of them is copied here. Task-definition samples are served by our dev server
through ``render-workflows main:APP`` and every task they define is run; client samples
run as scripts with our SDK against a dev server serving ``my-workflow``.

Harness rules (the context a sample takes for granted, never a change to it):
- a README block that does not create its own ``Workflows`` continues the previous one;
- docstring samples, written without imports, get ``from render import *``, and
  ``app = Workflows()`` when they decorate with an ``app`` they do not create;
- a module a sample imports its apps from (``from tasks_a import app``) is provided;
- a name a sample uses without defining it (``order_id``) is bound to a string;
- top-level ``await`` runs inside ``asyncio.run``;
- object storage, key value and sandbox samples are out of scope and skipped.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from render_devserver.server import DevServer
from render_sdk import Render
from tests.compat.test_official_clients import PROGRAMS, REPO, _env

OUT_OF_SCOPE = ("experimental", "key_value", "redis", "storage", "sandbox", "Sandbox")
INPUTS = {"int": 3, "str": "x", "float": 1.5, "list[int]": [1, 2, 3], "list": [1, 2, 3]}
# What the samples' tasks return for INPUTS, where a sample names the task.
EXPECTED = {"square": 9, "add_squares": 18, "sum_squares": 14, "quick_task": 4,
            "retryable_task": 6, "my_task": 6, "double_twice": 12, "simple_task": 6}  # fmt: skip


@pytest.fixture(scope="module")
def official_text(official_1x: Any) -> dict[str, Any]:
    done = subprocess.run(
        [official_1x.python, str(PROGRAMS / "official_samples_dump.py")],
        capture_output=True, text=True, timeout=120, env=_env(), check=True,
    )  # fmt: skip
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _readme_blocks(readme: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"```python\n(.*?)```", readme, re.DOTALL)]


def _docstring_blocks(doc: str) -> list[str]:
    """Indented runs of lines after a line ending with ':' (Google-style examples)."""
    blocks: list[str] = []
    lines = doc.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        indent = len(line) - len(line.lstrip())
        if line.rstrip().endswith(":") and index + 1 < len(lines):
            body: list[str] = []
            cursor = index + 1
            while cursor < len(lines) and (
                not lines[cursor].strip()
                or len(lines[cursor]) - len(lines[cursor].lstrip()) > indent
            ):
                body.append(lines[cursor])
                cursor += 1
            code = textwrap.dedent("\n".join(body)).strip()
            if code and _compiles(code):
                blocks.append(code)
                index = cursor
                continue
        index += 1
    return blocks


def _compiles(code: str) -> bool:
    try:
        compile(code, "<sample>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError:
        return False
    return "(" in code  # prose that happens to parse is not a sample


def _in_scope(code: str) -> bool:
    return not any(word in code for word in OUT_OF_SCOPE)


def _is_definition(code: str) -> bool:
    return "@app.task" in code or "Workflows" in code


def _programs(text: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(task-definition programs, client programs), README first, then docstrings."""
    definitions: list[str] = []
    clients: list[str] = []
    sources = [(block, False) for block in _readme_blocks(text["readme"])]
    for doc in text["docstrings"]:
        sources += [(block, True) for block in _docstring_blocks(doc)]
    for code, from_docstring in sources:
        if not _in_scope(code):
            continue
        preamble = "import asyncio\nfrom render import *\n" if from_docstring else ""
        if _is_definition(code) and "Render(" not in code and "RenderAsync(" not in code:
            starts_new = "= Workflows(" in code or not definitions or from_docstring
            if starts_new:
                definitions.append(preamble + code)
            else:
                definitions[-1] += "\n\n" + code
        elif "Render" in code or "render." in code:
            if "Render(" in code or "RenderAsync(" in code or not clients:
                clients.append(preamble + code)
            else:
                clients[-1] += "\n\n" + code
    return definitions, clients


def test_the_samples_were_found(official_text: dict[str, Any]) -> None:
    definitions, clients = _programs(official_text)
    assert len(definitions) >= 4, definitions
    assert len(clients) >= 3, clients
    assert any("ctx.run" in program for program in definitions)


def _start_target(program: str) -> str:
    target = None
    for node in ast.parse(program).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and "Workflows" in ast.unparse(node.value.func)
        ):
            target = ast.unparse(node.targets[0])
    assert target is not None, program
    return target


def _provide_imported_apps(program: str, project: Any) -> None:
    for node in ast.walk(ast.parse(program)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tasks"):
            (project / f"{node.module}.py").write_text(
                "from render import TaskContext, Workflows\n\napp = Workflows()\n\n\n"
                f"@app.task\ndef {node.module}_task(ctx: TaskContext, x: int) -> int:\n"
                "    return x\n"
            )


def _free_names(program: str) -> list[str]:
    tree = ast.parse(program)
    bound = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            bound.add(node.name)
            bound |= {a.arg for a in node.args.args + node.args.kwonlyargs}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    loaded = [
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    ]
    return sorted({name for name in loaded if name not in bound and not hasattr(builtins, name)})


def _run_definition_sample(program: str, project: Any) -> None:
    if "from render" not in program:
        program = "from render import *\n" + program  # a continuation block's own imports
    if "= Workflows" not in program:
        program = program.replace(
            "from render import *\n", "from render import *\napp = Workflows()\n", 1
        )
    (project / "main.py").write_text(program)
    _provide_imported_apps(program, project)
    target = _start_target(program)
    dev = DevServer(
        [sys.executable, "-m", "render_sdk.cli", f"main:{target}"],
        port=0, db=":memory:", cwd=str(project), env=_env({"PYTHONPATH": str(REPO)}),
        workflow_slug="samples", concurrency=8, ping_interval=0.5,
    )  # fmt: skip
    with dev.run_in_thread() as server, Render(base_url=server.url, env={}) as client:
        tasks = client.workflows.list_tasks()
        assert tasks, f"registered no task:\n{program}"
        for task in tasks:
            details = client.workflows.run_task(
                f"samples/{task.name}", _inputs_for(program, task.name)
            )
            assert details.status.is_success, (task.name, details)
            if task.name in EXPECTED:
                assert details.results == [EXPECTED[task.name]], task.name


def test_task_definition_samples_register_and_run(
    official_text: dict[str, Any], tmp_path: Any
) -> None:
    definitions, _ = _programs(official_text)
    for number, program in enumerate(definitions):
        project = tmp_path / f"sample-{number}"
        project.mkdir()
        try:
            _run_definition_sample(program, project)
        except Exception as exc:
            pytest.fail(f"definition sample {number} failed: {exc!r}\n{program}", pytrace=False)


def _inputs_for(program: str, name: str) -> list[Any]:
    """Inputs for the task function ``name`` of ``program``, from its annotations."""
    for node in ast.walk(ast.parse(program)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            params = node.args.args[1:]  # after the context
            return [INPUTS.get(ast.unparse(p.annotation) if p.annotation else "int", 3)
                    for p in params]  # fmt: skip
    return [3]  # a task imported from a provided module takes one int


@pytest.fixture(scope="module")
def samples_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    project = tmp_path_factory.mktemp("samples-service")
    shutil.copy(PROGRAMS / "samples_service.py", project / "main.py")
    dev = DevServer(
        [sys.executable, "-m", "render_sdk.cli", "main:app"],
        port=0, db=":memory:", cwd=str(project), env=_env({"PYTHONPATH": str(REPO)}),
        workflow_slug="my-workflow", concurrency=8, ping_interval=0.5,
    )  # fmt: skip
    with dev.run_in_thread() as running:
        yield running


def _run_client_sample(program: str, server: DevServer, directory: Any) -> None:
    placeholders = "".join(f"{name} = {name!r}\n" for name in _free_names(program))
    tree = ast.parse(program)
    if any(isinstance(n, ast.Await) for n in ast.walk(tree)) and not any(
        isinstance(n, ast.AsyncFunctionDef) for n in ast.walk(tree)
    ):
        script = placeholders + (
            "import ast, asyncio\n"
            f"code = compile({program!r}, 'sample', 'exec', flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)\n"
            "asyncio.run(eval(code, globals()))\n"
        )
    else:
        script = placeholders + program
    (directory / "sample.py").write_text(script)
    extra = {"RENDER_USE_LOCAL_DEV": "true", "RENDER_LOCAL_DEV_URL": server.url,
             "PYTHONPATH": str(REPO)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(directory / "sample.py")], capture_output=True, text=True,
        timeout=120, cwd=directory, env=_env(extra), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def test_client_samples_run(
    official_text: dict[str, Any], samples_server: DevServer, tmp_path: Any
) -> None:
    _, clients = _programs(official_text)
    for number, program in enumerate(clients):
        directory = tmp_path / f"client-{number}"
        directory.mkdir()
        try:
            _run_client_sample(program, samples_server, directory)
        except AssertionError as exc:
            pytest.fail(f"client sample {number} failed: {exc}\n{program}", pytrace=False)
