"""The dev server and its workers under faults: killed workers, timeouts, cancels.

Real task processes running the SDK's worker, a real dev server (in this process,
on its own thread), real sockets and SQLite. Timeouts are scaled down
(``timeout_scale``): a task registered with ``timeout_seconds=30`` times out after
1.5 s here.
"""

from __future__ import annotations

import os
import pathlib
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from render_core.errors import TaskRunError
from render_core.models import ListTaskRunsParams, TaskRunDetails, TaskRunStatus
from render_devserver.server import DevServer
from render_sdk import Render
from tests.faults.support import ROOT, wait_until

SCALE = 0.05
LIMIT = 30 * SCALE  # the scaled timeout of the tasks registered with 30 s
WORKFLOW = """
import asyncio, ctypes, os, signal, sys, time
from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


def first_time(marker):
    if os.path.exists(marker):
        return False
    open(marker, "w").close()
    return True


def die(how):
    print(f"dying by {how}", flush=True)
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "exit":
        os._exit(7)
    elif how == "segfault":
        ctypes.string_at(0)


@app.task(retry=Retry(max_retries=1, wait_duration_ms=10))
def dies_once(how: str, marker: str) -> str:
    if first_time(marker):
        die(how)
    return f"survived {how}"


@app.task
def dies_always(how: str) -> str:
    die(how)
    return "unreachable"


@app.task
def square(a: int) -> int:
    return a * a


@app.task
async def parent_of_dying_child(how: str, marker: str) -> list:
    return list(await asyncio.gather(dies_once(how, marker), square(4)))


@app.task
def slow_square(a: int) -> int:
    time.sleep(0.5)
    return a * a


@app.task(retry=Retry(max_retries=1, wait_duration_ms=10))
async def parent_dies_after_starting_children(marker: str) -> str:
    if first_time(marker):
        for i in range(3):
            asyncio.ensure_future(slow_square(i))
        await asyncio.sleep(0.3)
        die("sigkill")
    return "second attempt"


@app.task(timeout_seconds=30)
def hangs() -> None:
    time.sleep(600)


@app.task(timeout_seconds=30)
async def ignores_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)


@app.task(retry=Retry(max_retries=3, wait_duration_ms=1000, backoff_scaling=1.0))
def fails_then_waits() -> None:
    raise RuntimeError("try again later")


@app.task
async def leaf(directory: str) -> None:
    with open(os.path.join(directory, str(os.getpid())), "w"):
        pass
    await asyncio.sleep(600)


@app.task
async def mid(directory: str) -> list:
    return list(await asyncio.gather(leaf(directory), leaf(directory)))


@app.task
async def top(directory: str) -> list:
    # return_exceptions: a canceled child must not end the parent before the test
    # cancels it too (how soon a parent hears of it depends on how fast runs start).
    results = await asyncio.gather(mid(directory), mid(directory), return_exceptions=True)
    return [str(result) for result in results]


if __name__ == "__main__":
    app.start()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    project = tmp_path_factory.mktemp("fault-project")
    (project / "main.py").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = ROOT
    env["PYTHONFAULTHANDLER"] = ""
    dev = DevServer(
        [sys.executable, "main.py"],
        port=0,
        cwd=str(project),
        env=env,
        db=":memory:",
        workflow_slug="wf",
        concurrency=8,
        ping_interval=0.5,
        timeout_scale=SCALE,
    )
    with dev.run_in_thread() as running:
        yield running


@pytest.fixture
def render(server: DevServer) -> Iterator[Render]:
    with Render(base_url=server.url) as client:
        yield client


KILLS = {
    "sigkill": "was killed by signal 9 (SIGKILL)",
    "exit": "exited with status 7",
    "segfault": "was killed by signal 11 (SIGSEGV)",
}


@pytest.mark.parametrize("how", sorted(KILLS))
def test_worker_killed_mid_attempt_is_retried_with_a_clear_message(
    render: Render, tmp_path: pathlib.Path, how: str
) -> None:
    details = render.workflows.run_task("wf/dies_once", [how, str(tmp_path / "m")], timeout=60)
    assert details.results == [f"survived {how}"]
    first, second = details.attempts
    assert first.status is TaskRunStatus.FAILED
    assert KILLS[how] in (first.error or ""), first.error
    assert "before reporting a result" in (first.error or "")
    assert f"dying by {how}" in (first.error or "")  # the last output is quoted
    assert second.status is TaskRunStatus.COMPLETED


@pytest.mark.parametrize("how", sorted(KILLS))
def test_worker_killed_without_retries_fails_the_run(render: Render, how: str) -> None:
    with pytest.raises(TaskRunError) as caught:
        render.workflows.run_task("wf/dies_always", [how], timeout=60)
    assert KILLS[how] in str(caught.value)


@pytest.mark.parametrize("how", sorted(KILLS))
def test_child_killed_leaves_the_parent_and_its_siblings_unaffected(
    render: Render, tmp_path: pathlib.Path, how: str
) -> None:
    details = render.workflows.run_task(
        "wf/parent_of_dying_child", [how, str(tmp_path / "m")], timeout=60
    )
    assert details.results == [[f"survived {how}", 16]]
    assert len(details.attempts) == 1


def _children(render: Render, root_id: str) -> list[TaskRunDetails]:
    runs = render.workflows.list_task_runs(ListTaskRunsParams(root_task_run_id=root_id))
    return [render.workflows.get_task_run(r.id) for r in runs if r.id != root_id]


def test_parent_killed_leaves_its_started_subtasks_running_to_completion(
    render: Render, tmp_path: pathlib.Path
) -> None:
    details = render.workflows.run_task(
        "wf/parent_dies_after_starting_children", [str(tmp_path / "m")], timeout=60
    )
    assert details.results == ["second attempt"]
    assert KILLS["sigkill"] in (details.attempts[0].error or "")

    def children_done() -> bool:
        children = _children(render, details.id)
        return len(children) == 3 and all(c.status.is_terminal for c in children)

    wait_until(children_done)
    children = _children(render, details.id)
    assert sorted(c.results[0] for c in children) == [0, 1, 4]  # type: ignore[type-var]
    assert all(c.status is TaskRunStatus.COMPLETED for c in children)


@pytest.mark.parametrize("task", ["hangs", "ignores_sigterm"])
def test_timeout_is_enforced_within_a_second_of_the_limit(render: Render, task: str) -> None:
    run = render.workflows.start_task(f"wf/{task}", [])
    with pytest.raises(TaskRunError) as caught:
        render.workflows.wait_for_run(run.id, timeout=60)
    details = caught.value.details
    assert details is not None
    assert details.status is TaskRunStatus.FAILED
    (attempt,) = details.attempts
    assert "timed out" in (attempt.error or "")
    assert attempt.started_at is not None
    assert attempt.completed_at is not None
    took = (attempt.completed_at - attempt.started_at).total_seconds()
    assert LIMIT <= took <= LIMIT + 1.0, took


def test_cancel_during_backoff_stops_the_retries(render: Render) -> None:
    run = render.workflows.start_task("wf/fails_then_waits", [])

    def between_retries() -> bool:
        details = render.workflows.get_task_run(run.id)
        return details.status is TaskRunStatus.PENDING and len(details.attempts) == 1

    wait_until(between_retries)
    render.workflows.cancel_task_run(run.id)
    details = render.workflows.get_task_run(run.id)
    assert details.status is TaskRunStatus.CANCELED
    # Past the moment the retry was due (1 s after the failure): nothing started.
    time.sleep(1.5)
    details = render.workflows.get_task_run(run.id)
    assert details.status is TaskRunStatus.CANCELED
    assert len(details.attempts) == 1


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def test_cancel_of_a_subtree_stops_exactly_that_subtree(
    render: Render, tmp_path: pathlib.Path
) -> None:
    root = render.workflows.start_task("wf/top", [str(tmp_path)])

    def all_running() -> bool:
        runs = _children(render, root.id)
        return len(runs) == 6 and all(r.status is TaskRunStatus.RUNNING for r in runs)

    wait_until(all_running)
    wait_until(lambda: len(os.listdir(tmp_path)) == 4)
    runs = _children(render, root.id)
    mids = [r for r in runs if r.parent_task_run_id == root.id]
    victim, sibling = mids
    render.workflows.cancel_task_run(victim.id)
    by_id = {r.id: r for r in _children(render, root.id)}
    canceled = {victim.id} | {r.id for r in runs if r.parent_task_run_id == victim.id}
    assert len(canceled) == 3
    for run_id, details in by_id.items():
        expected = TaskRunStatus.CANCELED if run_id in canceled else TaskRunStatus.RUNNING
        assert details.status is expected, (run_id, details.status)
    # Then the whole tree: every process is stopped.
    render.workflows.cancel_task_run(root.id)
    assert render.workflows.get_task_run(root.id).status is TaskRunStatus.CANCELED
    assert all(r.status.is_terminal for r in _children(render, root.id))
    pids = [int(name) for name in os.listdir(tmp_path)]
    wait_until(lambda: not any(_alive(pid) for pid in pids), timeout=30)
    assert sibling.id not in canceled
