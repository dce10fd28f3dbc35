"""The worker in real processes, against a fake task-socket server on a Unix socket.

Each test writes a small workflow program, starts it the way the platform does
(``RENDER_SDK_MODE`` + ``RENDER_SDK_SOCKET_PATH``) and checks what it said on the
socket and how it exited.
"""

from __future__ import annotations

import pathlib
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_task_socket import FakeTaskSocket
from tests.support.programs import output_of, run_program


@pytest.fixture
def sock() -> Iterator[FakeTaskSocket]:
    with FakeTaskSocket() as server:
        yield server


APP = """
import asyncio
from typing import Optional
from render_sdk import Workflows, Retry

app = Workflows(default_retry=Retry(max_retries=2, wait_duration_ms=500), default_plan="starter")

@app.task
def square(a: int) -> int:
    return a * a

@app.task(name="add_numbers", timeout_seconds=60, plan="pro", retry=Retry(1, 100, 3.0))
def add(a: int, b: int = 2, note: Optional[str] = None) -> int:
    return a + b

@app.task()
async def total(values: list[int]) -> int:
    return sum(values)

@app.task
def boom(x):
    raise ValueError("division by zero")

@app.task
def silent_failure():
    raise RuntimeError()

@app.task
def not_json():
    return {1, 2}

@app.task
def not_a_number():
    return float("nan")

@app.task
def as_list():
    return [5]

@app.task
async def fan_out(n: int) -> list[int]:
    squares = [square(i) for i in range(n)]
    return list(await asyncio.gather(*squares))

@app.task
async def careful(n: int) -> str:
    try:
        await boom(n)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"

@app.task
def sync_parent(n: int) -> int:
    return square(n)

if __name__ == "__main__":
    app.start()
"""


