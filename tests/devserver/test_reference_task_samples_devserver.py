"""The reference documents' task samples, run through the dev server with our clients.

The same programs as ``tests/workers/test_reference_task_samples.py`` (which checks
their socket traffic), here registered and run by real dev servers.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

from render_devserver.server import DevServer
from render_sdk import Render, RenderAsync
from tests.workers.test_reference_task_samples import (
    NEWER_ALL_ARGUMENTS,
    NEWER_INIT,
    OLDER_PROGRAM,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]


@contextmanager
def serving(directory: pathlib.Path, command: list[str]) -> Iterator[DevServer]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = str(ROOT)
    server = DevServer(
        command, port=0, db=":memory:", cwd=str(directory), env=env, workflow_slug="my-workflow"
    )
    with server.run_in_thread() as running:
        yield running


def _write(directory: pathlib.Path, name: str, source: str) -> None:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")


def test_newer_samples(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, "main.py", NEWER_INIT)
    with (
        serving(tmp_path, [sys.executable, "main.py"]) as server,
        Render(base_url=server.url, env={}) as render,
    ):
        assert render.workflows.run_task("my-workflow/calculate_square", [2]).results == [4]
    _write(tmp_path, "main.py", NEWER_ALL_ARGUMENTS)
    with (
        serving(tmp_path, [sys.executable, "main.py"]) as server,
        Render(base_url=server.url, env={}) as render,
    ):
        assert render.workflows.run_task("my-workflow/calc_square", {"a": 3}).results == [9]


def test_older_program_with_subtasks_and_gather(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, "main.py", OLDER_PROGRAM)

    async def main(url: str) -> list[object]:
        async with RenderAsync(base_url=url, env={}) as render:
            runs = await asyncio.gather(
                render.workflows.run_task("my-workflow/add_squares", [2, 3]),
                render.workflows.run_task("my-workflow/fan_out", [5]),
                render.workflows.run_task("my-workflow/custom_square", [7]),
            )
            return [run.results[0] for run in runs]

    with serving(tmp_path, [sys.executable, "main.py"]) as server:
        assert asyncio.run(main(server.url)) == [13, [0, 1, 4, 9, 16], 49]


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
    with (
        serving(tmp_path, [sys.executable, "workflows/main.py"]) as server,
        Render(base_url=server.url, env={}) as render,
    ):
        assert sorted(t.name for t in render.workflows.list_tasks()) == ["count", "square"]
        assert render.workflows.run_task("my-workflow/count", [[1, 2, 3]]).results == [3]
        assert render.workflows.run_task("my-workflow/square", {"a": 4}).results == [16]
