"""The pytest plugin's fixtures on our own suite: one dev server for this module.

The same tasks also run in process, and both ways must give the same answers.
"""

from __future__ import annotations

from typing import Any

import pytest

from render_core.errors import TaskRunError
from render_sdk import Render, RenderAsync
from render_sdk.testing import DevServerHarness, LocalRunner, run_local
from tests.testing.sample_app import app

pytestmark = pytest.mark.render_workflows(
    "tests.testing.sample_app:app", workflow_slug="harness", env={"HARNESS_FLAG": "on"}
)


def test_the_server_is_ready_with_its_tasks(render_dev_server: DevServerHarness) -> None:
    assert render_dev_server.url.startswith("http://127.0.0.1:")
    assert render_dev_server.workflow_slug == "harness"
    assert {"square_it", "sum_squares", "broken", "shout"} <= set(render_dev_server.tasks)
    assert render_dev_server.task_id("square_it") == "harness/square_it"


def test_the_blocking_client_runs_tasks_and_subtasks(
    render_client: Render, render_dev_server: DevServerHarness
) -> None:
    assert render_client is render_dev_server.client
    run = render_client.workflows.run_task(render_dev_server.task_id("sum_squares"), [4])
    assert run.results == [14]
    assert render_client.workflows.run_task("harness/env_value", ["HARNESS_FLAG"]).results == ["on"]


async def test_the_async_client(
    render_client_async: RenderAsync, render_dev_server: DevServerHarness
) -> None:
    run = await render_client_async.workflows.run_task(render_dev_server.task_id("square_it"), [9])
    assert run.results == [81]


def test_captured_lines(render_client: Render, render_dev_server: DevServerHarness) -> None:
    run = render_client.workflows.run_task("harness/shout", ["quiet please"])
    assert "QUIET PLEASE" in render_dev_server.output(run.id)
    assert (run.id, "QUIET PLEASE") in render_dev_server.logs


@pytest.mark.parametrize(
    ("task", "input_data"),
    [
        ("sum_squares", [3]),
        ("echo_value", [{"1": [2, 3], "x": None}]),
        ("catches_broken_child", []),
        ("describe_run", {"label": "same"}),
    ],
)
def test_in_process_gives_what_the_dev_server_gives(
    render_client: Render, task: str, input_data: Any
) -> None:
    served = render_client.workflows.run_task(f"harness/{task}", input_data).results
    local = LocalRunner(app).run(
        task,
        *(input_data if isinstance(input_data, list) else []),
        **(input_data if isinstance(input_data, dict) else {}),
    )
    assert served == [local.value()]


def test_failures_read_the_same_both_ways(render_client: Render) -> None:
    with pytest.raises(TaskRunError) as served:
        render_client.workflows.run_task("harness/propagates_broken_child", [])
    with pytest.raises(TaskRunError) as local:
        run_local(app, "propagates_broken_child")
    assert (
        str(served.value)
        == str(local.value)
        == ("TaskRunError: Subtask failed: ValueError: deep down")
    )
