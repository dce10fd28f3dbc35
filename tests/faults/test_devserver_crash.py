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
import sqlite3

import requests

from render_core.models import TaskRunStatus
from render_sdk import Render
from tests.faults.support import DevServerProcess, kill_groups, socket_dirs_of, wait_until

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
                task_input: list[object] = [i, 0.4] if kind == "nap" else [i]
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

            wait_until(mixed, timeout=60)
            seen = collections.Counter(states.values())
            logged_before = {run_id for run_id, state in states.items() if state == "completed"}
    finally:
        orphans = first.kill_hard()
        # Task processes live in their own sessions and outlive a crashed server;
        # they are ours to stop (the restarted server retries their runs), and so is
        # the socket directory the crashed server could not remove.
        leftovers = socket_dirs_of(orphans)
        kill_groups(orphans)
        for directory in leftovers:
            shutil.rmtree(directory, ignore_errors=True)
    print(f"\ncrash: killed with {dict(seen)}, {len(orphans)} task processes orphaned")

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
