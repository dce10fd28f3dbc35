"""Every file under examples/ runs, as shipped, against a real dev server.

Each workflow program is registered and run by a dev server started in its own
directory (so task ids are ``<directory>/<task>``, as the examples' scripts expect),
and each client script runs as a subprocess with ``RENDER_USE_LOCAL_DEV`` pointing
at it, exactly as their docstrings tell a reader to run them.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from render_devserver.server import DevServer

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# Which files each test below executes (the last test checks that none is left out).
COVERED = {
    "quickstart/main.py",  # by the demo, tests/devserver/test_demo.py
    "quickstart/demo.py",
    "service/workflows/main.py",
    "service/workflows/math_tasks.py",
    "service/workflows/text_tasks.py",
    "service/sync_app.py",
    "service/async_app.py",
    "urllib_transport/urllib_transport.py",
    "urllib_transport/run.py",
    "pipeline/main.py",
    "pipeline/run.py",
    "retries/main.py",
    "retries/run.py",
    "client_in_task/main.py",
    "client_in_task/run.py",
}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@contextmanager
def serving(directory: str, program: str, **options: float) -> Iterator[DevServer]:
    server = DevServer(
        [sys.executable, program],
        port=0,
        db=":memory:",
        cwd=str(EXAMPLES / directory),
        env=_env(),
        **options,  # type: ignore[arg-type]
    )
    with server.run_in_thread() as running:
        yield running


def run_script(server: DevServer, path: str, timeout: float = 180) -> str:
    env = _env()
    env["RENDER_USE_LOCAL_DEV"] = "true"
    env["RENDER_LOCAL_DEV_URL"] = server.url
    script = EXAMPLES / path
    done = subprocess.run(
        [sys.executable, script.name],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{path} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_service_across_modules_with_sync_async_and_urllib_clients() -> None:
    with serving("service", "workflows/main.py") as server:
        out = run_script(server, "service/sync_app.py")
        assert "square(12) = 144" in out
        assert "word counts: [4, 2, 3, 0]" in out
        assert "'words': 3, 'sum_of_squared_lengths': 142, 'title': 'HELLO'" in out
        # word_count, sum_of_squares and its 3 squares, shout
        assert "report ran 6 subtasks" in out
        assert "square('not a number') failed: TypeError" in out

        out = run_script(server, "service/async_app.py")
        assert "sum of 100 squares: 328350" in out
        assert "event streams opened: 1" in out
        assert sorted(re.findall(r"finished: (\w)", out)) == ["A", "B"]

        out = run_script(server, "urllib_transport/run.py")
        assert "squares: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81, 100" in out
        assert "details of the first: completed" in out
        assert "a failed run raises TaskRunError" in out


def test_urllib_transport_uses_the_core_alone() -> None:
    source = (EXAMPLES / "urllib_transport" / "urllib_transport.py").read_text()
    assert len(source.splitlines()) < 100
    imported = set(re.findall(r"^(?:from|import) (\w+)", source, re.M))
    assert imported == {"os", "queue", "threading", "time", "urllib", "typing", "render_core"}


def test_pipeline_fans_out_and_in() -> None:
    with serving("pipeline", "main.py") as server:
        out = run_script(server, "pipeline/run.py")
    assert "top words: [['it', 10], ['of', 10], ['the', 10]]" in out
    assert "subtasks: 3 x count_words, 1 x merge_counts" in out


def test_retries_and_timeouts() -> None:
    # The 30 s timeout of too_slow, scaled down to 3 s.
    with serving("retries", "main.py", timeout_scale=0.1) as server:
        out = run_script(server, "retries/run.py")
    assert "flaky: succeeded on attempt 3" in out
    assert "status=completed retries=2 attempts=3" in out
    assert "attempt 1: failed ConnectionError: attempt 1 failed (a transient error)" in out
    assert "always_fails: failed: " in out
    assert "status=failed retries=1 attempts=2" in out
    assert "too_slow: failed: " in out
    assert re.search(r"attempt 1: failed .*tim", out), out
    assert "careful_parent: the subtask failed, the parent went on" in out


def test_client_inside_a_task() -> None:
    with serving("client_in_task", "main.py") as server:
        out = run_script(server, "client_in_task/run.py")
    assert "launch_batch started 4 independent runs" in out
    assert "their results: [1, 4, 9, 16]" in out
    assert "runs by status: {'completed': 5, 'running': 1}" in out


def test_every_example_file_is_exercised() -> None:
    files = {
        str(path.relative_to(EXAMPLES))
        for path in EXAMPLES.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert files == COVERED
