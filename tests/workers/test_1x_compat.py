"""Code written for the official ``render`` 1.x SDK, on this SDK's worker side.

One implementation under two import names; the context rule; ``TaskDefinition`` and
``Options``; a registry per ``Workflows`` object; the deprecated module-level
``task``/``start``; the console script's last-colon split. Workers run as real
processes against the loopback fake task socket.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import render_sdk
from render_sdk import Options, Retry, TaskRunMetadata, Workflows
from tests.support.fake_task_socket import FakeTaskSocket
from tests.support.programs import ROOT, output_of, run_program

# The names the official 1.5 package exports at each path (its ``__all__``, minus the
# out-of-scope object storage, key value and sandbox clients), plus ours.
NAMES = {
    "": [
        "Options", "Render", "RenderAsync", "Retry", "TaskContext", "TaskRunMetadata",
        "Workflows", "start", "task", "__version__",
    ],
    ".client": [
        "CursorParam", "LimitParam", "ListTaskRunsParams", "OwnerIDParam",
        "SyncWorkflowsService", "TaskData", "TaskRun", "TaskRunDetails", "TaskRunStatus",
        "TaskSlug", "WorkflowsService",
    ],
    ".client.errors": [
        "ClientError", "RateLimitError", "RenderError", "ServerError", "TaskRunError",
        "TimeoutError",
    ],
    ".client.types": [
        "CursorParam", "LimitParam", "ListTaskRunsParams", "OwnerIDParam", "TaskData",
        "TaskRun", "TaskRunDetails", "TaskRunStatus", "TaskSlug",
    ],
    ".workflows": [
        "Options", "Retry", "TaskContext", "TaskDefinition", "TaskRegistry", "TaskRunMetadata",
        "WorkflowTaskContext", "Workflows", "start", "task",
    ],
}  # fmt: skip


@pytest.mark.parametrize("path", sorted(NAMES))
def test_one_implementation_two_import_names(path: str) -> None:
    ours = importlib.import_module("render_sdk" + path)
    alias = importlib.import_module("render" + path)
    for name in NAMES[path]:
        assert getattr(alias, name) is getattr(ours, name), f"render{path}.{name}"
    for name in ours.__all__:
        assert getattr(alias, name) is getattr(ours, name), f"render{path}.{name}"
    assert sorted(alias.__all__) == sorted(ours.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = alias.Nope


def test_names_mean_what_they_mean_in_1x() -> None:
    import render.client
    from render_sdk.client.clients import AsyncWorkflowsService, SyncWorkflowsService

    # In 1.x the plain name is the asyncio service, and the sync one says so.
    assert render.client.WorkflowsService is AsyncWorkflowsService
    assert render.client.SyncWorkflowsService is SyncWorkflowsService
    assert render.client.TaskData == list[Any] | dict[str, Any]
    assert TaskRunMetadata() == TaskRunMetadata(None, None, None)
    with pytest.raises(AttributeError):
        TaskRunMetadata().task_run_id = "x"  # type: ignore[misc]


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "statement",
    ["import {}", "from {} import Workflows, TaskContext", "from {}.client.errors import *"],
)
def test_importing_render_costs_what_importing_render_sdk_costs(statement: str) -> None:
    ours = _modules_after(statement.format("render_sdk"))
    alias = _modules_after(statement.format("render"))
    extra = {name for name in alias - ours if name == "render" or name.startswith("render.")}
    assert alias - ours == extra, "import render loads more than render_sdk does"
    assert ours <= alias


# -- the context rule -------------------------------------------------------------------


def test_context_parameters_are_never_inputs() -> None:
    app = Workflows()

    @app.task
    def annotated(ctx: render_sdk.TaskContext, a: int) -> int:
        return a

    @app.task
    def bare(ctx, a):  # type: ignore[no-untyped-def]
        return a

    @app.task
    def named_context(context, a: int) -> int:  # type: ignore[no-untyped-def]
        return a

    @app.task
    def seed_style(a: int) -> int:
        return a

    @app.task
    def not_a_context(thing, a: int) -> int:  # type: ignore[no-untyped-def]
        return a

    @app.task
    def annotated_other(ctx: int, a: int) -> int:
        return a

    def inputs(name: str) -> list[str]:
        return [p.name for p in app.tasks[name].parameters]

    assert inputs("annotated") == inputs("bare") == inputs("named_context") == ["a"]
    assert inputs("seed_style") == ["a"]
    assert inputs("not_a_context") == ["thing", "a"]
    assert inputs("annotated_other") == ["ctx", "a"]  # an int is not a context


class StandIn:
    """A test's own context: TaskContext is a Protocol, no subclassing needed."""

    def __init__(self) -> None:
        self.metadata = TaskRunMetadata(task_run_id="trn-test")
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def run(self, task: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((task.name, args))
        return task.func(self, *args, **kwargs)


async def test_a_stand_in_context_drives_a_task_body() -> None:
    app = Workflows()

    @app.task
    def double(ctx: render_sdk.TaskContext, x: int) -> int:
        return 2 * x

    @app.task
    async def twice(ctx: render_sdk.TaskContext, x: int) -> dict[str, Any]:
        return {"value": await ctx.run(double, await ctx.run(double, x)),
                "run": ctx.metadata.task_run_id}  # fmt: skip

    stand_in = StandIn()
    # Outside a run, calling a definition is a plain call of its function.
    assert await twice(stand_in, 3) == {"value": 12, "run": "trn-test"}
    assert await twice.func(stand_in, 3) == {"value": 12, "run": "trn-test"}
    assert stand_in.calls == [("double", (3,)), ("double", (6,))] * 2


# -- TaskDefinition and Options ---------------------------------------------------------


def test_task_definition_carries_name_func_and_options() -> None:
    app = Workflows(default_timeout=300)

    @app.task(options=Options(retry={"max_retries": 1, "wait_duration_ms": 5,
                                     "backoff_scaling": 2.0}, plan="starter"))  # fmt: skip
    def charge(ctx: render_sdk.TaskContext, order: str) -> str:
        return order

    assert charge.name == "charge"
    assert charge.func(None, "o-1") == "o-1"
    assert charge.options == Options(Retry(1, 5, 2.0), 300, "starter")
    assert repr(charge) == "TaskDefinition(name='charge')"
    assert charge.__name__ == "charge"
    assert app.tasks["charge"].payload()["options"] == {
        "retry": {"max_retries": 1, "wait_duration_ms": 5, "factor": 2.0},
        "timeout_seconds": 300,
        "plan": "starter",
    }
    assert repr(app) == "Workflows(tasks=1)"


def test_retry_dicts_and_option_mistakes_fail_at_decoration() -> None:
    app = Workflows()
    with pytest.raises(ValueError, match=r"^task 'f': a retry dict needs the keys .*missing "
                                         r"'backoff_scaling'$"):  # fmt: skip

        @app.task(retry={"max_retries": 3, "wait_duration_ms": 1000})
        def f() -> None: ...

    with pytest.raises(TypeError, match="options=Options"):

        @app.task(options=Options(plan="pro"), plan="pro")
        def g() -> None: ...

    with pytest.raises(TypeError, match=r"^options must be an Options\(...\), got dict$"):

        @app.task(options={"plan": "pro"})  # type: ignore[call-overload]
        def h() -> None: ...

    assert app.tasks == {}
    dict_default = Workflows(
        default_retry={"max_retries": 2, "wait_duration_ms": 10, "backoff_scaling": 1.0}
    )
    assert dict_default.default_retry == Retry(2, 10, 1.0)


# -- running on the task socket ---------------------------------------------------------


@pytest.fixture
def sock() -> Iterator[FakeTaskSocket]:
    with FakeTaskSocket() as server:
        yield server


WORKFLOW_1X = """
import asyncio
from render import TaskContext, Workflows

app = Workflows()

@app.task
def add(ctx: TaskContext, a: int, b: int = 2) -> int:
    return a + b

@app.task
def ids(ctx):
    m = ctx.metadata
    return [m.task_run_id, m.root_task_run_id, m.parent_task_run_id]

@app.task
async def fan(ctx, n: int) -> dict:
    positional = await asyncio.gather(*(ctx.run(add, i, 1) for i in range(n)))
    return {
        "positional": positional,
        "named": await ctx.run(add, a=1),
        "empty": await ctx.run(ids),
    }

@app.task
async def mixed(ctx):
    return await ctx.run(add, 1, b=2)
"""


def test_1x_workflow_registers_and_runs(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    argv = [sys.executable, "-m", "render_sdk.cli", "main:app"]
    assert run_program(tmp_path, WORKFLOW_1X, sock, "register", argv=argv).returncode == 0
    (registration,) = sock.registrations
    tasks = {task["name"]: task for task in registration["tasks"]}
    assert list(tasks) == ["add", "ids", "fan", "mixed"]
    assert tasks["add"]["parameters"] == [
        {"name": "a", "has_default": False, "type": "int"},
        {"name": "b", "has_default": True, "type": "int", "default_value": "2"},
    ]
    assert "parameters" not in tasks["ids"]
    assert tasks["fan"]["parameters"] == [{"name": "n", "has_default": False, "type": "int"}]

    sock.serve_input(
        "ids", [], task_run_id="trn-child", root_task_run_id="trn-root",
        parent_task_run_id="trn-root",
    )  # fmt: skip
    done = run_program(tmp_path, WORKFLOW_1X, sock, "run", argv=argv)
    assert done.returncode == 0, done.stderr
    assert output_of(sock.callbacks[-1]) == [["trn-child", "trn-root", "trn-root"]]

    sock.serve_input("ids", [], task_run_id="trn-1", root_task_run_id="")
    assert run_program(tmp_path, WORKFLOW_1X, sock, "run", argv=argv).returncode == 0
    assert output_of(sock.callbacks[-1]) == [["trn-1", None, None]]

    sock.subtask_handler = lambda name, args: (
        sum(args) if isinstance(args, list) and name == "add" else args
    )
    sock.serve_input("fan", [3])
    done = run_program(tmp_path, WORKFLOW_1X, sock, "run", argv=argv)
    assert done.returncode == 0, done.stderr
    children = [r.json() for r in sock.requests if r.path == "/run-subtask"]
    inputs = sorted(json.dumps(output_of({"complete": {"output": c["input"]}})) for c in children)
    assert inputs == sorted(["[0, 1]", "[1, 1]", "[2, 1]", '{"a": 1}', "[]"])
    assert {c["task_name"] for c in children} == {"add", "ids"}
    (result,) = output_of(sock.callbacks[-1])
    assert result["positional"] == [1, 2, 3]


def test_mixed_ctx_run_input_fails_before_sending(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    sock.serve_input("mixed", [])
    done = run_program(tmp_path, WORKFLOW_1X + "\napp.start()\n", sock, "run")
    assert done.returncode == 1
    assert not [r for r in sock.requests if r.path == "/run-subtask"]
    details = sock.callbacks[-1]["error"]["details"]
    assert details.startswith("ValueError: subtask 'add': pass arguments either positionally")


TWO_APPS = """
import os
from render import Workflows

first, second = Workflows(), Workflows()

@first.task
def square(a: int) -> int:
    return a * a

@first.task
def only_first() -> str:
    return "first"

@second.task
def square(a: int) -> int:
    return -a * a

(first if os.environ["WHICH"] == "first" else second).start()
"""


@pytest.mark.parametrize("case", [
    ("first", ["square", "only_first"], [9]),
    ("second", ["square"], [-9]),
])  # fmt: skip
def test_two_apps_with_the_same_task_name_each_serve_their_own(
    tmp_path: pathlib.Path,
    sock: FakeTaskSocket,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[str, list[str], list[int]],
) -> None:
    which, names, result = case
    monkeypatch.setenv("WHICH", which)
    assert run_program(tmp_path, TWO_APPS, sock, "register").returncode == 0
    assert [task["name"] for task in sock.registrations[-1]["tasks"]] == names
    sock.serve_input("square", [3])
    done = run_program(tmp_path, TWO_APPS, sock, "run")
    assert done.returncode == 0, done.stderr
    assert output_of(sock.callbacks[-1]) == result


def test_a_file_imported_twice_that_defines_a_name_differently_is_refused(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    # main.py imported as __main__ and as main: the two copies differ in one task.
    (tmp_path / "other.py").write_text("import main\n")
    source = """
    from render_sdk import Workflows
    app = Workflows()

    @app.task(name="which")
    def which() -> str:
        return __name__
    if __name__ == "__main__":
        @app.task(name="extra")
        def extra() -> int:
            return 1
        import other

        @app.task(name="clash")
        def clash() -> int:
            return 1
        app.start()
    else:
        @app.task(name="clash")
        def clash() -> int:
            return 2
    """
    done = run_program(tmp_path, source, sock, "register")
    assert done.returncode == 1
    assert "task 'clash' is defined twice, differently" in done.stderr
    assert not sock.registrations


def test_deprecated_module_level_task_and_start(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    source = """
    from render import start, task

    @task
    def hello(ctx, name: str) -> str:
        return f"hello {name}"

    @task(name="bye")
    def goodbye(ctx) -> str:
        return "bye"

    start()
    """
    assert run_program(tmp_path, source, sock, "register").returncode == 0
    assert [t["name"] for t in sock.registrations[-1]["tasks"]] == ["hello", "bye"]
    sock.serve_input("hello", ["you"])
    assert run_program(tmp_path, source, sock, "run").returncode == 0
    assert output_of(sock.callbacks[-1]) == ["hello you"]


def test_console_script_splits_on_the_last_colon(tmp_path: pathlib.Path) -> None:
    from render_sdk.worker.runtime import run_entry_point

    done = run_program(
        tmp_path,
        "import sys\nfrom render_sdk.worker.runtime import run_entry_point\n"
        "sys.exit(run_entry_point('pkg:mod:app'))\n",
        None,
        None,
    )
    assert done.returncode == 1
    assert "cannot import 'pkg:mod'" in done.stderr
    assert run_entry_point(":app") == 2
