"""``render-workflows tasks|runs ...`` against a real dev server (real worker processes,
real SQLite), in process with captured output and as a real subprocess."""

from __future__ import annotations

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

from render_devserver.server import DevServer
from render_sdk import Render, RenderAsync, _cli

ROOT = pathlib.Path(__file__).resolve().parents[2]

WORKFLOW = """
import sys, time
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
    assert sorted(row[1] for row in rows[1:]) == ["wf/boom", "wf/chatty", "wf/sleeper", "wf/square"]
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
    run = render.workflows.start_task("wf/chatty", [2])
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
