"""Held subtask-result polls: a parent hears of its child's end without polling again.

The dev server answers ``POST /get-subtask-result`` for a running child only when the
child ends (or after its hold bound, "still running"). Counted, not timed: our
worker's first poll goes out at once, so a child that ends within the bound costs
its parent exactly one poll.
"""

from __future__ import annotations

import os
import pathlib
import sys
import textwrap
from collections.abc import Iterator

import pytest

from render_devserver.server import DevServer
from render_sdk import Render

ROOT = str(pathlib.Path(__file__).resolve().parents[2])

WORKFLOW = """
import asyncio, time
from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


@app.task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task
def fails() -> None:
    raise ValueError("child failed")


@app.task
async def parent(seconds: float, n: int) -> list:
    return list(await asyncio.gather(*(nap(seconds) for _ in range(n))))


@app.task
async def parent_of_failure() -> str:
    try:
        await fails()
    except Exception as exc:
        return str(exc)
    return "no error"


if __name__ == "__main__":
    app.start()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    project = tmp_path_factory.mktemp("hold")
    (project / "main.py").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = ROOT
    dev = DevServer(
        [sys.executable, "main.py"],
        port=0,
        db=":memory:",
        cwd=str(project),
        env=env,
        workflow_slug="wf",
        concurrency=8,
    )
    with dev.run_in_thread() as running:
        yield running


@pytest.fixture
def render(server: DevServer) -> Iterator[Render]:
    with Render(base_url=server.url, env={}) as client:
        yield client


def _polls(server: DevServer) -> int:
    assert server.scheduler is not None
    return server.scheduler.counters["subtask_result_polls"]


def test_a_child_that_ends_within_the_hold_costs_one_poll(
    server: DevServer, render: Render
) -> None:
    before = _polls(server)
    assert render.workflows.run_task("wf/parent", [0.5, 3], timeout=60).results == [[0.5] * 3]
    assert _polls(server) - before == 3


def test_a_failed_child_is_reported_through_a_held_poll(server: DevServer, render: Render) -> None:
    before = _polls(server)
    details = render.workflows.run_task("wf/parent_of_failure", [], timeout=60)
    assert details.results == ["Subtask failed: ValueError: child failed"]
    assert _polls(server) - before == 1


def test_past_the_bound_the_poll_answers_still_running(server: DevServer, render: Render) -> None:
    assert server.scheduler is not None
    server.scheduler.subtask_hold_seconds = 0.1
    try:
        before = _polls(server)
        assert render.workflows.run_task("wf/parent", [1.0, 1], timeout=60).results == [[1.0]]
        assert _polls(server) - before > 1  # held 0.1 s at a time, then polled again
    finally:
        server.scheduler.subtask_hold_seconds = 10.0
