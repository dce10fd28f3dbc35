"""The reference documents' task samples, run through the dev server with our clients.

The same programs as ``tests/workers/test_reference_task_samples.py`` (which checks
their socket traffic), here registered and run by real dev servers.
"""

from __future__ import annotations

import asyncio
import pathlib
import textwrap

from render_sdk.testing import DevServerHarness, dev_server
from tests.workers.test_reference_task_samples import (
    NEWER_ALL_ARGUMENTS,
    NEWER_INIT,
    OLDER_PROGRAM,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]


def serving(directory: pathlib.Path, command: list[str]) -> DevServerHarness:
    return dev_server(
        command, cwd=directory, pythonpath=[ROOT], db=":memory:", workflow_slug="my-workflow"
    )


def _write(directory: pathlib.Path, name: str, source: str) -> None:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")


def test_newer_samples(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, "main.py", NEWER_INIT)
    with serving(tmp_path, ["python", "main.py"]) as server:
        run = server.client.workflows.run_task("my-workflow/calculate_square", [2])
        assert run.results == [4]
    _write(tmp_path, "main.py", NEWER_ALL_ARGUMENTS)
    with serving(tmp_path, ["python", "main.py"]) as server:
        run = server.client.workflows.run_task("my-workflow/calc_square", {"a": 3})
        assert run.results == [9]


def test_older_program_with_subtasks_and_gather(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, "main.py", OLDER_PROGRAM)

    async def main(server: DevServerHarness) -> list[object]:
        async with server.async_client() as render:
            runs = await asyncio.gather(
                render.workflows.run_task("my-workflow/add_squares", [2, 3]),
                render.workflows.run_task("my-workflow/fan_out", [5]),
                render.workflows.run_task("my-workflow/custom_square", [7]),
            )
            return [run.results[0] for run in runs]

    with serving(tmp_path, ["python", "main.py"]) as server:
        assert asyncio.run(main(server)) == [13, [0, 1, 4, 9, 16], 49]


def test_from_workflows_and_tasks_across_files(tmp_path: pathlib.Path) -> None:
    _write(
        tmp_path,
        "workflows/math_tasks.py",
        "from main import app\n\n@app.task\ndef square(a: int) -> int:\n    return a * a\n",
    )
    _write(
        tmp_path,
        "workflows/data_tasks.py",
        "from main import app\n\n"
        "@app.task\ndef count(items: list) -> int:\n    return len(items)\n",
    )
    _write(
        tmp_path,
        "workflows/main.py",
        """
        from render_sdk import Workflows

        app = Workflows(auto_start=True)

        import math_tasks    # registers tasks in workflows/math_tasks.py
        import data_tasks    # registers tasks in workflows/data_tasks.py
        """,
    )
    with serving(tmp_path, ["python", "workflows/main.py"]) as server:
        render = server.client
        assert sorted(t.name for t in render.workflows.list_tasks()) == ["count", "square"]
        assert render.workflows.run_task("my-workflow/count", [[1, 2, 3]]).results == [3]
        assert render.workflows.run_task("my-workflow/square", {"a": 4}).results == [16]