def test_register_payload(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    done = run_program(tmp_path, APP, sock, "register")
    assert done.returncode == 0, done.stderr
    (registration,) = sock.registrations
    tasks = {task["name"]: task for task in registration["tasks"]}
    assert list(tasks)[:3] == ["square", "add_numbers", "total"]
    assert tasks["square"] == {
        "name": "square",
        "options": {
            "retry": {"max_retries": 2, "wait_duration_ms": 500, "factor": 1.5},
            "plan": "starter",
        },
        "parameters": [{"name": "a", "has_default": False, "type": "int"}],
    }
    assert tasks["add_numbers"] == {
        "name": "add_numbers",
        "options": {
            "retry": {"max_retries": 1, "wait_duration_ms": 100, "factor": 3.0},
            "timeout_seconds": 60,
            "plan": "pro",
        },
        "parameters": [
            {"name": "a", "has_default": False, "type": "int"},
            {"name": "b", "has_default": True, "type": "int", "default_value": "2"},
            {"name": "note", "has_default": True, "type": "Optional[str]", "default_value": "null"},
        ],
    }
    assert tasks["total"]["parameters"] == [
        {"name": "values", "has_default": False, "type": "list[int]"}
    ]
    assert tasks["boom"]["parameters"] == [{"name": "x", "has_default": False}]
    assert "parameters" not in tasks["silent_failure"]


def run_task(
    tmp_path: pathlib.Path, sock: FakeTaskSocket, name: str, value: Any
) -> tuple[int, dict[str, Any], str]:
    sock.serve_input(name, value)
    done = run_program(tmp_path, APP, sock, "run")
    (callback,) = sock.callbacks
    return done.returncode, callback, done.stderr


def test_run_success_positional(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    code, callback, _ = run_task(tmp_path, sock, "square", [5])
    assert code == 0
    assert output_of(callback) == [25]


def test_run_success_named_with_default(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    code, callback, _ = run_task(tmp_path, sock, "add_numbers", {"a": 40})
    assert code == 0
    assert output_of(callback) == [42]


def test_results_are_always_wrapped(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    _, callback, _ = run_task(tmp_path, sock, "as_list", [])
    assert output_of(callback) == [[5]]


def test_failure_reports_type_message_and_trace(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    code, callback, stderr = run_task(tmp_path, sock, "boom", [1])
    assert code == 1
    assert callback["error"]["details"] == "ValueError: division by zero"
    assert "Traceback" in callback["error"]["stack_trace"]
    assert "division by zero" in stderr


def test_message_less_exception_still_has_details(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    _, callback, _ = run_task(tmp_path, sock, "silent_failure", [])
    assert callback["error"]["details"] == "RuntimeError"


def test_binding_error_names_task_and_parameters(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    code, callback, _ = run_task(tmp_path, sock, "add_numbers", [1, 2, 3, 4])
    assert code == 1
    details = callback["error"]["details"]
    assert "add_numbers" in details
    assert "a, b, note" in details


@pytest.mark.parametrize(("task", "problem"), [("not_json", "set"), ("not_a_number", "nan")])
def test_non_json_results_fail_clearly(
    tmp_path: pathlib.Path, sock: FakeTaskSocket, task: str, problem: str
) -> None:
    code, callback, _ = run_task(tmp_path, sock, task, [])
    assert code == 1
    assert "not JSON" in callback["error"]["details"]
    assert problem in callback["error"]["details"].lower()


def test_unknown_task(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    code, callback, _ = run_task(tmp_path, sock, "nope", [])
    assert code == 1
    assert callback["error"]["details"].startswith("Task 'nope' not found")


def test_fan_out_of_fifty_subtasks(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    sock.subtask_handler = lambda name, value: value[0] * value[0]
    began = time.monotonic()
    code, callback, stderr = run_task(tmp_path, sock, "fan_out", [50])
    assert code == 0, stderr
    assert output_of(callback) == [[i * i for i in range(50)]]
    starts = [r for r in sock.requests if r.path == "/run-subtask"]
    assert len(starts) == 50
    bodies = [r.json() for r in starts]
    assert {b["task_name"] for b in bodies} == {"square"}
    assert len({b["idempotency_key"] for b in bodies}) == 50
    assert all(b["created_at"].endswith("+00:00") for b in bodies)
    # Two polls per child at 20 ms: far below the official 1 s per poll.
    assert time.monotonic() - began < 20


def test_failed_subtask_raises_task_run_error_in_the_parent(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    def handler(name: str, value: Any) -> Any:
        raise ValueError("child broke")

    sock.subtask_handler = handler
    code, callback, _ = run_task(tmp_path, sock, "careful", [1])
    assert code == 0
    assert output_of(callback) == ["TaskRunError: Subtask failed: child broke"]


def test_subtask_from_a_sync_task_is_a_clear_error(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    code, callback, _ = run_task(tmp_path, sock, "sync_parent", [3])
    assert code == 1
    assert "synchronous task" in callback["error"]["details"]


def test_transient_socket_errors_are_retried(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    sock.fail_next(2, 503, path="/callback")
    code, callback, stderr = run_task(tmp_path, sock, "square", [3])
    assert code == 0, stderr
    assert output_of(callback) == [9]
    assert len([r for r in sock.requests if r.path == "/callback"]) == 3


def test_start_needs_the_environment(tmp_path: pathlib.Path) -> None:
    done = run_program(tmp_path, APP, None, None)
    assert done.returncode != 0
    assert "RENDER_SDK_MODE is not set" in done.stderr


def test_unknown_mode(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    done = run_program(tmp_path, APP, sock, "serve")
    assert done.returncode != 0
    assert "Unknown mode" in done.stderr


def test_console_script_registers(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    (tmp_path / "main.py").write_text(textwrap.dedent(APP), encoding="utf-8")
    done = run_program(
        tmp_path,
        "",
        sock,
        "register",
        filename="empty.py",
        argv=[sys.executable, "-m", "render_sdk.cli", "main:app"],
    )
    assert done.returncode == 0, done.stderr
    assert len(sock.registrations) == 1


def test_worker_path_imports_no_http_client(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    probe = APP.replace(
        'if __name__ == "__main__":\n    app.start()',
        'if __name__ == "__main__":\n    import sys\n    app.start()\n'
        '    print(sorted(m for m in sys.modules if m in ("aiohttp", "requests", "cattrs")))',
    )
    done = run_program(tmp_path, probe, sock, "register")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_sync_attempt_imports_no_event_loop_and_no_class_library(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    """The cold path of a sync attempt (every attempt on Render is a cold start)."""
    program = (
        "import sys\n"
        "from render_sdk import Workflows\n"
        "app = Workflows()\n"
        "@app.task\n"
        "def square(a: int) -> int:\n"
        "    return a * a\n"
        "app.start()\n"
        "heavy = ('asyncio', 'attr', 'attrs', 'cattrs', 'aiohttp', 'requests', 'h11',"
        " 'dataclasses', 'inspect')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    sock.serve_input("square", [4])
    done = run_program(tmp_path, program, sock, "run")
    assert done.returncode == 0, done.stderr
    assert output_of(sock.callbacks[0]) == [16]
    assert done.stdout.strip() == "[]"


def test_first_result_poll_comes_within_tens_of_milliseconds(
    tmp_path: pathlib.Path, sock: FakeTaskSocket
) -> None:
    sock.subtask_polls = 3
    sock.subtask_handler = lambda name, args: args[0] * args[0]
    code, callback, stderr = run_task(tmp_path, sock, "fan_out", [2])
    assert code == 0, stderr
    assert output_of(callback) == [[0, 1]]
    start = next(r for r in sock.requests if r.path == "/run-subtask")
    every_poll = [r for r in sock.requests if r.path == "/get-subtask-result"]
    first_child = every_poll[0].json()["task_run_id"]
    polls = [r for r in every_poll if r.json()["task_run_id"] == first_child]
    assert len(polls) >= 3
    # The official SDK sleeps 1 s between polls; ours polls at once, then after 20 ms, 30 ms.
    assert polls[0].received_at - start.received_at < 0.5
    assert polls[2].received_at - start.received_at < 0.9
