"""``render-workflows tasks|runs ...`` against a real dev server (real worker processes,
real SQLite), in process with captured output and as a real subprocess."""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from render_core import lifecycle
from render_core.errors import TaskRunError
from render_core.models import ListTaskRunsParams
from render_devserver.server import DevServer
from render_devserver.store import Store, run_to_document
from render_sdk import Render, RenderAsync, _cli
from tests.support.trace_check import check_trace

ROOT = pathlib.Path(__file__).resolve().parents[2]

WORKFLOW = """
import asyncio, sys, time
from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))

@app.task
def square(a: int) -> int:
    return a * a

@app.task(retry=Retry(max_retries=1, wait_duration_ms=10))
def boom(message: str) -> None:
    print("about to fail", flush=True)
    raise ValueError(message)

@app.task
def chatty(n: int, pause: float = 0.0) -> int:
    for i in range(n):
        print(f"line {i}", flush=True)
        time.sleep(pause)
    print("to stderr", file=sys.stderr, flush=True)
    return n

@app.task
def sleeper(seconds: float) -> str:
    time.sleep(seconds)
    return "woke up"

@app.task
async def fan_out(n: int) -> list[int]:
    return list(await asyncio.gather(*(square(i) for i in range(n))))

if __name__ == "__main__":
    app.start()
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    directory = tmp_path_factory.mktemp("cli-project")
    (directory / "main.py").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    dev = DevServer(
        [sys.executable, "main.py"],
        port=0,
        db=str(directory / "dev.sqlite3"),
        cwd=str(directory),
        env=_env(),
        workflow_slug="wf",
        concurrency=4,
    )
    with dev.run_in_thread() as running:
        yield running


@pytest.fixture(autouse=True)
def _no_render_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("RENDER_") and key != "RENDER_DEV_NO_FORK":  # the suite's mode
            monkeypatch.delenv(key)


@pytest.fixture
def render(server: DevServer) -> Iterator[Render]:
    with Render(base_url=server.url) as client:
        yield client


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class CLI:
    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, *argv: str, tty: bool = False) -> tuple[int, str, str]:
        out = _Terminal() if tty else io.StringIO()
        err = io.StringIO()
        code = _cli.main([*argv, "--url", self.url], stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)

    def subprocess(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "render_sdk.cli", *argv],
            env={**_env(), "RENDER_LOCAL_DEV_URL": self.url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def cli(server: DevServer) -> CLI:
    return CLI(server.url)


def _rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.strip().splitlines()]


def test_tasks_list(cli: CLI) -> None:
    code, out, err = cli("tasks", "list")
    assert code == 0, err
    rows = _rows(out)
    assert rows[0] == ["ID", "NAME", "CREATED"]
    assert sorted(row[1] for row in rows[1:]) == [
        "wf/boom",
        "wf/chatty",
        "wf/fan_out",
        "wf/sleeper",
        "wf/square",
    ]
    assert all(row[0].startswith("tsk-") for row in rows[1:])
    # Columns line up: every name starts where the header's NAME does.
    lines = out.splitlines()
    assert {line.index("wf/") for line in lines[1:]} == {lines[0].index("NAME")}
    tasks = cli.json("tasks", "list")
    assert {task["slug"] for task in tasks} == {row[1] for row in rows[1:]}
    assert set(tasks[0]) >= {"id", "name", "createdAt"}


def test_start_and_wait_from_a_real_process(cli: CLI) -> None:
    done = cli.subprocess("--local", "runs", "start", "wf/square", "--input", "[7]", "--wait")
    assert done.returncode == 0, done.stderr
    fields = dict(line.split(None, 1) for line in done.stdout.splitlines()[:8] if line)
    assert fields["Status"] == "completed"
    assert fields["Result"] == "49"
    assert fields["Input"] == "[7]"
    assert fields["Task"].startswith("wf/square (tsk-")
    assert done.stderr.startswith("Started task run trn-")


def test_a_failed_run_exits_1_and_shows_its_error(cli: CLI) -> None:
    done = cli.subprocess(
        "runs", "start", "wf/boom", "--input", '{"message": "bad thing"}', "--wait", "--local"
    )
    assert done.returncode == 1
    assert "Error      ValueError: bad thing" in done.stdout
    attempts = [line for line in done.stdout.splitlines() if line.startswith(("1 ", "2 "))]
    assert [row.split()[1] for row in attempts] == ["failed", "failed"]
    assert done.stderr.splitlines()[-1].endswith("failed")
    assert "Traceback" not in done.stderr


def test_start_json_and_input_from_stdin(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"a": 12}'))
    details = cli.json("runs", "start", "wf/square", "--input-file", "-", "--wait")
    assert details["status"] == "completed"
    assert details["results"] == [144]
    assert details["input"] == {"a": 12}
    assert details["attempts"][0]["status"] == "completed"


def test_input_file_and_task_id(cli: CLI, tmp_path: pathlib.Path) -> None:
    square = next(t for t in cli.json("tasks", "list") if t["name"] == "square")
    path = tmp_path / "input.json"
    path.write_text("[\n  5\n]\n", encoding="utf-8")
    run = cli.json("runs", "start", square["id"], "--input-file", str(path), "--wait")
    assert run["taskId"] == square["id"]
    assert run["results"] == [25]


def test_start_without_wait_then_get_and_list(cli: CLI, render: Render) -> None:
    code, out, err = cli("runs", "start", "wf/square", "--input", "[3]")
    assert code == 0, err
    assert out.startswith("Started task run trn-")
    run_id = out.split()[3]
    render.workflows.wait_for_run(run_id, timeout=60)
    details = cli.json("runs", "get", run_id)
    assert details["id"] == run_id
    assert details["results"] == [9]
    assert "taskId" in details
    assert "rootTaskRunId" in details

    listed = cli.json("runs", "list", "--task", "wf/square", "--status", "completed")
    assert run_id in [run["id"] for run in listed]
    assert {run["status"] for run in listed} == {"completed"}
    assert cli.json("runs", "list", "--task", "wf/boom", "--status", "completed") == []

    code, out, err = cli("runs", "list", "--limit", "1")
    assert code == 0, err
    rows = _rows(out)
    assert rows[0] == ["ID", "TASK", "STATUS", "ATTEMPTS", "STARTED", "DURATION"]
    assert len(rows) == 2


def test_unknown_task_and_run_are_one_line_errors(cli: CLI) -> None:
    code, out, err = cli("runs", "start", "wf/missing", "--input", "[]")
    assert code == 1
    assert out == ""
    assert err.startswith("render-workflows: start task failed: task not found: wf/missing")
    assert "HTTP 404" in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = cli("runs", "get", "trn-nope")
    assert code == 1
    assert "task run not found: trn-nope" in err
    code, out, err = cli("runs", "watch", "trn-nope")
    assert code == 1
    assert "task run not found: trn-nope" in err


def test_cancel(cli: CLI, render: Render) -> None:
    run = render.workflows.start_task("wf/sleeper", [600])
    code, out, err = cli("runs", "cancel", run.id)
    assert code == 0, err
    assert out.strip() == f"Canceled task run {run.id} (canceled)"
    code, out, err = cli("runs", "cancel", run.id)
    assert code == 1
    assert "cancel task run failed" in err
    assert "HTTP 409" in err
    assert cli.json("runs", "get", run.id)["status"] == "canceled"


def test_logs_follow_until_the_run_ends(cli: CLI) -> None:
    started = cli.json("runs", "start", "wf/chatty", "--input", "[4, 0.2]")
    code, out, err = cli("runs", "logs", started["id"], "--follow", "--interval", "0.2")
    assert code == 0, err
    messages = [line.split("  ", 1)[1] for line in out.splitlines()]
    assert messages[:4] == ["line 0", "line 1", "line 2", "line 3"]
    assert "to stderr" in messages
    # Finished: the same lines, once each, as one JSON document or JSON lines.
    whole = cli.json("runs", "logs", started["id"])
    assert [entry["message"] for entry in whole] == messages
    assert {"name": "taskRun", "value": started["id"]} in whole[0]["labels"]
    code, out, err = cli("runs", "logs", started["id"], "-f", "--interval", "0.1", "--json")
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == whole


async def test_list_logs_on_both_faces(server: DevServer, render: Render) -> None:
    # A pause between lines: stdout and stderr are two pipes, and lines written to
    # both within the same instant have no order between them.
    run = render.workflows.start_task("wf/chatty", [2, 0.05])
    render.workflows.wait_for_run(run.id, timeout=60)
    page = render.workflows.list_logs([run.id], direction="forward", limit=1)
    assert page.has_more is True
    assert page.logs[0].message == "line 0"
    assert page.logs[0].task_run_id == run.id
    async with RenderAsync(base_url=server.url) as client:
        rest = await client.workflows.list_logs([run.id], start_time=page.next_start_time)
    assert [entry.message for entry in rest.logs][:2] == ["line 0", "line 1"]


def test_watch_prints_a_line_per_change_and_fails_if_a_run_failed(cli: CLI, render: Render) -> None:
    good = render.workflows.start_task("wf/chatty", [2, 0.3])
    bad = render.workflows.start_task("wf/boom", ["watch me"])
    code, out, err = cli("runs", "watch", good.id, bad.id, good.id, "--interval", "0.2")
    assert code == 1, err
    lines = out.strip().splitlines()
    assert lines[-1] == "All 2 finished: 1 completed, 1 failed"
    last = {}
    for line in lines[:-1]:
        fields = line.split()
        last[fields[1]] = fields
    assert last[good.id][2:4] == ["wf/chatty", "completed"]
    assert line_has(out, good.id, "result: 2")
    assert last[bad.id][2:4] == ["wf/boom", "failed"]
    assert line_has(out, bad.id, "error: ValueError: watch me")


def line_has(out: str, run_id: str, text: str) -> bool:
    return any(run_id in line and text in line for line in out.splitlines())


def test_watch_json_lines_and_live_display(cli: CLI, render: Render) -> None:
    run = render.workflows.start_task("wf/square", [4])
    code, out, err = cli("runs", "watch", run.id, "--json", "--interval", "0.2")
    assert code == 0, err
    states = [json.loads(line) for line in out.splitlines()]
    assert states[-1]["status"] == "completed"
    assert all(state["id"] == run.id for state in states)

    code, out, err = cli("runs", "watch", run.id, tty=True)
    assert code == 0, err
    assert "1 of 1 finished" in out
    assert "result: 16" in out
    other = render.workflows.start_task("wf/sleeper", [1.5])
    code, out, err = cli("runs", "watch", other.id, run.id, "--interval", "0.2", tty=True)
    assert code == 0, err
    # Redrawn in place: the cursor goes back up over the previous frame.
    assert "\x1b[" in out
    assert out.rstrip().endswith("2 of 2 finished")


def test_options_before_and_after_the_command(cli: CLI, server: DevServer) -> None:
    out_before, err_before = io.StringIO(), io.StringIO()
    code = _cli.main(["--json", "--url", server.url, "tasks", "list"], stdout=out_before,
                     stderr=err_before)  # fmt: skip
    assert code == 0, err_before.getvalue()
    assert json.loads(out_before.getvalue()) == cli.json("tasks", "list")


# -- rerun and trace ----------------------------------------------------------------------


def test_rerun_starts_the_same_task_with_the_same_input(cli: CLI, render: Render) -> None:
    big = 2**63 + 5  # exact through JSON, whatever a float could hold
    original = render.workflows.start_task("wf/square", {"a": big})
    code, out, err = cli("runs", "rerun", original.id)
    assert code == 0, err
    assert out.startswith("Started task run trn-")
    assert out.rstrip().endswith(f", a rerun of {original.id}")
    rerun_id = out.split()[3]
    assert rerun_id != original.id
    details = render.workflows.wait_for_run(rerun_id, timeout=60)
    assert details.input_ == {"a": big}
    assert details.results == [big * big]
    assert details.task_id == original.task_id
    # The dev server recorded where it came from (dev-only; the public shapes are unchanged).
    tree = requests.get(f"{cli.url}/dev/runs/{rerun_id}/tree", timeout=30).json()
    assert tree["runs"][0]["rerunOf"] == original.id
    assert "rerunOf" not in json.dumps(cli.json("runs", "get", rerun_id))


def test_rerun_wait_and_a_failing_task(cli: CLI, render: Render) -> None:
    failed = render.workflows.start_task("wf/boom", {"message": "again"})
    code, out, err = cli("runs", "rerun", failed.id, "--wait")
    assert code == 1
    assert "Error      ValueError: again" in out
    assert f"a rerun of {failed.id}; waiting for it to finish" in err
    done = cli.subprocess(
        "--local", "runs", "rerun", render.workflows.start_task("wf/square", [3]).id, "--wait"
    )
    assert done.returncode == 0, done.stderr
    assert "Result     9" in done.stdout
    code, out, err = cli("runs", "rerun", failed.id, "--wait", "--json")
    assert code == 1
    details = json.loads(out)
    assert details["status"] == "failed"
    assert details["input"] == {"message": "again"}


def test_rerun_bad_input(cli: CLI, server: DevServer, tmp_path: pathlib.Path) -> None:
    code, out, err = cli("runs", "rerun", "trn-doesnotexist")
    assert code == 1
    assert out == ""
    assert err.startswith(
        "render-workflows: get task run failed: task run not found: trn-doesnotexist (HTTP 404"
    )
    code, _, err = cli("runs", "rerun")
    assert code == 2
    assert "the following arguments are required: ID" in err
    code, _, err = cli("runs", "rerun", "trn-x", "--timeout", "3")
    assert code == 2
    assert "--timeout only applies with --wait" in err

    # A run whose input is null (a database written by something else).
    db = str(tmp_path / "odd.sqlite3")
    store = Store(db)
    now = _dt.datetime.now(_dt.timezone.utc)
    run = lifecycle.complete(
        lifecycle.start_attempt(
            lifecycle.new_run(
                run_id="trn-noinput", task_id="tsk-x", task_name="square", input_data=[], now=now
            ),
            now,
        ),
        [0],
        now,
    )
    document = run_to_document(run)
    document["input"] = None
    store.put_run(run)
    store._db.execute("UPDATE runs SET doc = ? WHERE id = 'trn-noinput'", (json.dumps(document),))
    store.close()
    odd = DevServer(
        list(server.command), port=0, db=db, cwd=server.cwd, env=server.env, workflow_slug="wf"
    )
    with odd.run_in_thread() as running:
        before = requests.get(f"{running.url}/v1/task-runs", timeout=30).json()
        code, out, err = CLI(running.url)("runs", "rerun", "trn-noinput")
        assert code == 1
        assert err == "render-workflows: task run trn-noinput has no input to run again with\n"
        assert requests.get(f"{running.url}/v1/task-runs", timeout=30).json() == before


def test_trace_writes_the_tree_as_trace_events(
    cli: CLI, render: Render, tmp_path: pathlib.Path
) -> None:
    root = render.workflows.run_task("wf/fan_out", [3], timeout=60)
    child = next(
        run
        for run in render.workflows.list_task_runs(ListTaskRunsParams(root_task_run_id=[root.id]))
        if run.id != root.id
    )
    # From the command line, redirected to a file (as the docs show), asked about a child.
    target = tmp_path / "trace.json"
    with target.open("w", encoding="utf-8") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "render_sdk.cli", "--local", "runs", "trace", child.id],
            env={**_env(), "RENDER_LOCAL_DEV_URL": cli.url},
            stdout=handle,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"render-workflows: wrote the tree of {root.id}: 4 run(s), 4 attempt(s)\n"
    document = json.loads(target.read_text(encoding="utf-8"))
    check_trace(document)
    assert document["otherData"]["rootTaskRunId"] == root.id
    stored = render.workflows.list_task_runs(ListTaskRunsParams(root_task_run_id=[root.id]))
    base = _dt.datetime.fromisoformat(document["otherData"]["startTime"].replace("Z", "+00:00"))
    micro = _dt.timedelta(microseconds=1)
    events = [e for e in document["traceEvents"] if e.get("cat") == "attempt"]
    assert sorted(e["args"]["taskRunId"] for e in events) == sorted(run.id for run in stored)
    for run in stored:
        (attempt,) = run.attempts
        (event,) = [e for e in events if e["args"]["taskRunId"] == run.id]
        assert attempt.started_at is not None
        assert attempt.completed_at is not None
        assert event["ts"] == (attempt.started_at - base) // micro
        assert event["dur"] == (attempt.completed_at - attempt.started_at) // micro
        assert event["args"]["status"] == "completed"
    names = {e["args"]["name"] for e in document["traceEvents"] if e["name"] == "thread_name"}
    assert f"wf/fan_out {root.id}" in names
    # The same file through --output, for a run that failed once and was retried.
    failed = render.workflows.start_task("wf/boom", {"message": "traced"})
    with pytest.raises(TaskRunError):
        render.workflows.wait_for_run(failed.id, timeout=60)
    out_file = tmp_path / "boom.json"
    code, out, err = cli("runs", "trace", failed.id, "-o", str(out_file))
    assert code == 0, err
    assert out == ""
    boom = json.loads(out_file.read_text(encoding="utf-8"))
    check_trace(boom)
    kinds = [e["cat"] for e in boom["traceEvents"] if e.get("ph") == "X" and e["cat"] != "run"]
    assert [k for k in kinds if k != "queued"] == ["attempt", "retry-wait", "attempt"]
    errors = [e["args"]["error"] for e in boom["traceEvents"] if e.get("cat") == "attempt"]
    assert errors == ["ValueError: traced", "ValueError: traced"]


def test_trace_bad_input(cli: CLI, tmp_path: pathlib.Path) -> None:
    code, out, err = cli("runs", "trace", "trn-doesnotexist")
    assert code == 1
    assert out == ""
    assert err.startswith(
        "render-workflows: get task run failed: task run not found: trn-doesnotexist (HTTP 404"
    )
    done = cli("runs", "start", "wf/square", "--input", "[2]", "--wait")
    run_id = done[2].split()[3].rstrip(";")
    code, _, err = cli("runs", "trace", run_id, "-o", str(tmp_path / "missing" / "t.json"))
    assert code == 2
    assert "cannot write --output" in err
