"""Workflows written for the OFFICIAL SDKs (0.6.1 and 1.x), run BY OUR dev server.

Our dev server starts ``[<official venv python>, "main.py"]`` (the program is
``programs/official_061_workflow.py`` or ``programs/official_1x_workflow.py``), so
registration, ``/input``, ``/callback``, ``/run-subtask`` and ``/get-subtask-result``
are all spoken by the official worker code. The runs are driven with OUR client in
the test process. Anything our task socket gets wrong shows up as a
registration failure, a wrong result or error text, or a run that never finishes.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from render_core.errors import TaskRunError
from render_devserver.server import DevServer
from render_sdk import Render
from render_sdk.client import ListTaskRunsParams, ListTasksParams

HERE = pathlib.Path(__file__).resolve().parent
PROGRAMS = HERE / "programs"
WAIT = 60.0
PROGRAM = {"0.6.1": "official_061_workflow.py", "1.x": "official_1x_workflow.py"}
TASKS = {
    "square",
    "add",
    "pair",
    "single_list",
    "nothing",
    "as_dict",
    "sum_squares",
    "chain",
    "child_results",
    "fails",
    "catches_child_failure",
    "propagates_child_failure",
    "flaky",
    "always_fails",
    "renamed",
    "too_slow",
    "sleeper",
    "parent_of_sleeper",
    "nested_rest",
    "calls_unregistered",
}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """No PYTHONPATH (it would put our render_sdk ahead of the official one), no RENDER_*."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("RENDER_")}
    env.update(extra or {})
    return env


