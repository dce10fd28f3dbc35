"""The worker's cold path: registering and sync attempts run without an event loop.

Every attempt on Render is a fresh process, so what a worker imports is paid on
every run. These tests run real worker processes against a fake task socket and
check what was loaded (not how long it took: that is for ``bench/``).
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator

import pytest

from tests.support.fake_task_socket import FakeTaskSocket
from tests.support.programs import output_of, run_program

HEAVY = ("asyncio", "aiohttp", "requests", "cattrs", "ssl", "uuid", "ipaddress", "urllib.parse")

APP = f"""
import sys, threading
from render_sdk import Workflows

app = Workflows()


@app.task
def square(a: int) -> int:
    return a * a


@app.task
def where() -> dict:
    return {{
        "main_thread": threading.current_thread() is threading.main_thread(),
        "loaded": sorted(m for m in sys.modules if m in {HEAVY!r}),
    }}


@app.task
def calls_a_subtask(a: int) -> int:
    return square(a)


@app.task
async def async_square(a: int) -> int:
    return a * a


if __name__ == "__main__":
    app.start()
    print(sorted(m for m in sys.modules if m in {HEAVY!r}))
"""


@pytest.fixture
def sock() -> Iterator[FakeTaskSocket]:
    with FakeTaskSocket() as server:
        yield server


def test_registering_loads_no_event_loop(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    done = run_program(tmp_path, APP, sock, "register")
    assert done.returncode == 0, done.stderr
    assert len(sock.registrations) == 1
    assert done.stdout.strip() == "[]"


def test_a_sync_attempt_runs_in_the_main_thread_without_a_loop(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    sock.serve_input("where", [])
    done = run_program(tmp_path, APP, sock, "run")
    assert done.returncode == 0, done.stderr
    assert output_of(sock.wait_for_callback()) == [{"main_thread": True, "loaded": []}]
    assert done.stdout.strip() == "[]"  # still nothing after the callback was posted


def test_a_subtask_from_a_sync_task_is_a_clear_error(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    sock.serve_input("calls_a_subtask", [3])
    done = run_program(tmp_path, APP, sock, "run")
    assert done.returncode == 1
    details = sock.wait_for_callback()["error"]["details"]
    assert "called as a subtask from a synchronous task" in details


def test_an_async_attempt_runs_on_an_event_loop(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    sock.serve_input("async_square", [4])
    done = run_program(tmp_path, APP, sock, "run")
    assert done.returncode == 0, done.stderr
    assert output_of(sock.wait_for_callback()) == [16]
    assert "asyncio" in done.stdout
    # GET /input was asked once, before the loop started.
    assert [r.path for r in sock.requests].count("/input") == 1


def test_an_unknown_task_is_reported_without_a_loop(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    sock.serve_input("nope", [])
    done = run_program(tmp_path, APP, sock, "run")
    assert done.returncode == 1
    details = sock.wait_for_callback()["error"]["details"]
    assert details.startswith("Task 'nope' not found")


def test_the_user_agent_matches_what_platform_reports() -> None:
    import platform

    from render_core import __version__
    from render_core.config import user_agent

    expected = (
        f"render-sdk-python/{__version__} ({sys.implementation.name}/"
        f"{platform.python_version()}; {platform.system().lower()}/{platform.machine().lower()})"
    )
    assert user_agent() == expected
