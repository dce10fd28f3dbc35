"""The dev-only endpoints behind the dashboard (/dev/runs, /dev/runs/{id}/tree, /trace, /input,
/dev/metrics) and the rerun header of POST /v1/task-runs, against a real dev server running
real task processes."""

from __future__ import annotations

import datetime as _dt
import json
import os
import pathlib
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from render_core import lifecycle
from render_devserver.server import DevServer
from render_devserver.store import Store, run_to_document
from tests.support.trace_check import check_trace

ROOT = pathlib.Path(__file__).resolve().parents[2]

WORKFLOW = """
import asyncio
from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))

@app.task
def square(a: int) -> int:
    return a * a

@app.task
async def fan_out(n: int) -> list[int]:
    return list(await asyncio.gather(*(square(i) for i in range(n))))

@app.task(retry=Retry(max_retries=1, wait_duration_ms=200))
def flaky() -> None:
    raise ValueError("not this time")

if __name__ == "__main__":
    app.start()
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    project = tmp_path_factory.mktemp("dev-views")
    (project / "main.py").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    dev = DevServer(
        [sys.executable, "main.py"],
        port=0,
        db=str(project / "dev.sqlite3"),
        cwd=str(project),
        env=_env(),
        workflow_slug="wf",
        concurrency=4,
    )
    with dev.run_in_thread() as running:
        yield running


def _start(server: DevServer, task: str, input_data: Any, **headers: str) -> str:
    response = requests.post(
        f"{server.url}/v1/task-runs",
        json={"task": f"wf/{task}", "input": input_data},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    run_id: str = response.json()["id"]
    return run_id


def _get(server: DevServer, path: str, **params: Any) -> Any:
    response = requests.get(f"{server.url}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _refused(server: DevServer, path: str, code: int, **params: Any) -> str:
    response = requests.get(f"{server.url}{path}", params=params, timeout=30)
    assert response.status_code == code, response.text
    message: str = response.json()["message"]
    return message


def _finished(server: DevServer, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        details: dict[str, Any] = _get(server, f"/v1/task-runs/{run_id}")
        if details["status"] in ("completed", "failed", "canceled"):
            return details
        time.sleep(0.05)
    raise AssertionError(f"{run_id} did not finish")


def test_tree_segments_match_the_stored_attempts(server: DevServer) -> None:
    root = _start(server, "fan_out", [3])
    flaky = _start(server, "flaky", [])
    _finished(server, root)
    failed = _finished(server, flaky)
    tree = _get(server, f"/dev/runs/{root}/tree")
    assert tree["rootTaskRunId"] == root
    assert tree["taskRunId"] == root
    assert tree["truncated"] is False
    assert [r["taskName"] for r in tree["runs"]] == ["fan_out", "square", "square", "square"]
    assert all(r["parentTaskRunId"] == root for r in tree["runs"][1:])
    # The same tree seen from a child.
    child_view = _get(server, f"/dev/runs/{tree['runs'][2]['id']}/tree")
    assert [r["id"] for r in child_view["runs"]] == [r["id"] for r in tree["runs"]]

    (run,) = _get(server, f"/dev/runs/{flaky}/tree")["runs"]
    assert [s["kind"] for s in run["segments"] if s["kind"] != "queued"] == [
        "attempt",
        "retry-wait",
        "attempt",
    ]
    attempts = [s for s in run["segments"] if s["kind"] == "attempt"]
    for segment, stored in zip(attempts, failed["attempts"], strict=True):
        assert segment["start"] == stored["startedAt"]
        assert segment["end"] == stored["completedAt"]
        assert segment["status"] == "failed"
        assert segment["error"] == "ValueError: not this time"
    wait = next(s for s in run["segments"] if s["kind"] == "retry-wait")
    assert wait["start"] == failed["attempts"][0]["completedAt"]
    assert wait["end"] == failed["attempts"][1]["enqueuedAt"]
    assert run["attempts"] == 2
    assert run["error"] == "ValueError: not this time"
    assert _refused(server, "/dev/runs/trn-nope/tree", 404) == "task run not found: trn-nope"


def test_trace_file_matches_the_stored_attempts(server: DevServer) -> None:
    root = _start(server, "fan_out", [2])
    _finished(server, root)
    response = requests.get(f"{server.url}/dev/runs/{root}/trace", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f'attachment; filename="trace-{root}.json"'
    document = response.json()
    check_trace(document)
    runs = [r["taskRun"] for r in _get(server, "/v1/task-runs", rootTaskRunId=root)]
    base = _dt.datetime.fromisoformat(document["otherData"]["startTime"].replace("Z", "+00:00"))
    events = [e for e in document["traceEvents"] if e.get("cat") == "attempt"]
    assert len(events) == sum(len(r["attempts"]) for r in runs) == 3
    for run in runs:
        (stored,) = run["attempts"]
        (event,) = [e for e in events if e["args"]["taskRunId"] == run["id"]]
        started = _dt.datetime.fromisoformat(stored["startedAt"].replace("Z", "+00:00"))
        completed = _dt.datetime.fromisoformat(stored["completedAt"].replace("Z", "+00:00"))
        assert event["ts"] == (started - base) // _dt.timedelta(microseconds=1)
        assert event["dur"] == (completed - started) // _dt.timedelta(microseconds=1)
        assert event["args"]["status"] == "completed"
    assert _refused(server, "/dev/runs/trn-nope/trace", 404) == "task run not found: trn-nope"


def test_rerun_header_records_the_origin(server: DevServer) -> None:
    original = _start(server, "square", [6])
    rerun = _start(server, "square", [6], **{"Render-Dev-Rerun-Of": original})
    tree = _get(server, f"/dev/runs/{rerun}/tree")
    assert tree["runs"][0]["rerunOf"] == original
    assert _get(server, f"/dev/runs/{original}/tree")["reruns"] == [rerun]
    # The public shapes are unchanged.
    assert "rerunOf" not in json.dumps(_get(server, f"/v1/task-runs/{rerun}"))
    # An unknown origin is refused, and no run is started.
    before = len(_get(server, "/v1/task-runs", limit=100))
    response = requests.post(
        f"{server.url}/v1/task-runs",
        json={"task": "wf/square", "input": [1]},
        headers={"Render-Dev-Rerun-Of": "trn-nope"},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Render-Dev-Rerun-Of: task run not found: trn-nope"
    assert len(_get(server, "/v1/task-runs", limit=100)) == before
    # Deduplicated by an idempotency key: the existing run keeps its own origin.
    keyed = requests.post(
        f"{server.url}/v1/task-runs",
        json={"task": "wf/square", "input": [2], "idempotencyKey": "k-rerun"},
        timeout=30,
    ).json()["id"]
    again = requests.post(
        f"{server.url}/v1/task-runs",
        json={"task": "wf/square", "input": [2], "idempotencyKey": "k-rerun"},
        headers={"Render-Dev-Rerun-Of": original},
        timeout=30,
    ).json()["id"]
    assert again == keyed
    assert _get(server, f"/dev/runs/{keyed}/tree")["runs"][0]["rerunOf"] is None


def test_input_is_served_as_stored(server: DevServer) -> None:
    big = 2**64 + 1
    run_id = _start(server, "square", {"a": big})
    response = requests.get(f"{server.url}/dev/runs/{run_id}/input", timeout=30)
    assert response.status_code == 200
    assert response.text == f'{{"a":{big}}}'
    assert _refused(server, "/dev/runs/trn-nope/input", 404) == "task run not found: trn-nope"


def test_a_run_without_input(tmp_path: pathlib.Path, server: DevServer) -> None:
    # A database written by something else: a finished run whose input is null.
    db = str(tmp_path / "odd.sqlite3")
    store = Store(db)
    run = lifecycle.new_run(
        run_id="trn-noinput", task_id="tsk-x", task_name="square", input_data=[], now=_now()
    )
    run = lifecycle.complete(lifecycle.start_attempt(run, _now()), [0], _now())
    document = run_to_document(run)
    document["input"] = None
    store.put_run(run)
    store._db.execute("UPDATE runs SET doc = ? WHERE id = ?", (json.dumps(document), "trn-noinput"))
    store.close()
    odd = DevServer(
        list(server.command), port=0, db=db, cwd=server.cwd, env=server.env, workflow_slug="wf"
    )
    with odd.run_in_thread() as running:
        message = _refused(running, "/dev/runs/trn-noinput/input", 409)
        assert message == "task run trn-noinput has no input to run again with"


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def test_runs_search(server: DevServer) -> None:
    before_all = _now()
    first = _start(server, "square", [1])
    second = _start(server, "square", [2])
    tree = _start(server, "fan_out", [1])
    _finished(server, tree)
    after_all = _now() + _dt.timedelta(seconds=1)

    def ids(**params: Any) -> list[str]:
        return [r["id"] for r in _get(server, "/dev/runs", **params)["runs"]]

    assert ids(q=first) == [first]
    # Without "trn-"; 12 characters: past the timestamp, into the random bytes (8 would
    # hold only 8 random bits, which another run of the same second shares 1 time in 256).
    assert ids(q=first[4:16]) == [first]
    recent = ids(after=before_all.isoformat(), before=after_all.isoformat())
    assert recent[-3:] == [tree, second, first]  # the subtask of tree is in there too
    assert len(recent) == 4
    assert ids(after=before_all.isoformat(), roots="1") == [tree, second, first]
    assert ids(after=after_all.isoformat()) == []
    assert set(ids(task="wf/fan_out", after=before_all.isoformat())) == {tree}
    assert ids(task="wf/no_such_task") == []
    assert first not in ids(status="failed")
    document = _get(server, "/dev/runs", q=first)
    (item,) = document["runs"]
    assert item["taskName"] == "square"
    assert item["createdAt"] <= item["startedAt"]
    assert document["nextCursor"] is None
    # Pages: a cursor on each full page, none after the last.
    page = _get(server, "/dev/runs", after=before_all.isoformat(), limit=3)
    assert len(page["runs"]) == 3
    assert page["nextCursor"] == page["runs"][-1]["id"]
    rest = _get(
        server, "/dev/runs", after=before_all.isoformat(), limit=3, cursor=page["nextCursor"]
    )
    assert [r["id"] for r in rest["runs"]] == [first]
    assert rest["nextCursor"] is None

    assert "q: an id prefix" in _refused(server, "/dev/runs", 400, q="trn-*")
    assert "status: unknown status" in _refused(server, "/dev/runs", 400, status="done")
    assert "after: not an RFC 3339" in _refused(server, "/dev/runs", 400, after="yesterday")
    assert "after: must be earlier" in _refused(
        server, "/dev/runs", 400, after=after_all.isoformat(), before=before_all.isoformat()
    )
    assert "limit" in _refused(server, "/dev/runs", 400, limit="0")


def test_metrics(server: DevServer) -> None:
    done = _start(server, "square", [3])
    _finished(server, done)
    metrics = _get(server, "/dev/metrics")
    counts = metrics["runsByStatus"]
    assert set(counts) >= {"pending", "running", "completed", "failed", "canceled"}
    assert metrics["total"] == sum(counts.values())
    listed = _get(server, "/v1/task-runs", limit=100, status="completed")
    assert counts["completed"] == len(listed)
    assert metrics["queue"]["concurrency"] == 4
    assert set(metrics["queue"]) == {
        "queued",
        "running",
        "waitingRetry",
        "waitingOnSubtasks",
        "concurrency",
    }
    square = next(d for d in metrics["attemptDurations"] if d["taskName"] == "square")
    assert square["attempts"] >= 1
    assert 0 < square["p50Ms"] <= square["p95Ms"]


def test_a_retry_waiting_shows_in_the_queue(server: DevServer) -> None:
    flaky = _start(server, "flaky", [])
    deadline = time.monotonic() + 30
    seen = False
    while time.monotonic() < deadline and not seen:
        details = _get(server, f"/v1/task-runs/{flaky}")
        if details["status"] == "pending" and details["attempts"]:
            queue = _get(server, "/dev/metrics")["queue"]
            tree = _get(server, f"/dev/runs/{flaky}/tree")["runs"][0]
            # Between the attempts: a wait with a known end, marked in the queue.
            if tree["status"] == "pending":
                kinds = [s["kind"] for s in tree["segments"]]
                assert kinds[-2:] == ["retry-wait", "queued"] or kinds[-1] == "retry-wait"
                seen = queue["waitingRetry"] >= 1 or kinds[-1] == "queued"
        if details["status"] == "failed":
            break
        time.sleep(0.02)
    assert seen
    _finished(server, flaky)


def test_dev_endpoints_need_the_token(server: DevServer) -> None:
    guarded = DevServer(
        list(server.command),
        port=0,
        db=":memory:",
        cwd=server.cwd,
        env=server.env,
        workflow_slug="wf",
        auth_token="tok-1",
    )
    with guarded.run_in_thread() as running:
        for path in ("/dev/runs", "/dev/metrics", "/dev/runs/x/tree", "/dev/runs/x/trace"):
            assert requests.get(f"{running.url}{path}", timeout=30).status_code == 401
        ok = requests.get(
            f"{running.url}/dev/metrics", headers={"Authorization": "Bearer tok-1"}, timeout=30
        )
        assert ok.status_code == 200