@pytest.fixture(scope="module")
def server(official: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    project = tmp_path_factory.mktemp("official-" + official.label.replace(".", "_"))
    shutil.copy(PROGRAMS / PROGRAM[official.label], project / "main.py")
    # 0.6.1's REST client wants a token even locally (used by the nested_rest task).
    extra = {"RENDER_API_KEY": "rnd_compat_test"} if official.label == "0.6.1" else {}
    dev = DevServer(
        [official.python, "main.py"],
        port=0,
        db=":memory:",
        cwd=str(project),
        env=_env(extra),
        workflow_slug="wf",
        concurrency=16,
        ping_interval=0.5,
        timeout_scale=0.02,  # timeout_seconds=30 lasts 0.6 s here
    )
    with dev.run_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def render(server: DevServer) -> Iterator[Render]:
    with Render(base_url=server.url, env={}) as client:
        yield client


def _run(render: Render, task: str, input_data: Any) -> Any:
    return render.workflows.run_task(f"wf/{task}", input_data, timeout=WAIT)


def test_registration(render: Render, official: Any) -> None:
    names = {task.name for task in render.workflows.list_tasks(ListTasksParams(limit=100))}
    expected = TASKS | ({"whoami", "parent_whoami"} if official.label == "1.x" else set())
    assert names == expected
    renamed = render.workflows.get_task("wf/renamed")
    assert renamed.name == "renamed"
    assert renamed.id.startswith("tsk-")


def test_results_as_the_official_worker_sends_them(render: Render) -> None:
    # Official workers wrap a result in a list unless it already is one;
    # REST `results` is that array verbatim.
    cases: list[tuple[str, Any, list[Any]]] = [
        ("square", [7], [49]),
        ("add", {"a": 40}, [42]),
        ("add", [1], [3]),
        ("pair", [], [1, 2]),
        ("single_list", [], [5]),
        ("nothing", [], [None]),
        ("as_dict", [], [{"k": [1, "\u00e9\u2028"], "n": None}]),
        ("renamed", ["x"], ["x"]),
    ]
    ids = [render.workflows.start_task(f"wf/{task}", data).id for task, data, _ in cases]
    finished = render.workflows.wait_for_runs(ids, timeout=WAIT)
    assert [(d.results, str(d.status), d.error) for d in finished] == [
        (expected, "completed", None) for _, _, expected in cases
    ]
    assert [d.input_ for d in finished] == [data for _, data, _ in cases]


def test_subtasks_and_gather_fan_out(render: Render) -> None:
    started = [
        render.workflows.start_task("wf/sum_squares", [5]),
        render.workflows.start_task("wf/chain", [3]),
        render.workflows.start_task("wf/child_results", []),
    ]
    fan_out, chain, child_results = render.workflows.wait_for_runs(
        [run.id for run in started], timeout=WAIT
    )
    assert fan_out.results == [30]
    assert chain.results == [11]  # square(3) then add(a=9) with the default b=2
    # The parent's unwrap (a one-element array becomes its element) sees exactly the
    # child's results array: our server must not re-wrap it on /get-subtask-result.
    assert child_results.results == [
        {
            "pair": [1, 2],
            "single_list": 5,
            "nothing": None,
            "as_dict": {"k": [1, "\u00e9\u2028"], "n": None},
        }
    ]
    children = list(
        render.workflows.iter_task_runs(ListTaskRunsParams(root_task_run_id=fan_out.id))
    )
    children = [run for run in children if run.id != fan_out.id]
    assert len(children) == 5
    assert all(child.parent_task_run_id == fan_out.id for child in children)
    assert all(child.parent_task_attempt == 0 for child in children)
    squares = sorted(render.workflows.get_task_run(c.id).results[0] for c in children)
    assert squares == [0, 1, 4, 9, 16]
    chain_children = [
        run
        for run in render.workflows.iter_task_runs(ListTaskRunsParams(root_task_run_id=chain.id))
        if run.id != chain.id
    ]
    inputs = sorted((render.workflows.get_task_run(c.id).input_ for c in chain_children), key=str)
    assert inputs == [[3], {"a": 9}]


def test_failing_task_error_text_is_the_exception_message(render: Render) -> None:
    with pytest.raises(TaskRunError) as info:
        _run(render, "fails", ["boom"])
    details = info.value.details
    assert details is not None
    # The official worker reports str(exc) only: no type, no traceback.
    assert details.error == "boom"
    assert str(details.status) == "failed"
    assert [a.error for a in details.attempts] == ["boom"]  # default_retry: no retries
    assert details.results == []


def test_subtask_failure_reaches_the_parent(render: Render) -> None:
    caught = _run(render, "catches_child_failure", [])
    assert caught.results == ["TaskRunError: Subtask failed: inner"]
    with pytest.raises(TaskRunError) as info:
        _run(render, "propagates_child_failure", [])
    assert info.value.details is not None
    assert info.value.details.error == "Subtask failed: inner"


def test_unknown_subtask_fails_fast(render: Render) -> None:
    # A 4xx from /run-subtask (not a 5xx, which official workers retry for ~5 min,
    # a 4xx) makes the official worker give up at once.
    began = time.monotonic()
    details = render.workflows.run_task("wf/calls_unregistered", [], timeout=30)
    assert time.monotonic() - began < 15
    (message,) = details.results
    assert message.startswith("ClientError: "), message
    assert "ghost" in message


def test_retries_follow_the_registered_policy(render: Render, tmp_path: pathlib.Path) -> None:
    # Retry(max_retries=2, wait_duration_ms=100, backoff_scaling=3.0) is registered as
    # {"max_retries": 2, "wait_duration_ms": 100, "factor": 3.0}: waits 0.1 s then 0.3 s.
    details = _run(render, "flaky", [str(tmp_path / "count")])
    assert details.results == ["ok after 2 failures"]
    assert details.retries == 2
    assert [a.attempt for a in details.attempts] == [0, 1, 2]
    assert [str(a.status) for a in details.attempts] == ["failed", "failed", "completed"]
    assert [a.error for a in details.attempts[:2]] == ["attempt 0 failed", "attempt 1 failed"]
    gaps = []
    for before, after in zip(details.attempts, details.attempts[1:], strict=False):
        assert before.completed_at is not None
        assert after.started_at is not None
        gaps.append((after.started_at - before.completed_at).total_seconds())
    assert 0.099 <= gaps[0] < 0.9, gaps  # not the 1 s of the default policy
    assert 0.299 <= gaps[1] < 1.5, gaps  # factor 3.0 was read, not a default 2.0 or 1.5

    with pytest.raises(TaskRunError) as info:
        _run(render, "always_fails", [])
    final = info.value.details
    assert final is not None
    assert final.error == "still broken"
    assert final.retries == 1
    assert [str(a.status) for a in final.attempts] == ["failed", "failed"]


def test_registered_timeout_is_enforced(render: Render) -> None:
    began = time.monotonic()
    with pytest.raises(TaskRunError) as info:
        _run(render, "too_slow", [])
    assert "timed out" in str(info.value)
    assert time.monotonic() - began < 20


def test_cancel_kills_the_official_worker_tree(render: Render) -> None:
    parent = render.workflows.start_task("wf/parent_of_sleeper", [])
    deadline = time.monotonic() + WAIT
    children: list[Any] = []
    while time.monotonic() < deadline and not children:
        children = [
            run
            for run in render.workflows.list_task_runs(
                ListTaskRunsParams(root_task_run_id=parent.id)
            )
            if run.id != parent.id and str(run.status) == "running"
        ]
        time.sleep(0.05)
    assert children, "the sleeper subtask never started"
    render.workflows.cancel_task_run(parent.id)
    final = render.workflows.wait_for_runs([parent.id, children[0].id], timeout=WAIT)
    assert [str(run.status) for run in final] == ["canceled", "canceled"]


def test_official_rest_client_inside_an_official_worker(render: Render) -> None:
    details = _run(render, "nested_rest", [6])
    assert details.results == [36]


def test_task_context_metadata_1x(render: Render, official: Any) -> None:
    if official.label != "1.x":
        pytest.skip("ctx.metadata exists only in the 1.x SDK")
    root = _run(render, "whoami", [])
    assert root.results == [
        {"task_run_id": root.id, "root_task_run_id": root.id, "parent_task_run_id": None}
    ]
    parent = _run(render, "parent_whoami", [])
    (outcome,) = parent.results
    assert outcome["me"] == parent.id
    child = outcome["self"]
    assert child["parent_task_run_id"] == parent.id
    assert child["root_task_run_id"] == parent.id
    assert child["task_run_id"] not in (None, parent.id)
