"""The task samples of both reference documents register and run as written.

Where a document splits one program over several blocks (an ``app`` in one, its
tasks in the next), the blocks are joined in order; nothing else is changed.
"""

from __future__ import annotations

import pathlib
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_task_socket import FakeTaskSocket
from tests.support.programs import output_of, run_program


@pytest.fixture
def sock() -> Iterator[FakeTaskSocket]:
    with FakeTaskSocket() as server:
        yield server


def registered(sock: FakeTaskSocket) -> dict[str, Any]:
    (registration,) = sock.registrations
    return {task["name"]: task for task in registration["tasks"]}


NEWER_INIT = """
from render_sdk import Workflows, Retry

# Basic initialization
app = Workflows()

# Initialization with all options set
app = Workflows(
  default_retry=Retry(
    max_retries=3,
    wait_duration_ms=1000,
    backoff_scaling=1.5
  ),
  default_timeout=300,
  default_plan="standard"
)

@app.task
def calculate_square(a: int) -> int:
  return a * a

if __name__ == "__main__":
  app.start() # highlight-line
"""


def test_newer_workflows_constructor_and_start(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    done = run_program(tmp_path, NEWER_INIT, sock, "register")
    assert done.returncode == 0, done.stderr
    assert registered(sock)["calculate_square"]["options"] == {
        "retry": {"max_retries": 3, "wait_duration_ms": 1000, "factor": 1.5},
        "timeout_seconds": 300,
        "plan": "standard",
    }


NEWER_ALL_ARGUMENTS = """
from render_sdk import Workflows, Retry

app = Workflows()

@app.task(
  name="calc_square", # Give the task a custom name (defaults to function name)
  retry=Retry( # Define default retry logic for the task
    max_retries=3, # Retry up to 3 times (i.e., 4 total attempts)
    wait_duration_ms=1000, # Set a base retry delay of 1 second
    backoff_scaling=1.5 # Increase delay by 50% after each retry (exponential backoff)
  ),
  timeout_seconds=300, # Timeout in seconds
  plan="standard" # Resource plan
)
def calculate_square(a: int) -> int:
  return a * a

if __name__ == "__main__":
  app.start()
"""


def test_newer_task_with_all_arguments(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    assert run_program(tmp_path, NEWER_ALL_ARGUMENTS, sock, "register").returncode == 0
    assert registered(sock)["calc_square"]["options"]["timeout_seconds"] == 300
    sock.serve_input("calc_square", [2])
    assert run_program(tmp_path, NEWER_ALL_ARGUMENTS, sock, "run").returncode == 0
    assert output_of(sock.callbacks[-1]) == [4]


def test_newer_from_workflows(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    (tmp_path / "math_tasks.py").write_text(
        "from render_sdk import Workflows\napp = Workflows()\n\n"
        "@app.task\ndef square(a: int) -> int:\n    return a * a\n",
        encoding="utf-8",
    )
    (tmp_path / "text_tasks.py").write_text(
        "from render_sdk import Workflows\napp = Workflows()\n\n"
        "@app.task\ndef shout(s: str) -> str:\n    return s.upper()\n",
        encoding="utf-8",
    )
    source = """
    from render_sdk import Workflows
    from math_tasks import app as math_app
    from text_tasks import app as text_app

    app = Workflows.from_workflows(math_app, text_app)

    if __name__ == "__main__":
      app.start()
    """
    assert run_program(tmp_path, source, sock, "register").returncode == 0
    assert sorted(registered(sock)) == ["shout", "square"]
    sock.serve_input("shout", ["hi"])
    assert run_program(tmp_path, source, sock, "run").returncode == 0
    assert output_of(sock.callbacks[-1]) == ["HI"]


OLDER_PROGRAM = """
from render_sdk import Retry, Workflows

app = Workflows(
    default_retry=Retry(max_retries=3, wait_duration_ms=1000, backoff_scaling=2.0),
    default_timeout=300,        # seconds (5 minutes)
    default_plan="standard",    # "starter", "standard", or "pro"
    auto_start=True,            # auto-start worker on exit
)

# Minimal: use all defaults from Workflows()
@app.task
def calculate_square(a: int) -> int:
    return a * a

# With per-task overrides
@app.task(name="custom_square", retry=Retry(max_retries=5, wait_duration_ms=2000))
def my_square(a: int) -> int:
    return a * a

@app.task
def square(a: int) -> int:
    return a * a

@app.task
async def add_squares(a: int, b: int) -> int:
    result1 = await square(a)   # runs subtask in its own instance
    result2 = await square(b)
    return result1 + result2

import asyncio

@app.task
async def fan_out(n: int) -> list[int]:
    squares = [square(i) for i in range(n)]
    results = await asyncio.gather(*squares)
    return list(results)
"""


def test_older_program_registers_with_auto_start(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    done = run_program(tmp_path, OLDER_PROGRAM, sock, "register")
    assert done.returncode == 0, done.stderr
    tasks = registered(sock)
    assert sorted(tasks) == [
        "add_squares",
        "calculate_square",
        "custom_square",
        "fan_out",
        "square",
    ]
    assert tasks["custom_square"]["options"]["retry"] == {
        "max_retries": 5,
        "wait_duration_ms": 2000,
        "factor": 1.5,
    }
    assert tasks["calculate_square"]["options"]["retry"]["factor"] == 2.0


@pytest.mark.parametrize(
    ("task", "value", "expected"),
    [("add_squares", [2, 3], 13), ("fan_out", [4], [0, 1, 4, 9]), ("custom_square", [7], 49)],
)
def test_older_program_runs(
    tmp_path: pathlib.Path, sock: FakeTaskSocket, task: str, value: Any, expected: Any
) -> None:
    sock.subtask_handler = lambda name, args: args[0] * args[0]
    sock.serve_input(task, value)
    done = run_program(tmp_path, OLDER_PROGRAM, sock, "run")
    assert done.returncode == 0, done.stderr
    assert output_of(sock.callbacks[-1]) == [expected]


def test_auto_start_does_nothing_without_the_environment(tmp_path: pathlib.Path) -> None:
    done = run_program(tmp_path, OLDER_PROGRAM, None, None)
    assert done.returncode == 0
    assert done.stderr == ""


def test_older_tasks_across_files(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    """``workflows/main.py`` imports modules that import ``main`` back (a documented trap)."""
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "math_tasks.py").write_text(
        textwrap.dedent(
            """
            from main import app

            @app.task
            def square(a: int) -> int:
                return a * a
            """
        ),
        encoding="utf-8",
    )
    (workflows / "data_tasks.py").write_text(
        textwrap.dedent(
            """
            from main import app

            @app.task
            def count(items: list) -> int:
                return len(items)
            """
        ),
        encoding="utf-8",
    )
    main = """
    from render_sdk import Workflows

    app = Workflows(auto_start=True)

    import math_tasks    # registers tasks in workflows/math_tasks.py
    import data_tasks    # registers tasks in workflows/data_tasks.py
    """
    # `python workflows/main.py`, run from the project directory as documented.
    argv = [sys.executable, "workflows/main.py"]
    done = run_program(tmp_path, main, sock, "register", filename="workflows/main.py", argv=argv)
    assert done.returncode == 0, done.stderr
    assert sorted(registered(sock)) == ["count", "square"]
    sock.serve_input("count", [[1, 2, 3]])
    done = run_program(tmp_path, main, sock, "run", filename="workflows/main.py", argv=argv)
    assert done.returncode == 0, done.stderr
    assert output_of(sock.callbacks[-1]) == [3]


def test_readme_task_example(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    import re

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    source = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    assert run_program(tmp_path, source, sock, "register").returncode == 0
    assert sorted(registered(sock)) == ["calculate_square", "sum_of_squares"]
    sock.subtask_handler = lambda name, args: args[0] * args[0]
    sock.serve_input("sum_of_squares", [4])
    done = run_program(tmp_path, source, sock, "run")
    assert done.returncode == 0, done.stderr
    assert output_of(sock.callbacks[-1]) == [14]
