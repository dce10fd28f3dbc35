"""``render-workflows`` without a server: help, usage errors, configuration, dispatch.

Nothing here needs an API: every case stops before a request is sent (or, for the
refused connection, sends it to a port nobody listens on).
"""

from __future__ import annotations

import io
import os
import pathlib
import socket
import subprocess
import sys

import pytest

from render_sdk import _cli, cli

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_render_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("RENDER_") and key != "RENDER_DEV_NO_FORK":  # the suite's mode
            monkeypatch.delenv(key)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = _cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_help_lists_every_command_and_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for expected in (
        "MODULE:APP",
        "dev",
        "tasks list",
        "runs start TASK",
        "runs list",
        "runs get ID",
        "runs cancel ID",
        "runs logs ID",
        "runs watch ID...",
        "--local",
        "--url URL",
        "--json",
        "RENDER_API_KEY",
        "exit status",
    ):
        assert expected in text, expected


def test_subcommand_help_goes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["runs", "start", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--input-file FILE" in text
    assert "--wait" in text
    assert "--json" in text


def test_no_arguments_prints_the_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "render-workflows MODULE:APP" in capsys.readouterr().err
    assert cli.main(["main:app", "extra"]) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["runs"], "required: {start,list,get,cancel,rerun,trace,logs,watch}"),
        (["tasks"], "required: {list}"),
        (["jobs"], "invalid choice: 'jobs'"),
        (["runs", "start"], "required: TASK"),
        (["runs", "list", "--status", "done"], "invalid choice: 'done'"),
        (["runs", "list", "--limit", "0"], "must be at least 1"),
        (["runs", "watch"], "required: ID"),
        (["runs", "logs", "trn-1", "--interval", "-1"], "must be a positive number"),
        (["runs", "start", "wf/t", "--input", "[]", "--input-file", "x"], "not allowed with"),
        (["runs", "list", "--local", "--url", "http://localhost:1"], "not allowed with"),
        (["--local", "runs", "list", "--url", "http://localhost:1"], "give one of them"),
        (["--local", "runs", "start", "wf/t", "--timeout", "5"], "--timeout only applies"),
    ],
)
def test_usage_errors_exit_2_with_one_message(argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert out == ""
    assert err.startswith("render-workflows: error: ")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2 3]", "Expecting ',' delimiter at line 1, column 7\n  [1, 2 3]\n        ^"),
        ('{"a": 1,\n "b": }', 'Expecting value at line 2, column 7\n   "b": }\n        ^'),
        ("", "Expecting value at line 1, column 1"),
        ("[NaN]", "NaN is not valid JSON"),
        ("5", "got a number; for a single argument write [5]"),
        ('"x"', "got a string"),
        ("null", "got a null"),
    ],
)
def test_bad_input_json_names_the_problem_and_the_place(text: str, message: str) -> None:
    with pytest.raises(_cli.UsageError) as info:
        _cli.parse_input(text, "--input")
    assert message in str(info.value)


def test_a_long_input_line_is_cut_around_the_error() -> None:
    text = "[" + ", ".join(["1"] * 100) + " 2]"
    with pytest.raises(_cli.UsageError) as info:
        _cli.parse_input(text, "--input")
    pointer = str(info.value).splitlines()[-2:]
    assert len(pointer[0]) <= 72
    assert pointer[1].index("^") == pointer[0].index(" 2]") + 1


def test_bad_input_stops_before_any_request() -> None:
    # Nothing listens on this port: reaching the network would be exit 1, not 2.
    url = f"http://127.0.0.1:{_free_port()}"
    code, _out, err = run("runs", "start", "wf/t", "--input", "{oops}", "--url", url)
    assert code == 2
    assert "--input is not valid JSON" in err
    code, _, err = run(
        "runs", "start", "wf/t", "--input-file", "/nonexistent/in.json", "--url", url
    )
    assert code == 2
    assert "cannot read --input-file" in err


def test_missing_token_is_explained_in_command_line_terms() -> None:
    code, _out, err = run("runs", "list")
    assert code == 2
    assert "no API token: set RENDER_API_KEY" in err
    assert "--local" in err
    assert "token=" not in err


def test_the_token_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "rnd_secret_do_not_show"
    monkeypatch.setenv("RENDER_API_KEY", secret)
    code, out, err = run("runs", "list", "--url", "http://example.test")
    assert code == 2
    assert "refusing to send the API token over plain http" in err
    code2, out2, err2 = run("runs", "get", "trn-x", "--url", "https://user:pw@example.test")
    assert code2 == 2
    assert secret not in out + err + out2 + err2
    assert "pw" not in err2


def test_a_refused_connection_suggests_starting_the_dev_server() -> None:
    code, out, err = run("--local", "tasks", "list", "--url", f"http://127.0.0.1:{_free_port()}")
    assert code == 2  # --local and --url together
    port = _free_port()
    code, out, err = run("tasks", "list", "--url", f"http://127.0.0.1:{port}")
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("render-workflows: list tasks failed: ")
    assert "render-workflows dev" in lines[1]
    assert "Traceback" not in err


def test_local_uses_render_local_dev_url(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    monkeypatch.setenv("RENDER_LOCAL_DEV_URL", f"http://127.0.0.1:{port}")
    code, _, err = run("--local", "runs", "list")
    assert code == 1
    assert f"127.0.0.1:{port}" in err


def test_the_api_commands_are_imported_lazily() -> None:
    probe = (
        "import sys\n"
        "from render_sdk import cli\n"
        "assert cli.main(['main:app', 'extra']) == 2\n"
        "print(sorted(m for m in sys.modules if m.startswith('render_sdk._cli') "
        "or m in ('argparse', 'requests', 'cattrs')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_task_listing_pages_with_the_cores_rule() -> None:
    """``tasks list`` and the task-name lookup walk every page by the last cursor."""
    from render_core.models import ListTasksParams, Task
    from render_sdk._cli_format import all_tasks

    tasks = [Task(id=f"tsk-{n:03d}", name=f"t{n}", cursor=f"c{n}") for n in range(205)]
    asked: list[str | None] = []

    def list_tasks(params: ListTasksParams | None) -> list[Task]:
        assert params is not None
        assert params.limit == 100
        asked.append(params.cursor)
        start = 0 if params.cursor is None else int(params.cursor[1:]) + 1
        return tasks[start : start + 100]

    assert [task.id for task in all_tasks(list_tasks)] == [task.id for task in tasks]
    assert asked == [None, "c99", "c199"]
    asked.clear()
    assert len(list(all_tasks(list_tasks, max_pages=2))) == 200
    assert asked == [None, "c99"]
