"""A workflow written for the official ``render`` 1.x SDK runs unchanged on this SDK.

``programs/ours_1x_style_workflow.py`` imports ``from render``, takes a context first
(annotated ``TaskContext`` and a bare ``ctx``/``context``), and starts subtasks with
``await ctx.run(...)``: positional, named and empty input, ``asyncio.gather``, a failing
child caught as ``TaskRunError`` and one left to fail the parent, the metadata ids of a
root and of a child, and a retry policy given as a dict. Our dev server runs it with
real task processes; our sync and async clients, and the official 1.x client from its
own venv, drive it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from render_devserver.server import DevServer
from render_sdk import Render, RenderAsync
from render_sdk.client.errors import TaskRunError
from render_sdk.client.types import ListTaskRunsParams
from tests.compat.test_official_clients import PROGRAMS, REPO, SCRIPT_TIMEOUT, _env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    project = tmp_path_factory.mktemp("ours-1x-style")
    shutil.copy(PROGRAMS / "ours_1x_style_workflow.py", project / "main.py")
    markers = tmp_path_factory.mktemp("flaky-markers")
    dev = DevServer(
        # The 1.x way to start a worker: the console script with MODULE:APP.
        [sys.executable, "-m", "render_sdk.cli", "main:app"],
        port=0,
        db=":memory:",
        cwd=str(project),
        env=_env({"PYTHONPATH": str(REPO), "FLAKY_DIR": str(markers)}),
        workflow_slug="wf",
        concurrency=16,
        ping_interval=0.5,
    )
    with dev.run_in_thread() as running:
        yield running


@pytest.fixture
def client(server: DevServer) -> Iterator[Render]:
    with Render(base_url=server.url, env={}) as render:
        yield render


def test_registration_leaves_the_context_out(client: Render) -> None:
    tasks = {task.name: task for task in client.workflows.list_tasks()}
    assert set(tasks) >= {"add", "square", "nothing", "whoami", "calls", "fan_out", "flaky"}


def test_context_styles_and_inputs(client: Render) -> None:
    assert client.workflows.run_task("wf/add", [2, 3]).results == [5]
    assert client.workflows.run_task("wf/add", {"a": 4}).results == [6]
    assert client.workflows.run_task("wf/square", [9]).results == [81]
    assert client.workflows.run_task("wf/nothing", []).results == ["nothing to do"]


def test_ctx_run_with_positional_named_default_and_empty_input(client: Render) -> None:
    (outcome,) = client.workflows.run_task("wf/calls", []).results
    assert outcome == {
        "positional": 3,
        "named": 11,
        "default": 12,
        "bare_ctx": 49,
        "empty": "nothing to do",
    }


def test_gather_over_ctx_run(client: Render) -> None:
    assert client.workflows.run_task("wf/fan_out", [6]).results == [[0, 1, 4, 9, 16, 25]]


def test_metadata_of_a_root_and_of_a_child(client: Render) -> None:
    details = client.workflows.run_task("wf/family", [])
    (outcome,) = details.results
    me, child = outcome["self"], outcome["child"]
    assert me == {
        "task_run_id": details.id,
        "root_task_run_id": details.id,
        "parent_task_run_id": None,
    }
    assert child["task_run_id"] not in (None, details.id)
    assert child["root_task_run_id"] == details.id
    assert child["parent_task_run_id"] == details.id
    child_run = client.workflows.get_task_run(child["task_run_id"])
    assert child_run.parent_task_run_id == details.id


def test_a_failing_subtask_is_a_task_run_error(client: Render) -> None:
    (caught,) = client.workflows.run_task("wf/catches", []).results
    assert caught.startswith("caught: ")
    assert "bad input" in caught
    with pytest.raises(TaskRunError) as failed:
        client.workflows.run_task("wf/propagates", [])
    assert "from the child" in str(failed.value)


def test_mixing_positional_and_named_input_is_refused_before_sending(client: Render) -> None:
    details = client.workflows.run_task("wf/mixes", [])
    (refused,) = details.results
    assert refused.startswith("refused: ")
    assert "positionally or by name" in refused
    # Nothing was started for the refused call: the tree is the parent alone.
    tree = client.workflows.list_task_runs(ListTaskRunsParams(root_task_run_id=details.id))
    assert [run.id for run in tree] == [details.id]


def test_a_retry_given_as_a_dict_is_registered_and_applied(client: Render) -> None:
    details = client.workflows.run_task("wf/flaky", ["ours-marker"])
    assert details.results == [3]
    assert details.retries == 2
    assert len(details.attempts) == 3


async def test_the_async_client_with_ctx_run(server: DevServer) -> None:
    async with RenderAsync(base_url=server.url, env={}) as render:
        started = await render.workflows.start_task("wf/calls", [])
        finished = await started
        assert finished.results[0]["named"] == 11
        assert started.is_terminal_status()


# -- the official 1.x client drives the same workflow ---------------------------------


@pytest.fixture(scope="module")
def official_report(official_1x: Any, server: DevServer) -> dict[str, Any]:
    extra = {"RENDER_USE_LOCAL_DEV": "true", "RENDER_LOCAL_DEV_URL": server.url}
    done = subprocess.run(
        [official_1x.python, str(PROGRAMS / "official_client_1x_style.py"), official_1x.module],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        env=_env(extra),
        check=False,
    )
    steps = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            steps[record.pop("step")] = record
    if "done" not in steps:
        pytest.fail(f"the official client did not finish: {done.stdout}\n{done.stderr[-3000:]}")
    return steps


def _value(report: dict[str, Any], step: str) -> Any:
    record = report[step]
    assert "value" in record, record
    return record["value"]


def test_official_client_runs_the_1x_style_tasks(official_report: dict[str, Any]) -> None:
    assert _value(official_report, "add")["results"] == [5]
    assert _value(official_report, "add_named")["results"] == [6]
    assert _value(official_report, "square")["results"] == [81]
    assert _value(official_report, "calls")["results"][0]["named"] == 11
    assert _value(official_report, "fan_out")["results"] == [[0, 1, 4, 9, 16]]
    assert _value(official_report, "catches")["results"][0].startswith("caught: ")
    assert _value(official_report, "flaky")["results"] == [3]
    assert _value(official_report, "async_mixes")["results"][0].startswith("refused: ")


def test_official_client_sees_metadata_and_failures(official_report: dict[str, Any]) -> None:
    family = _value(official_report, "family")
    me = family["results"][0]["self"]
    assert me["task_run_id"] == family["id"] == me["root_task_run_id"]
    assert family["results"][0]["child"]["parent_task_run_id"] == family["id"]
    assert "from the child" in official_report["propagates"]["task_run_error"]


def test_our_environment_has_no_official_package() -> None:
    # ``render`` here is this repository's, never an official install.
    import render

    assert os.path.dirname(render.__file__) == str(REPO / "render")
