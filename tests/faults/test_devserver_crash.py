"""The dev server SIGKILLed with 100 runs in flight, then restarted on the same database.

At the moment of the kill some runs are pending (never started), some running (a
process mid-attempt) and some between retries (first attempt failed, waiting out
the retry delay). After the restart every run reaches a terminal state, none is
stuck, none is duplicated (one record and one terminal event per run, the right
result for each input) and the logs written before the crash are still there.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import sqlite3
import subprocess
import sys

import requests

from render_core.models import TaskRunStatus
from render_sdk import Render
from tests.faults.support import (
    DevServerProcess,
    clean_env,
    dev_server_process,
    is_running,
    kill_groups,
    socket_dirs_of,
    wait_until,
    watchdog_of,
)

RUNS = 100


def _states(render: Render, ids: list[str]) -> dict[str, str]:
    """Each run's state: pending, running, between_retries or a terminal status."""
    states = {}
    for run_id in ids:
        details = render.workflows.get_task_run(run_id)
        state = details.status.value
        if details.status is TaskRunStatus.PENDING and details.attempts:
            state = "between_retries"
        states[run_id] = state
    return states


def test_sigkill_with_runs_in_flight_then_restart_loses_nothing(
    tiny_project: tuple[str, list[str]],
) -> None:
    cwd, command = tiny_project
    db = os.path.join(cwd, "dev.sqlite3")
    markers = os.path.join(cwd, "markers")
    args = ["--concurrency", "6", "--workflow-slug", "wf"]
    first = DevServerProcess(cwd, command, db=db, args=args)
    orphans: list[int] = []
    seen: collections.Counter[str] = collections.Counter()
    try:
        with Render(base_url=first.url) as render:
            ids: list[str] = []
            expected: dict[str, int] = {}
            for i in range(RUNS):
                kind = ("nap", "flaky", "noop")[i % 3]
                # Naps long enough that the mix lasts seconds: a snapshot is 100 GETs
                # in a row, which take a while on a busy machine.
                task_input: list[object] = [i, 1.0] if kind == "nap" else [i]
                if kind == "flaky":
                    task_input.append(markers)
                run = render.workflows.start_task(f"wf/{kind}", task_input)
                ids.append(run.id)
                expected[run.id] = i
            states: dict[str, str] = {}

            def mixed() -> bool:
                states.update(_states(render, ids))
                found = set(states.values())
                return {"pending", "running", "between_retries", "completed"} <= found

            try:
                wait_until(mixed, timeout=60)
            except AssertionError:
                last = dict(collections.Counter(states.values()))
                raise AssertionError(f"never all four states at once; last seen: {last}") from None
            seen = collections.Counter(states.values())
            logged_before = {run_id for run_id, state in states.items() if state == "completed"}
    finally:
        orphans = first.kill_hard()
        leftovers = socket_dirs_of(orphans)
    try:
        # Task processes die with the server; its watchdog ends them and removes
        # the socket directory the crashed server could not remove.
        wait_until(lambda: not any(map(is_running, orphans)), timeout=15)
        assert not any(os.path.exists(directory) for directory in leftovers)
    finally:
        # Never leave processes behind, even if the above failed.
        kill_groups([pid for pid in orphans if is_running(pid)])
        for directory in leftovers:
            shutil.rmtree(directory, ignore_errors=True)
    print(f"\ncrash: killed with {dict(seen)}, {len(orphans) - 1} task processes gone with it")

    second = DevServerProcess(cwd, command, db=db, args=args)
    try:
        with Render(base_url=second.url) as render:
            finished = {d.id: d for d in render.workflows.as_completed(ids, timeout=120)}
            assert set(finished) == set(ids)
            for run_id, details in finished.items():
                assert details.status is TaskRunStatus.COMPLETED, details
                assert details.results == [expected[run_id]]
            interrupted = [
                attempt.error
                for details in finished.values()
                for attempt in details.attempts
                if attempt.error and "interrupted" in attempt.error
            ]
            assert interrupted, "runs that were running at the kill were retried"
            listed = [run.id for run in render.workflows.iter_task_runs()]
            assert sorted(listed) == sorted(ids)  # nothing duplicated, nothing invented
            # Logs of runs that finished before the crash survived it (read by the API).
            assert logged_before, "some runs should have finished before the kill"
            for run_id in logged_before:
                answer = requests.get(
                    f"{second.url}/v1/logs", params={"taskRunId": run_id}, timeout=10
                )
                assert answer.status_code == 200
                messages = [entry["message"] for entry in answer.json()["logs"]]
                assert any(m.endswith(f" {expected[run_id]}") for m in messages), messages
    finally:
        assert second.stop() == 0
    with sqlite3.connect(db) as conn:
        events = dict(conn.execute("SELECT run_id, COUNT(*) FROM events GROUP BY run_id"))
        log_runs = {row[0] for row in conn.execute("SELECT DISTINCT run_id FROM logs")}
    assert set(events) == set(ids)
    assert set(events.values()) == {1}, "exactly one terminal event per run"
    assert logged_before <= log_runs
    assert set(ids) <= log_runs


# -- task processes die with the server ------------------------------------------------


