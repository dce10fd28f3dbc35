"""dev_server() / async_dev_server() used directly: targets, environment, teardown."""

from __future__ import annotations

import os
import pathlib
import socket
import sys
import textwrap

import pytest

from render_devserver.scheduler import RegistrationError
from render_sdk.testing import DevServerHarness, async_dev_server, command_for, dev_server

ROOT = pathlib.Path(__file__).resolve().parents[2]

PROGRAM = """
import os
from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))

@app.task
def where_am_i() -> dict:
    return {"cwd": os.getcwd(), "key": os.environ.get("RENDER_API_KEY"),
            "extra": os.environ.get("EXTRA_SETTING")}

if __name__ == "__main__":
    app.start()
"""


def _refused(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


def test_targets_become_start_commands() -> None:
    assert command_for("pkg.workflows:app") == [
        sys.executable,
        "-m",
        "render_sdk.cli",
        "pkg.workflows:app",
    ]
    assert command_for(["python3", "main.py"]) == [sys.executable, "main.py"]
    assert command_for(("node", "main.js")) == ["node", "main.js"]
    for bad in ("python main.py", "main", ":app", "pkg:"):
        with pytest.raises(ValueError, match="module:app"):
            command_for(bad)
    with pytest.raises(ValueError, match="empty"):
        command_for([])


def test_task_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv("RENDER_API_KEY", "rnd_not_for_tasks")
    monkeypatch.setenv("PYTHONPATH", "/already/there")
    harness = DevServerHarness("m:app", cwd=tmp_path, env={"A": "1"}, pythonpath=["lib"])
    assert "RENDER_API_KEY" not in harness.env
    assert harness.env["A"] == "1"
    assert harness.env["PYTHONPATH"].split(os.pathsep) == [
        str(tmp_path),
        os.path.abspath("lib"),
        "/already/there",
    ]
    bare = DevServerHarness("m:app", cwd=tmp_path, inherit_env=False)
    assert bare.env == {"PYTHONPATH": str(tmp_path)}
    with pytest.raises(RuntimeError, match="not running"):
        _ = harness.client
    assert "stopped" in repr(harness)


def test_a_command_in_a_project_directory_and_teardown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "main.py").write_text(textwrap.dedent(PROGRAM), encoding="utf-8")
    monkeypatch.setenv("RENDER_API_KEY", "rnd_not_for_tasks")
    with dev_server(
        ["python", "main.py"], cwd=tmp_path, env={"EXTRA_SETTING": "yes"}, pythonpath=[ROOT]
    ) as server:
        assert server.tasks == ["where_am_i"]
        assert server.workflow_slug == tmp_path.name.lower().replace("_", "-")
        database = server.server.db
        assert os.path.exists(database)
        run = server.client.workflows.run_task(server.task_id("where_am_i"), [])
        assert run.results == [{"cwd": str(tmp_path), "key": None, "extra": "yes"}]
        url = server.url
        with pytest.raises(RuntimeError, match="async_client"):
            _ = server.client_async
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    assert not os.path.exists(os.path.dirname(database))
    assert _refused(url)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url


async def test_async_with_gives_an_async_client() -> None:
    async with async_dev_server(
        "tests.testing.sample_app:app", cwd=ROOT, db=":memory:", workflow_slug="wf"
    ) as server:
        run = await server.client_async.workflows.run_task("wf/sum_squares", [3])
        assert run.results == [5]
        async with server.async_client() as other:
            assert (await other.workflows.get_task_run(run.id)).results == [5]
        url = server.url
    assert _refused(url)


def test_a_program_that_does_not_register_fails_the_start(tmp_path: pathlib.Path) -> None:
    (tmp_path / "broken.py").write_text("raise SystemExit('no tasks today')\n", encoding="utf-8")
    harness = dev_server(["python", "broken.py"], cwd=tmp_path)
    with pytest.raises(RegistrationError, match="no tasks today"):
        harness.start()
    with pytest.raises(RuntimeError, match="not running"):
        _ = harness.server
