"""Tests for render_core.taskserver.TaskSocket: the task-socket server, without I/O.

Requests are built with the worker's own builders (``render_core.callback``) and
answers read back with the worker's own parsers, so both halves of the protocol are
checked against each other. A stub handler keeps runs by id and records calls.
Hostile input is checked on a table and with Hypothesis: for any method, target and
body the server answers (a 2xx or a 4xx), and never raises.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from render_core import callback, lifecycle
from render_core.http import Response
from render_core.lifecycle import Run
from render_core.models import TaskRunStatus
from render_core.taskserver import (
    DEFAULT_MAX_BODY,
    SOCKET_ROUTES,
    Answer,
    CallbackResult,
    RegisteredTask,
    SubtaskPoll,
    SubtaskRequest,
    TaskFailure,
    TaskSocket,
    TaskSocketError,
    apply_report,
    body_too_large,
    error_answer,
)

UA = "render-sdk-python/0.0.0-test"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
ONCE = lifecycle.RetryPolicy(max_retries=0, wait_duration_ms=0)


def run(run_id: str, parent: Run | None = None, *, policy: lifecycle.RetryPolicy = ONCE) -> Run:
    """A running run of task ``add``."""
    new = lifecycle.new_run(
        run_id=run_id,
        task_id="tsk-add",
        task_name="add",
        input_data=[2, 3],
        now=NOW,
        policy=policy,
        parent=parent,
    )
    return lifecycle.start_attempt(new, NOW)


ROOT = run("trn-root")
OWN = run("trn-own", ROOT)  # the attempt's run: a subtask of ROOT
CHILD = run("trn-child", OWN)
SIBLING = run("trn-sibling", ROOT)  # a child of ROOT, not of OWN


class Stub:
    """Both handlers: runs by id, every call recorded, a failure on demand."""

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {r.id: r for r in (ROOT, OWN, CHILD, SIBLING)}
        self.calls: list[tuple[str, Any]] = []
        self.started: str | None = "trn-new"
        self.failure: BaseException | None = None

    def get_run(self, task_run_id: str) -> Run | None:
        self.calls.append(("get_run", task_run_id))
        if self.failure is not None:
            raise self.failure
        return self.runs.get(task_run_id)

    def report(self, result: CallbackResult) -> None:
        self.calls.append(("report", result))

    def start_subtask(self, parent: Run, request: SubtaskRequest) -> str | None:
        self.calls.append(("start_subtask", (parent.id, request)))
        return self.started

    def register(self, tasks: list[RegisteredTask]) -> None:
        self.calls.append(("register", tasks))

    def actions(self) -> list[tuple[str, Any]]:
        return [call for call in self.calls if call[0] != "get_run"]


@pytest.fixture
def stub() -> Stub:
    return Stub()


@pytest.fixture
def attempt(stub: Stub) -> TaskSocket:
    return TaskSocket.for_attempt(stub, OWN.id, 2)


@pytest.fixture
def registration(stub: Stub) -> TaskSocket:
    return TaskSocket.for_registration(stub)


def answered(server: TaskSocket, method: str, target: str, body: bytes = b"") -> Answer:
    answer = server.respond(method, target, body)
    assert isinstance(answer, Answer)
    return answer


def as_response(answer: Answer) -> Response:
    return Response(status=answer.status, headers=answer.headers, body=answer.body)


def message(answer: Answer) -> str:
    document = json.loads(answer.body)
    assert list(document) == ["message"]
    return str(document["message"])


def header(answer: Answer, name: str) -> str | None:
    return next((value for key, value in answer.headers if key.lower() == name.lower()), None)


SUBTASK = callback.build_run_subtask(
    "square", [4], idempotency_key="k-1", created_at="2026-01-01T00:00:00+00:00", user_agent=UA
)
POLL_CHILD = callback.build_get_subtask_result(CHILD.id, UA).body


# ---------------------------------------------------------------- answers


def test_answer_headers() -> None:
    assert Answer(200).headers == (("Content-Length", "0"),)
    assert Answer(200, b"{}").headers == (
        ("Content-Type", "application/json"),
        ("Content-Length", "2"),
    )
    refusal = error_answer(405, "no", allow="GET")
    assert refusal.body == b'{"message":"no"}'
    assert refusal.headers == (
        ("Content-Type", "application/json"),
        ("Content-Length", "16"),
        ("Allow", "GET"),
    )


def test_body_too_large() -> None:
    assert message(body_too_large(10)) == "the body is larger than the 10-byte limit"
    assert (
        message(body_too_large(10, declared=99))
        == "the body declares 99 bytes than the 10-byte limit"
    )
    assert body_too_large(10).status == 413


def test_a_socket_serves_one_mode(stub: Stub) -> None:
    with pytest.raises(ValueError, match="not both"):
        TaskSocket()
    with pytest.raises(ValueError, match="not both"):
        TaskSocket(registration=stub, attempt=stub, task_run_id="trn-1")
    with pytest.raises(ValueError, match="task run id"):
        TaskSocket(attempt=stub)


# ---------------------------------------------------------------- an attempt


def test_input_is_the_runs_input_with_its_ids(attempt: TaskSocket) -> None:
    answer = answered(attempt, "GET", "/input?sdk_started_at=1.5")
    assert answer.status == 200
    task_input = callback.parse_input(as_response(answer))
    assert task_input == callback.TaskInput(
        "add",
        [2, 3],
        task_run_id=OWN.id,
        root_task_run_id=ROOT.id,
        parent_task_run_id=ROOT.id,
        attempt=2,
    )


def test_input_of_a_root_run_names_it_as_its_own_root(stub: Stub) -> None:
    server = TaskSocket.for_attempt(stub, ROOT.id, 1)
    body = json.loads(answered(server, "GET", "/input").body)
    assert (body["task_run_id"], body["root_task_run_id"]) == (ROOT.id, ROOT.id)
    assert "parent_task_run_id" not in body


def test_input_of_a_vanished_run_is_404(stub: Stub) -> None:
    server = TaskSocket.for_attempt(stub, "trn-gone", 1)
    answer = answered(server, "GET", "/input")
    assert (answer.status, message(answer)) == (404, "task run not found: trn-gone")


def test_the_first_report_wins(attempt: TaskSocket, stub: Stub) -> None:
    success = callback.build_callback_success(b"[5]", UA)
    failure = callback.build_callback_error("boom", "Traceback ...", UA)
    for request in (success, failure, success):
        answer = answered(attempt, "POST", "/callback", request.body)
        assert (answer.status, answer.body, answer.headers) == (
            200,
            b"",
            (("Content-Length", "0"),),
        )
    assert attempt.reported == CallbackResult(output=[5])
    assert stub.actions() == [("report", CallbackResult(output=[5]))]


def test_run_subtask_starts_a_child_of_this_attempt(attempt: TaskSocket, stub: Stub) -> None:
    answer = answered(attempt, "POST", "/run-subtask", SUBTASK.body)
    assert callback.parse_run_subtask(as_response(answer)) == "trn-new"
    request = SubtaskRequest(
        task_name="square",
        input=[4],
        idempotency_key="k-1",
        created_at="2026-01-01T00:00:00+00:00",
    )
    assert stub.actions() == [("start_subtask", (OWN.id, request))]


@pytest.mark.parametrize(
    ("changes", "status", "text"),
    [
        ({OWN.id: None}, 409, "task run trn-own is not running"),
        ({OWN.id: lifecycle.complete(OWN, [1], NOW)}, 409, "task run trn-own is not running"),
        ({ROOT.id: lifecycle.cancel(ROOT, NOW)}, 409, "root task run trn-root is not active"),
        ({}, 404, "task not found: square"),  # the handler knows no such task
    ],
)
def test_run_subtask_refusals(
    attempt: TaskSocket, stub: Stub, changes: dict[str, Run | None], status: int, text: str
) -> None:
    for run_id, changed in changes.items():
        if changed is None:
            del stub.runs[run_id]
        else:
            stub.runs[run_id] = changed
    if not changes:
        stub.started = None
    answer = answered(attempt, "POST", "/run-subtask", SUBTASK.body)
    assert (answer.status, message(answer)) == (status, text)
    if changes:
        assert stub.actions() == []  # refused before the handler was asked to start


def test_a_poll_for_a_child_is_handed_to_the_host(attempt: TaskSocket, stub: Stub) -> None:
    assert attempt.respond("POST", "/get-subtask-result", POLL_CHILD) == SubtaskPoll(CHILD.id)


@pytest.mark.parametrize("run_id", [SIBLING.id, OWN.id, ROOT.id, "trn-unknown"])
def test_a_poll_for_anything_but_a_child_is_404(attempt: TaskSocket, run_id: str) -> None:
    body = callback.build_get_subtask_result(run_id, UA).body
    answer = answered(attempt, "POST", "/get-subtask-result", body)
    assert (answer.status, message(answer)) == (404, f"no subtask {run_id} of task run trn-own")


CHILD_STATES = [
    (CHILD, b'{"still_running":true}', "running"),
    (lifecycle.new_run(run_id=CHILD.id, task_id="t", task_name="add", input_data=[], now=NOW,
                       parent=OWN), b'{"still_running":true}', "pending"),
    (lifecycle.complete(CHILD, [7], NOW), b'{"still_running":false,"complete":{"output":"Wzdd"}}',
     "completed"),
    (lifecycle.fail_attempt(CHILD, "ValueError: no", NOW),
     b'{"still_running":false,"error":{"details":"ValueError: no"}}', "failed"),
    (lifecycle.cancel(CHILD, NOW),
     b'{"still_running":false,"error":{"details":"the subtask was canceled"}}', "canceled"),
]  # fmt: skip


@pytest.mark.parametrize(("child", "body", "label"), CHILD_STATES, ids=[c[2] for c in CHILD_STATES])
def test_answer_poll_maps_the_childs_status(
    attempt: TaskSocket, stub: Stub, child: Run, body: bytes, label: str
) -> None:
    poll = attempt.respond("POST", "/get-subtask-result", POLL_CHILD)
    assert isinstance(poll, SubtaskPoll)
    stub.runs[CHILD.id] = child  # what happened while the host held the poll
    answer = attempt.answer_poll(poll)
    assert (answer.status, answer.body) == (200, body)


def test_the_worker_reads_the_childs_outcome(attempt: TaskSocket, stub: Stub) -> None:
    stub.runs[CHILD.id] = lifecycle.fail_attempt(CHILD, "boom", NOW)
    answer = attempt.answer_poll(SubtaskPoll(CHILD.id))
    outcome = callback.parse_subtask_result(as_response(answer))
    assert outcome == callback.SubtaskOutcome(still_running=False, error="boom")
    stub.runs[CHILD.id] = lifecycle.complete(CHILD, [[1, 2]], NOW)
    answer = attempt.answer_poll(SubtaskPoll(CHILD.id))
    outcome = callback.parse_subtask_result(as_response(answer))
    assert outcome == callback.SubtaskOutcome(still_running=False, value=[1, 2])


def test_a_failed_child_without_a_message(attempt: TaskSocket, stub: Stub) -> None:
    failed = lifecycle.fail_attempt(CHILD, "", NOW)
    assert failed.status is TaskRunStatus.FAILED
    stub.runs[CHILD.id] = failed
    answer = attempt.answer_poll(SubtaskPoll(CHILD.id))
    assert answer.body == b'{"still_running":false,"error":{"details":"the subtask failed"}}'


def test_answer_poll_for_a_child_gone_meanwhile_is_404(attempt: TaskSocket, stub: Stub) -> None:
    del stub.runs[CHILD.id]
    answer = attempt.answer_poll(SubtaskPoll(CHILD.id))
    assert (answer.status, message(answer)) == (404, "task run not found: trn-child")


def test_an_attempt_may_not_register(attempt: TaskSocket, stub: Stub) -> None:
    body = callback.build_register_tasks({"tasks": [{"name": "add"}]}, UA).body
    answer = answered(attempt, "POST", "/register-tasks", body)
    assert (answer.status, message(answer)) == (
        409,
        "this process was started to run a task, not to register tasks",
    )
    assert stub.calls == []


def test_a_handlers_refusal_is_an_answer_and_its_bug_propagates(
    attempt: TaskSocket, stub: Stub
) -> None:
    stub.failure = TaskSocketError(503, "shutting down")
    answer = answered(attempt, "GET", "/input")
    assert (answer.status, message(answer)) == (503, "shutting down")
    stub.failure = ZeroDivisionError("a bug")
    with pytest.raises(ZeroDivisionError):
        attempt.respond("GET", "/input", b"")


# ---------------------------------------------------------------- registration


def test_register_mode_input_says_there_is_no_task(registration: TaskSocket) -> None:
    answer = answered(registration, "GET", "/input")
    assert (answer.status, answer.body) == (200, b'{"task_name":"","input":null}')


def test_the_first_registration_wins(registration: TaskSocket, stub: Stub) -> None:
    first = callback.build_register_tasks({"tasks": [{"name": "add", "options": {}}]}, UA)
    second = callback.build_register_tasks({"tasks": [{"name": "other"}]}, UA)
    for request in (first, second):
        assert answered(registration, "POST", "/register-tasks", request.body).status == 200
    assert registration.registered == [RegisteredTask(name="add")]
    assert stub.calls == [("register", [RegisteredTask(name="add")])]


@pytest.mark.parametrize(
    ("target", "body", "text"),
    [
        (
            "/callback",
            b'{"complete":{"output":"WzFd"}}',
            "started to register tasks, not to run one",
        ),
        ("/run-subtask", b'{"task_name":"t"}', "subtasks can only be started from a running task"),
        ("/get-subtask-result", b'{"task_run_id":"x"}', "can only be awaited from a running task"),
    ],
)
def test_register_mode_refuses_the_attempts_requests(
    registration: TaskSocket, stub: Stub, target: str, body: bytes, text: str
) -> None:
    answer = answered(registration, "POST", target, body)
    assert answer.status == 409
    assert text in message(answer)
    assert stub.calls == []


# ---------------------------------------------------------------- hostile input


@pytest.mark.parametrize("target", ["/", "/inputs", "/input/", "/v1/task-runs", "/callback/x", ""])
def test_unknown_path_is_404(attempt: TaskSocket, stub: Stub, target: str) -> None:
    answer = answered(attempt, "GET", target)
    assert answer.status == 404
    assert "no task-socket endpoint" in message(answer)
    assert stub.calls == []


@pytest.mark.parametrize("op", list(SOCKET_ROUTES.values()), ids=lambda op: op.path)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "HEAD", "get"])
def test_wrong_method_is_405_with_allow(
    attempt: TaskSocket, stub: Stub, op: callback.SocketOperation, method: str
) -> None:
    if method == op.method:
        return
    answer = answered(attempt, method, op.path + "?x=1", b"{}")
    assert answer.status == 405
    assert header(answer, "Allow") == op.method
    assert message(answer) == f"{op.path} takes {op.method}, not {method}"
    assert stub.calls == []


BAD_BODIES = [
    (b"", "not JSON"),
    (b"{", "not JSON"),
    (b"\xff{}", "not JSON"),
    (b'{"a": NaN}', "NaN is not valid JSON"),
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    (b"[]", "must be a JSON object, not an array"),
    (b'"text"', "must be a JSON object, not a string"),
    (b"null", "must be a JSON object, not null"),
]


@pytest.mark.parametrize("path", ["/callback", "/run-subtask", "/get-subtask-result"])
@pytest.mark.parametrize(("body", "text"), BAD_BODIES, ids=[b[1] for b in BAD_BODIES])
def test_a_body_that_is_not_a_json_object_is_400(
    attempt: TaskSocket, stub: Stub, path: str, body: bytes, text: str
) -> None:
    answer = answered(attempt, "POST", path, body)
    assert answer.status == 400
    assert text in message(answer)
    assert stub.actions() == []


def test_an_oversized_body_is_413_before_anything_else(stub: Stub) -> None:
    server = TaskSocket.for_attempt(stub, OWN.id, 1, max_body_bytes=100)
    padded = json.dumps({"complete": {"output": "WzFd"}}).encode().ljust(100)
    assert answered(server, "POST", "/callback", padded).status == 200  # at the limit
    answer = answered(server, "POST", "/callback", padded + b" ")
    assert (answer.status, message(answer)) == (413, "the body is larger than the 100-byte limit")
    assert answered(server, "GET", "/nowhere", b"x" * 101).status == 413
    assert TaskSocket.for_registration(stub).max_body_bytes == DEFAULT_MAX_BODY


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "HEAD", "", "G\x00T"]),
    target=st.sampled_from([*SOCKET_ROUTES, "/", "", "http://x/input", "/input?"]) | st.text(),
    body=st.binary(max_size=200)
    | st.dictionaries(
        st.sampled_from(["task_run_id", "task_name", "input", "complete", "error", "tasks"]),
        st.none() | st.integers() | st.text(max_size=10) | st.lists(st.integers(), max_size=2),
    ).map(lambda d: json.dumps(d).encode()),
)
def test_any_request_gets_an_answer(method: str, target: str, body: bytes) -> None:
    for server in (
        TaskSocket.for_attempt(Stub(), OWN.id, 1),
        TaskSocket.for_registration(Stub()),
    ):
        answer = server.respond(method, target, body)
        if isinstance(answer, SubtaskPoll):
            answer = server.answer_poll(answer)
        assert answer.status == 200 or 400 <= answer.status <= 499
        if answer.status != 200:
            assert message(answer)


# ---------------------------------------------------------------- report -> lifecycle


def test_apply_report_completes_the_run() -> None:
    done = apply_report(OWN, CallbackResult(output=[5]), NOW)
    assert (done.status, done.results) == (TaskRunStatus.COMPLETED, [5])


@pytest.mark.parametrize(
    ("details", "error"), [("ValueError: x", "ValueError: x"), ("", "the task failed")]
)
def test_apply_report_fails_the_attempt(details: str, error: str) -> None:
    failed = apply_report(OWN, CallbackResult(error=TaskFailure(details=details)), NOW)
    assert (failed.status, failed.error) == (TaskRunStatus.FAILED, error)


def test_a_failed_report_with_retries_left_waits_for_the_retry() -> None:
    retried = run("trn-r", policy=lifecycle.RetryPolicy(max_retries=1, wait_duration_ms=10))
    pending = apply_report(retried, CallbackResult(error=TaskFailure(details="x")), NOW)
    assert pending.status is TaskRunStatus.PENDING
    assert pending.retry_at is not None


def test_apply_report_to_a_run_that_is_not_running() -> None:
    with pytest.raises(lifecycle.LifecycleError):
        apply_report(lifecycle.complete(OWN, [1], NOW), CallbackResult(output=[2]), NOW)