def _family(markers: str, i: int) -> list[tuple[int, int]]:
    """(task pid, its child's pid) of each attempt of ``family(i, ...)`` so far, oldest first."""
    found = []
    for name in os.listdir(markers):
        if name.startswith(f"family-{i}-") and not name.endswith(".tmp"):
            path = os.path.join(markers, name)
            with open(path, encoding="ascii") as handle:
                leader, child = (int(p) for p in handle.read().split())
            found.append((os.stat(path).st_mtime_ns, leader, child))
    return [(leader, child) for _, leader, child in sorted(found)]


def _second_attempt_running(render: Render, run_id: str, markers: str) -> bool:
    details = render.workflows.get_task_run(run_id)
    return (
        details.status is TaskRunStatus.RUNNING
        and len(details.attempts) == 2
        and len(_family(markers, 1)) == 2
    )


def test_task_processes_die_with_the_server_and_the_attempt_is_retried_once(
    tiny_project: tuple[str, list[str]],
) -> None:
    cwd, command = tiny_project
    db = os.path.join(cwd, "dev.sqlite3")
    markers = os.path.join(cwd, "markers")
    args = ["--workflow-slug", "wf"]
    first = DevServerProcess(cwd, command, db=db, args=args)
    try:
        with Render(base_url=first.url) as render:
            run = render.workflows.start_task("wf/family", [1, 60, markers])
            wait_until(lambda: len(_family(markers, 1)) == 1, timeout=30)
        ((leader, child),) = _family(markers, 1)
        watchdog = watchdog_of(first.pid)
        assert watchdog is not None
        sockets = socket_dirs_of([leader])
        assert sockets
    finally:
        first.kill()  # SIGKILL to the server process alone, not to its group
    # The task process, the child it started and the watchdog are all gone soon.
    wait_until(lambda: not any(map(is_running, (leader, child, watchdog))), timeout=10)
    assert not any(os.path.exists(directory) for directory in sockets)

    second = DevServerProcess(cwd, command, db=db, args=args)
    try:
        with Render(base_url=second.url) as render:
            wait_until(lambda: _second_attempt_running(render, run.id, markers), timeout=30)
            details = render.workflows.get_task_run(run.id)
            assert details.attempts[0].error is not None
            assert "interrupted" in details.attempts[0].error
            (_, (new_leader, new_child)) = _family(markers, 1)
            assert is_running(new_leader)
            assert is_running(new_child)
            assert not is_running(leader)
            assert not is_running(child)
            render.workflows.cancel_task_run(run.id)
            assert len(render.workflows.get_task_run(run.id).attempts) == 2  # retried once
    finally:
        assert second.stop() == 0
    assert len(_family(markers, 1)) == 2
    wait_until(lambda: not is_running(new_leader) and not is_running(new_child), timeout=10)


def test_what_a_previous_life_left_running_is_ended_before_the_retry(
    tiny_project: tuple[str, list[str]],
) -> None:
    cwd, command = tiny_project
    db = os.path.join(cwd, "dev.sqlite3")
    markers = os.path.join(cwd, "markers")
    args = ["--workflow-slug", "wf"]
    first = DevServerProcess(cwd, command, db=db, args=args)
    try:
        with Render(base_url=first.url) as render:
            run = render.workflows.start_task("wf/family", [1, 60, markers])
            wait_until(lambda: len(_family(markers, 1)) == 1, timeout=30)
        ((leader, child),) = _family(markers, 1)
        # The worst case: the watchdog dies first, then the server.
        watchdog = watchdog_of(first.pid)
        assert watchdog is not None
        os.kill(watchdog, signal.SIGKILL)
        wait_until(lambda: not is_running(watchdog), timeout=10)
    finally:
        first.kill()
    if sys.platform.startswith("linux"):
        # The kernel's parent-death signal ends the task process itself; the child
        # it started is in its process group but has no such signal: a leftover.
        wait_until(lambda: not is_running(leader), timeout=10)
    assert is_running(child)

    second = DevServerProcess(cwd, command, db=db, args=args)
    try:
        # Listening means started: the leftover was ended before anything was retried.
        assert not is_running(child)
        assert not is_running(leader)
        with Render(base_url=second.url) as render:
            wait_until(lambda: _second_attempt_running(render, run.id, markers), timeout=30)
            render.workflows.cancel_task_run(run.id)
    finally:
        assert second.stop() == 0
    assert any("left running by the previous server" in line for line in second.banner)


def test_a_database_in_use_by_a_running_server_is_refused(
    tiny_project: tuple[str, list[str]],
) -> None:
    cwd, command = tiny_project
    db = os.path.join(cwd, "dev.sqlite3")
    with dev_server_process(cwd, command, db=db, args=["--workflow-slug", "wf"]) as first:
        other = subprocess.run(
            [sys.executable, "-m", "render_devserver", "--port", "0", "--db", db, "--", *command],
            cwd=cwd,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert other.returncode == 1
        assert "in use by another dev server" in other.stderr
        assert f"pid {first.pid}" in other.stderr
        with Render(base_url=first.url) as render:  # the first one is untouched
            assert render.workflows.run_task("wf/noop", [4], timeout=60).results == [4]
