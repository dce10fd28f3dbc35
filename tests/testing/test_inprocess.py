"""render_sdk.testing in process: tasks and subtasks on one event loop, through JSON."""

from __future__ import annotations

import math

import pytest

from render_core.errors import TaskRunError
from render_core.models import TaskRunDetails, TaskRunStatus
from render_sdk import Retry, Workflows
from render_sdk.testing import LocalRunner, run_local, run_local_async
from tests.testing import sample_app
from tests.testing.sample_app import app


def test_a_task_and_its_subtasks_run_in_process() -> None:
    assert run_local(app, sample_app.square_it, 7) == 49
    runner = LocalRunner(app)
    run = runner.run("sum_squares", 4)
    assert run.value() == 0 + 1 + 4 + 9
    assert run.status is TaskRunStatus.COMPLETED
    assert [(r.task_name, r.input, r.result) for r in run.subtasks] == [
        ("square_it", [i], i * i) for i in range(4)
    ]
    assert all(child.parent is run for child in run.subtasks)
    assert [r.id for r in run.walk()] == [r.id for r in runner.runs]
    assert len({r.id for r in runner.runs}) == 5


def test_task_names_as_clients_write_them_and_named_arguments() -> None:
    assert run_local(app, "my-workflow/square_it", a=3) == 9
    assert run_local(app, "my-workflow/square_it:2", a=4) == 16  # a version, as the API takes
    with pytest.raises(ValueError, match=r"no task named 'nope'.*square_it"):
        run_local(app, "nope")
    with pytest.raises(ValueError, match="not both"):
        run_local(app, "square_it", 1, a=2)


def test_arguments_and_results_go_through_json() -> None:
    assert run_local(app, "echo_value", {1: (2, 3), "x": None}) == {"1": [2, 3], "x": None}
    run = LocalRunner(app).run("echo_value", value=(1, 2))
    assert run.input == {"value": [1, 2]}
    assert run.result == [1, 2]
    with pytest.raises(TypeError, match="JSON-serialisable"):
        run_local(app, "echo_value", {1, 2})
    with pytest.raises(TypeError, match="JSON-serialisable"):
        run_local(app, "echo_value", math.nan)
    with pytest.raises(TaskRunError, match="not JSON") as caught:
        run_local(app, "not_json_result")
    assert caught.value.details is not None
    assert caught.value.details.status is TaskRunStatus.FAILED


def test_a_failed_child_raises_task_run_error_in_the_parent() -> None:
    assert run_local(app, "catches_broken_child") == (
        "caught: Subtask failed: ValueError: child says no"
    )
    run = LocalRunner(app).run("propagates_broken_child")
    assert run.status is TaskRunStatus.FAILED
    assert run.error == "TaskRunError: Subtask failed: ValueError: deep down"
    (child,) = run.subtasks
    assert (child.task_name, child.status, child.error) == (
        "broken",
        TaskRunStatus.FAILED,
        "ValueError: deep down",
    )
    assert child.stack_trace is not None
    assert "raise ValueError(reason)" in child.stack_trace
    with pytest.raises(TaskRunError, match="deep down") as caught:
        run.value()
    assert caught.value.task_run_id == run.id


def test_retries_follow_the_policy_without_waiting_by_default() -> None:
    # The policy waits a minute between attempts; in process the retries start at once.
    run = LocalRunner(app).run("third_time_lucky")
    assert run.value() == 2
    assert run.attempts == 3
    details = run.details
    assert isinstance(details, TaskRunDetails)
    assert [a.status for a in details.attempts] == [
        TaskRunStatus.FAILED,
        TaskRunStatus.FAILED,
        TaskRunStatus.COMPLETED,
    ]
    assert details.attempts[0].error == "RuntimeError: attempt 0 failed"
    assert details.retries == 2

    single = LocalRunner(app, retries=False).run("third_time_lucky")
    assert (single.status, single.attempts) == (TaskRunStatus.FAILED, 1)


def test_retry_waits_can_be_kept_and_unset_retry_uses_the_platform_default() -> None:
    local = Workflows()
    calls: list[int] = []

    @local.task(retry=Retry(max_retries=1, wait_duration_ms=5))
    def waits_a_little() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first")
        return len(calls)

    @local.task
    def no_retry_option_inprocess() -> None:
        raise RuntimeError("always")

    assert LocalRunner(local, retry_waits=True).run(waits_a_little).value() == 2
    # No retry registered: Render's default, three retries.
    assert LocalRunner(local).run(no_retry_option_inprocess).attempts == 4


def test_context_subtask_errors_and_sync_limits_match_production() -> None:
    described = run_local(app, "describe_run", label="x")
    assert described == {"label": "x", "attempt": 0, "has_id": True, "child": 25}
    run = LocalRunner(app).run("calls_unknown_task")
    assert run.status is TaskRunStatus.FAILED
    assert "task not found: no_such_task_here" in (run.error or "")
    run = LocalRunner(app).run("sync_calls_subtask")
    assert "subtasks can only be called (and awaited) from async tasks" in (run.error or "")


def test_a_task_that_exits_fails_its_attempt() -> None:
    local = Workflows()

    @local.task(retry=Retry(max_retries=0, wait_duration_ms=0))
    def exits_inprocess() -> None:
        raise SystemExit(3)

    run = LocalRunner(local).run(exits_inprocess)
    assert run.error == "the task exited (status 3) before reporting a result"


async def test_async_variant_and_no_sync_call_inside_a_loop() -> None:
    assert await run_local_async(app, "sum_squares", 3) == 5
    run = await LocalRunner(app).run_async(sample_app.describe_run, "y")
    assert run.value()["child"] == 25
    with pytest.raises(RuntimeError, match="run_local_async"):
        run_local(app, "square_it", 1)


def test_runner_takes_only_workflows_and_tasks() -> None:
    with pytest.raises(TypeError, match="Workflows"):
        LocalRunner("tests.testing.sample_app:app")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="task function or its name"):
        LocalRunner(app).run(42)  # type: ignore[arg-type]
    # Outside any runner a task is still its plain function.
    assert sample_app.square_it(6) == 36
