"""Tests for render_core.callback: the task-socket protocol, worker side.

Flows are driven with ``run_sync`` and a scripted ``send`` (answers and transport
errors in order, every request recorded); ``sleep`` only records its delays.
Nothing here opens a socket, sleeps or reads the clock.
"""

from __future__ import annotations

import base64
import builtins
import json
import random
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from render_core import callback
from render_core.backoff import TASK_SOCKET_BACKOFF, Backoff
from render_core.callback import (
    GET_INPUT,
    GET_SUBTASK_RESULT,
    POLL_BACKOFF,
    POST_CALLBACK,
    REGISTER_TASKS,
    RUN_SUBTASK,
    SUBTASK_WAIT_LIMIT,
    SocketOperation,
    SubtaskOutcome,
    TaskInput,
    build_callback_error,
    build_callback_success,
    build_get_input,
    build_get_subtask_result,
    build_register_tasks,
    build_run_subtask,
    decode_payload,
    encode_payload,
    error_for_status,
    parse_input,
    parse_run_subtask,
    parse_subtask_result,
    socket_call,
    unwrap_output,
    wait_for_subtask,
)
from render_core.effects import Flow, run_sync
from render_core.errors import (
    ClientError,
    ConnectionFailed,
    NetworkError,
    RateLimitError,
    ReadTimeout,
    RenderError,
    ServerError,
    TaskRunError,
    UnexpectedResponseError,
)
from render_core.errors import TimeoutError as RenderTimeout
from render_core.http import Request, Response
from render_core.tasks import encode_result

UA = "render-sdk-python/0.0.0-test (python 3.x)"
JSON_HEADERS = (("User-Agent", UA), ("Accept", "application/json"))
POST_HEADERS = (*JSON_HEADERS, ("Content-Type", "application/json"))
SOCKET_DELAYS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0] + [16.0] * 18

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=())),  # surrogates too
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
B64 = re.compile(r"\A(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def ok(document: Any = None) -> Response:
    body = b"" if document is None else json.dumps(document).encode("utf-8")
    return Response(status=200, body=body)


def status(code: int, body: bytes = b"") -> Response:
    return Response(status=code, body=body)


def body_of(request: Request) -> Any:
    return json.loads(request.body)


class Script:
    """A ``send`` that answers from a script: a Response, or an exception to raise."""

    def __init__(self, *answers: Response | RenderError) -> None:
        self.answers = list(answers)
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def drive(flow: Flow[Any], script: Script) -> tuple[Any, list[float]]:
    sleeps: list[float] = []
    return run_sync(flow, script, sleeps.append), sleeps


def drive_error(flow: Flow[Any], script: Script) -> tuple[RenderError, list[float]]:
    sleeps: list[float] = []
    with pytest.raises(RenderError) as caught:
        run_sync(flow, script, sleeps.append)
    return caught.value, sleeps


# --- operations and request builders ---------------------------------------------


@pytest.mark.parametrize(
    ("op", "name", "method", "path"),
    [
        (GET_INPUT, "get input", "GET", "/input"),
        (POST_CALLBACK, "post callback", "POST", "/callback"),
        (REGISTER_TASKS, "register tasks", "POST", "/register-tasks"),
        (RUN_SUBTASK, "run subtask", "POST", "/run-subtask"),
        (GET_SUBTASK_RESULT, "get task result", "POST", "/get-subtask-result"),
    ],
)
def test_operations(op: SocketOperation, name: str, method: str, path: str) -> None:
    assert op == SocketOperation(name, method, path)


def test_get_input_request_golden() -> None:
    assert build_get_input(UA) == Request(
        method="GET", url="http://localhost/input", headers=JSON_HEADERS, body=b""
    )


def test_register_tasks_request_golden() -> None:
    payload = {
        "tasks": [
            {
                "name": "add",
                "options": {"retry": {"max_retries": 3, "wait_duration_ms": 1000, "factor": 1.5}},
                "parameters": [{"name": "a", "has_default": False, "type": "int"}],
            },
            {"name": "ping", "options": {}},
        ]
    }
    request = build_register_tasks(payload, UA)
    assert request.method == "POST"
    assert request.url == "http://localhost/register-tasks"
    assert request.headers == POST_HEADERS
    assert request.body == (
        b'{"tasks":[{"name":"add","options":{"retry":{"max_retries":3,"wait_duration_ms":1000,'
        b'"factor":1.5}},"parameters":[{"name":"a","has_default":false,"type":"int"}]},'
        b'{"name":"ping","options":{}}]}'
    )


@pytest.mark.parametrize(
    ("result", "output"),
    [(5, "WzVd"), ([1, 2], "W1sxLDJdXQ=="), (None, "W251bGxd"), ("ü", "WyJcdTAwZmMiXQ==")],
)
def test_callback_success_request_golden(result: Any, output: str) -> None:
    request = build_callback_success(encode_result(result, "t"), UA)
    assert request.method == "POST"
    assert request.url == "http://localhost/callback"
    assert request.headers == POST_HEADERS
    assert request.body == b'{"complete":{"output":"' + output.encode() + b'"}}'
    assert json.loads(base64.b64decode(output)) == [result]


@pytest.mark.parametrize(
    ("details", "trace", "expected"),
    [
        ("boom", None, {"details": "boom"}),
        ("boom", "", {"details": "boom"}),
        (
            "ValueError: boom",
            "Traceback (most recent call last):\n  ...\nValueError: boom\n",
            {
                "details": "ValueError: boom",
                "stack_trace": "Traceback (most recent call last):\n  ...\nValueError: boom\n",
            },
        ),
        ("", None, {"details": "the task failed without a message"}),
        ("ünïcode \u2028", None, {"details": "ünïcode \u2028"}),
    ],
)
def test_callback_error_request_golden(
    details: str, trace: str | None, expected: dict[str, str]
) -> None:
    request = build_callback_error(details, trace, UA)
    assert request.method == "POST"
    assert request.url == "http://localhost/callback"
    assert request.headers == POST_HEADERS
    assert body_of(request) == {"error": expected}
    assert request.body.isascii()


@pytest.mark.parametrize(
    ("input_data", "encoded"),
    [
        ([3], "WzNd"),
        ([2, 3], "WzIsM10="),
        ({"a": 1}, "eyJhIjoxfQ=="),
        (None, "W10="),
        ([], "W10="),
    ],
)
def test_run_subtask_request_golden(input_data: Any, encoded: str) -> None:
    request = build_run_subtask(
        "square",
        input_data,
        idempotency_key="3f2a9c",
        created_at="2026-08-20T12:34:56.789012+00:00",
        user_agent=UA,
    )
    assert request.method == "POST"
    assert request.url == "http://localhost/run-subtask"
    assert request.headers == POST_HEADERS
    assert body_of(request) == {
        "task_name": "square",
        "input": encoded,
        "idempotency_key": "3f2a9c",
        "created_at": "2026-08-20T12:34:56.789012+00:00",
    }
    assert list(body_of(request)) == ["task_name", "input", "idempotency_key", "created_at"]


def test_get_subtask_result_request_golden() -> None:
    assert build_get_subtask_result("trn-abc", UA) == Request(
        method="POST",
        url="http://localhost/get-subtask-result",
        headers=POST_HEADERS,
        body=b'{"task_run_id":"trn-abc"}',
    )


# --- encode_payload / decode_payload ----------------------------------------------


def test_payload_examples() -> None:
    assert encode_payload([2, 3]) == "WzIsM10="  # the task socket's base64 JSON
    assert decode_payload("WzIsM10=", "x") == [2, 3]
    assert encode_payload("~~~") == "In5+fiI="  # the standard alphabet, not URL-safe
    assert encode_payload("???") == "Ij8/PyI="
    assert decode_payload("In5+fiI=", "x") == "~~~"


@given(JSON_VALUES)
def test_payload_round_trips(value: Any) -> None:
    encoded = encode_payload(value)
    assert B64.match(encoded)
    assert decode_payload(encoded, "x") == value
    assert base64.b64decode(encoded, validate=True).isascii()


def test_payload_with_a_lone_surrogate_round_trips() -> None:
    value = ["\ud800", {"k": "a\udfffb"}]
    encoded = encode_payload(value)
    assert base64.b64decode(encoded) == b'["\\ud800",{"k":"a\\udfffb"}]'
    assert decode_payload(encoded, "x") == value


@pytest.mark.parametrize("data", [None, ""])
def test_decode_nothing_is_none(data: object) -> None:
    assert decode_payload(data, "x") is None


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("not base64!", "the input is not base64-encoded JSON"),
        ("WzIsM10", "the input is not base64-encoded JSON"),  # padding missing
        ("W10=\n", "the input is not base64-encoded JSON"),
        ("In5-fiI=", "the input is not base64-encoded JSON"),  # URL-safe alphabet
        ("é", "the input is not base64-encoded JSON"),
        (b64("nope"), "the input is not base64-encoded JSON"),
        (base64.b64encode(b'"\xff"').decode(), "the input is not base64-encoded JSON"),
        (5, "the input must be a base64 string, got int"),
        ([1], "the input must be a base64 string, got list"),
    ],
)
def test_decode_rejects_what_is_not_base64_json(data: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        decode_payload(data, "the input")


def test_encode_rejects_what_is_not_json() -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        encode_payload([float("nan")])
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        encode_payload({1, 2})


# --- parse_input -------------------------------------------------------------------


def test_parse_input_decodes_the_input() -> None:
    response = ok({"task_name": "add", "input": "WzIsM10="})
    assert parse_input(response) == TaskInput(task_name="add", input=[2, 3])


@pytest.mark.parametrize(
    "document",
    [
        {"task_name": "add", "input": ""},
        {"task_name": "add", "input": None},
        {"task_name": "add"},
        {"task_name": "add", "input": b64("null")},
    ],
)
def test_parse_input_without_input_is_no_arguments(document: dict[str, Any]) -> None:
    assert parse_input(ok(document)).input == []


def test_parse_input_reads_an_object_and_ignores_unknown_keys() -> None:
    document = {"task_name": "add", "input": b64('{"a":1}'), "future_key": {"x": 1}}
    assert parse_input(ok(document)) == TaskInput(task_name="add", input={"a": 1})


def test_parse_input_reads_the_ids_newer_servers_send() -> None:
    document = {
        "task_name": "add",
        "input": "WzIsM10=",
        "task_run_id": "trn-2",
        "root_task_run_id": "trn-1",
        "parent_task_run_id": "trn-1",
        "attempt": 2,
    }
    assert parse_input(ok(document)) == TaskInput(
        task_name="add",
        input=[2, 3],
        task_run_id="trn-2",
        root_task_run_id="trn-1",
        parent_task_run_id="trn-1",
        attempt=2,
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"task_run_id": 5, "root_task_run_id": "", "parent_task_run_id": None, "attempt": "2"},
        {"task_run_id": ["x"], "root_task_run_id": {}, "attempt": True},
        {"attempt": 1.5},
        {"attempt": None},
    ],
)
def test_parse_input_ignores_ids_of_the_wrong_type(extra: dict[str, Any]) -> None:
    assert parse_input(ok({"task_name": "add", **extra})) == TaskInput(task_name="add", input=[])


@pytest.mark.parametrize(
    "document",
    [
        {"input": "WzIsM10="},
        {"task_name": "", "input": None},  # the Go dev server in register mode
        {"task_name": None},
        {"task_name": 5},
    ],
)
def test_parse_input_without_a_task_name_mentions_register_mode(document: dict[str, Any]) -> None:
    with pytest.raises(UnexpectedResponseError) as caught:
        parse_input(ok(document))
    assert caught.value.operation == "get input"
    assert "register mode" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html>oops</html>", "non-JSON"),
        (b"", "non-JSON"),
        (b"\xff\xfe", "non-JSON"),
        (b'["add"]', "not an object"),
        (b'"add"', "not an object"),
    ],
)
def test_parse_input_rejects_bodies_that_are_not_json_objects(body: bytes, fragment: str) -> None:
    with pytest.raises(UnexpectedResponseError) as caught:
        parse_input(Response(status=200, body=body))
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("get input failed: ")


def test_parse_input_rejects_an_input_that_is_not_base64_json() -> None:
    with pytest.raises(UnexpectedResponseError, match="the run's input is not base64-encoded JSON"):
        parse_input(ok({"task_name": "add", "input": "!!!"}))


# --- parse_run_subtask ---------------------------------------------------------------


def test_parse_run_subtask() -> None:
    assert parse_run_subtask(ok({"task_run_id": "trn-9", "extra": 1})) == "trn-9"


@pytest.mark.parametrize("document", [{}, {"task_run_id": ""}, {"task_run_id": 9}])
def test_parse_run_subtask_needs_an_id(document: dict[str, Any]) -> None:
    with pytest.raises(UnexpectedResponseError, match=r"^run subtask failed: no task_run_id"):
        parse_run_subtask(ok(document))


# --- parse_subtask_result / unwrap_output -------------------------------------------


@pytest.mark.parametrize(
    ("document", "outcome"),
    [
        ({"still_running": True}, SubtaskOutcome(still_running=True)),
        (
            {"still_running": True, "complete": {"output": b64("[5]")}},
            SubtaskOutcome(still_running=True),
        ),
        (
            {"still_running": False, "complete": {"output": b64("[5]")}},
            SubtaskOutcome(still_running=False, value=5),
        ),
        (
            {"still_running": False, "complete": {"output": b64("[[1,2]]")}},
            SubtaskOutcome(still_running=False, value=[1, 2]),
        ),
        (
            {"still_running": False, "complete": {"output": b64("[1,2]")}},
            SubtaskOutcome(still_running=False, value=[1, 2]),
        ),
        (
            {"still_running": False, "complete": {"output": b64("[null]")}},
            SubtaskOutcome(still_running=False, value=None),
        ),
        ({"still_running": False, "complete": {}}, SubtaskOutcome(still_running=False)),
        ({"still_running": False, "complete": {"output": ""}}, SubtaskOutcome(False)),
        (
            {"still_running": False, "error": {"details": "boom"}},
            SubtaskOutcome(still_running=False, error="boom"),
        ),
        (
            {"still_running": False, "error": {"details": ""}},
            SubtaskOutcome(still_running=False, error="the subtask failed"),
        ),
        (
            {"still_running": False, "error": {}},
            SubtaskOutcome(still_running=False, error="the subtask failed"),
        ),
        (
            {
                "still_running": False,
                "error": {"details": "boom"},
                "complete": {"output": b64("[5]")},
            },
            SubtaskOutcome(still_running=False, error="boom"),
        ),
        (
            {"still_running": False},
            SubtaskOutcome(still_running=False, error="the subtask was canceled"),
        ),
        ({}, SubtaskOutcome(still_running=False, error="the subtask was canceled")),
        (
            {"still_running": False, "error": "boom", "complete": None},
            SubtaskOutcome(still_running=False, error="the subtask was canceled"),
        ),
    ],
)
def test_parse_subtask_result(document: dict[str, Any], outcome: SubtaskOutcome) -> None:
    assert parse_subtask_result(ok(document)) == outcome


def test_parse_subtask_result_rejects_a_bad_output() -> None:
    document = {"still_running": False, "complete": {"output": "%%%"}}
    with pytest.raises(UnexpectedResponseError) as caught:
        parse_subtask_result(ok(document))
    assert caught.value.operation == "get task result"
    assert "the subtask's output is not base64-encoded JSON" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("[5]", 5),
        ("[[5]]", [5]),
        ("[[1,2]]", [1, 2]),
        ("[1,2]", [1, 2]),
        ("[]", []),
        ("5", 5),
        ('{"a":[1]}', {"a": [1]}),
        ("[null]", None),
    ],
)
def test_unwrap_output_removes_exactly_one_level(text: str, value: Any) -> None:
    assert unwrap_output(b64(text)) == value


def test_unwrap_output_of_nothing_is_none() -> None:
    assert unwrap_output(None) is None
    assert unwrap_output("") is None


@given(JSON_VALUES)
def test_a_result_sent_by_a_worker_comes_back_unchanged(value: Any) -> None:
    output = base64.b64encode(encode_result(value, "child")).decode("ascii")
    assert unwrap_output(output) == value


# --- error_for_status ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "body", "kind", "message"),
    [
        (429, b"slow down", RateLimitError, "slow down"),
        (404, b'{"message": "task \'nope\' not found"}', ClientError, "task 'nope' not found"),
        (400, b'{"message": "bad input"}', ClientError, "bad input"),
        (409, b'{"error": "root run is not active"}', ClientError, "root run is not active"),
        (401, b"", ClientError, "HTTP 401"),
        (500, b"", ServerError, "HTTP 500"),
        (503, b"restarting\n", ServerError, "restarting"),
        (502, b'{"message": "", "error": "upstream"}', ServerError, "upstream"),
        (500, b'{"message": 5}', ServerError, '{"message": 5}'),
        (500, b'["a"]', ServerError, '["a"]'),
        (500, b"\xffbad", ServerError, "\ufffdbad"),
        (302, b"", UnexpectedResponseError, "unexpected status 302"),
        (101, b"", UnexpectedResponseError, "unexpected status 101"),
    ],
)
def test_error_for_status(code: int, body: bytes, kind: type[RenderError], message: str) -> None:
    error = error_for_status(RUN_SUBTASK, status(code, body))
    assert type(error) is kind
    assert error.status == code
    assert error.message == message
    assert error.operation == "run subtask"
    assert str(error) == f"run subtask failed: {message} (HTTP {code})"


def test_error_for_status_truncates_a_long_raw_body() -> None:
    error = error_for_status(GET_INPUT, status(500, b"x" * 1000))
    assert error.message == "x" * 300


@pytest.mark.parametrize(
    "op", [GET_INPUT, POST_CALLBACK, REGISTER_TASKS, RUN_SUBTASK, GET_SUBTASK_RESULT]
)
def test_error_for_status_names_the_operation(op: SocketOperation) -> None:
    assert str(error_for_status(op, status(500, b"down"))) == f"{op.name} failed: down (HTTP 500)"


# --- socket_call: transient-error retries -------------------------------------------


def transient_answers() -> list[Response | RenderError]:
    return [
        status(500),
        status(429),
        NetworkError("connection reset"),
        ReadTimeout("no answer in 15 s"),
        ConnectionFailed("socket missing"),
        status(503, b"restarting"),
    ]


def get_input_flow(**kwargs: Any) -> Flow[TaskInput]:
    return socket_call(GET_INPUT, build_get_input(UA), parse_input, **kwargs)


INPUT_OK = ok({"task_name": "add", "input": "WzIsM10="})


def test_socket_call_succeeds_at_once() -> None:
    script = Script(INPUT_OK)
    result, sleeps = drive(get_input_flow(), script)
    assert result == TaskInput(task_name="add", input=[2, 3])
    assert sleeps == []
    assert script.requests == [build_get_input(UA)]


def test_socket_call_retries_every_transient_error_with_the_socket_backoff() -> None:
    script = Script(*transient_answers(), INPUT_OK)
    result, sleeps = drive(get_input_flow(), script)
    assert result.task_name == "add"
    assert sleeps == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
    assert len(script.requests) == 7
    assert all(request == build_get_input(UA) for request in script.requests)


@pytest.mark.parametrize(
    ("answer", "raised"),
    list(
        zip(
            transient_answers(),
            [ServerError, RateLimitError, NetworkError, ReadTimeout, ConnectionFailed, ServerError],
            strict=True,
        )
    ),
)
def test_a_transient_error_past_the_budget_is_raised_naming_the_operation(
    answer: Response | RenderError, raised: type[RenderError]
) -> None:
    flow = get_input_flow(policy=TASK_SOCKET_BACKOFF.replace(max_attempts=2))
    error, sleeps = drive_error(flow, Script(answer, answer))
    assert type(error) is raised
    assert error.operation == "get input"
    assert sleeps == [0.25]


@pytest.mark.parametrize("answer", transient_answers())
def test_socket_call_retries_each_transient_kind(answer: Response | RenderError) -> None:
    _, sleeps = drive(get_input_flow(), Script(answer, INPUT_OK))
    assert sleeps == [0.25]


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409])
def test_socket_call_does_not_retry_client_errors(code: int) -> None:
    script = Script(status(code, b'{"message": "no"}'), INPUT_OK)
    error, sleeps = drive_error(get_input_flow(), script)
    assert type(error) is ClientError
    assert str(error) == f"get input failed: no (HTTP {code})"
    assert sleeps == []
    assert len(script.requests) == 1


def test_socket_call_does_not_retry_a_bad_answer() -> None:
    script = Script(ok({"task_name": ""}), INPUT_OK)
    error, sleeps = drive_error(get_input_flow(), script)
    assert isinstance(error, UnexpectedResponseError)
    assert sleeps == []


def test_socket_call_does_not_catch_other_render_errors_from_the_transport() -> None:
    refused = ClientError("the transport refused the request")
    error, sleeps = drive_error(get_input_flow(), Script(refused, INPUT_OK))
    assert error is refused
    assert sleeps == []


def test_socket_call_gives_up_after_25_attempts_with_the_last_error() -> None:
    answers: list[Response | RenderError] = [status(503, b"restarting")] * 24
    script = Script(*answers, status(500, b"the last one"), INPUT_OK)
    error, sleeps = drive_error(get_input_flow(), script)
    assert isinstance(error, ServerError)
    assert str(error) == "get input failed: the last one (HTTP 500)"
    assert len(script.requests) == 25
    assert sleeps == SOCKET_DELAYS == [TASK_SOCKET_BACKOFF.delay(n) for n in range(24)]
    assert sum(sleeps) == 303.75


@pytest.mark.parametrize(
    "raised",
    [
        NetworkError("connection reset", request_sent=True),
        ReadTimeout("no answer in 15 s"),
        ConnectionFailed("no such socket"),
    ],
)
def test_transport_errors_gain_the_operation_name(raised: RenderError) -> None:
    flow = socket_call(
        POST_CALLBACK,
        build_callback_error("boom", None, UA),
        lambda _: None,
        policy=Backoff(max_attempts=1),
    )
    error, sleeps = drive_error(flow, Script(raised))
    assert type(error) is type(raised)
    assert isinstance(error, RenderError)
    assert error.operation == "post callback"
    assert str(error) == f"post callback failed: {raised.message}"
    assert getattr(error, "request_sent", None) == getattr(raised, "request_sent", None)
    assert sleeps == []


def test_a_transport_timeout_is_also_the_builtin_timeout() -> None:
    error, _ = drive_error(
        get_input_flow(policy=Backoff(max_attempts=1)), Script(ReadTimeout("slow"))
    )
    assert isinstance(error, builtins.TimeoutError)


def test_a_transport_error_that_names_an_operation_keeps_it() -> None:
    raised = NetworkError("reset", operation="custom op")
    error, _ = drive_error(get_input_flow(policy=Backoff(max_attempts=1)), Script(raised))
    assert error is raised


def test_socket_call_uses_the_given_policy_and_random_source() -> None:
    policy = Backoff(base=1.0, factor=2.0, cap=4.0, max_attempts=4, jitter=True)
    script = Script(status(500), status(500), status(500), INPUT_OK)
    _, sleeps = drive(get_input_flow(policy=policy, rng=random.Random(0)), script)
    assert len(sleeps) == 3
    assert all(
        0 <= delay <= ceiling for delay, ceiling in zip(sleeps, [1.0, 2.0, 4.0], strict=True)
    )
    _, again = drive(
        get_input_flow(policy=policy, rng=random.Random(0)),
        Script(status(500), status(500), status(500), INPUT_OK),
    )
    assert again == sleeps


OUTCOMES = st.sampled_from(["500", "503", "429", "net", "timeout", "refused", "400", "404", "ok"])


def answer_for(outcome: str) -> Response | RenderError:
    if outcome == "net":
        return NetworkError("reset")
    if outcome == "timeout":
        return ReadTimeout("slow")
    if outcome == "refused":
        return ConnectionFailed("refused")
    if outcome == "ok":
        return INPUT_OK
    return status(int(outcome))


@given(st.lists(OUTCOMES, max_size=30))
def test_socket_call_either_returns_or_raises_as_the_model_says(outcomes: list[str]) -> None:
    script = Script(*[answer_for(outcome) for outcome in outcomes], INPUT_OK)
    sleeps: list[float] = []
    final = next(
        (i for i, outcome in enumerate([*outcomes, "ok"]) if outcome in ("ok", "400", "404")),
    )
    outcome: Any
    try:
        outcome = run_sync(get_input_flow(), script, sleeps.append)
    except RenderError as error:
        outcome = error
    attempts = len(script.requests)
    assert attempts == min(final + 1, 25)
    if final >= 25:  # the budget ran out on a transient error
        assert isinstance(outcome, ServerError | RateLimitError | RenderTimeout)
        assert outcome.operation == "get input"
    elif [*outcomes, "ok"][final] == "ok":
        assert outcome == TaskInput(task_name="add", input=[2, 3])
    else:
        assert type(outcome) is ClientError
    assert sleeps == SOCKET_DELAYS[: attempts - 1]


# --- the flows built on socket_call -------------------------------------------------


def test_get_input_flow() -> None:
    result, _ = drive(callback.get_input(UA), Script(status(503), INPUT_OK))
    assert result == TaskInput(task_name="add", input=[2, 3])


def test_register_tasks_flow() -> None:
    payload = {"tasks": [{"name": "ping", "options": {}}]}
    script = Script(ConnectionFailed("not yet listening"), ok())
    result, sleeps = drive(callback.register_tasks(payload, UA), script)
    assert result is None
    assert sleeps == [0.25]
    assert [body_of(request) for request in script.requests] == [payload, payload]
    assert script.requests[0].url == "http://localhost/register-tasks"


def test_post_callback_flow_ignores_the_body() -> None:
    request = build_callback_success(encode_result(5, "t"), UA)
    script = Script(status(500), Response(status=200, body=b"whatever"))
    result, sleeps = drive(callback.post_callback(request), script)
    assert result is None
    assert sleeps == [0.25]
    assert script.requests == [request, request]


def test_post_callback_flow_reports_a_rejected_callback() -> None:
    request = build_callback_error("boom", None, UA)
    error, _ = drive_error(callback.post_callback(request), Script(status(400, b"bad")))
    assert str(error) == "post callback failed: bad (HTTP 400)"


# --- run_subtask --------------------------------------------------------------------


def test_run_subtask_repeats_the_same_key_and_timestamp_on_every_retry() -> None:
    script = Script(
        status(503),
        ConnectionFailed("restarting"),
        ReadTimeout("slow"),
        ok({"task_run_id": "trn-child"}),
    )
    flow = callback.run_subtask(
        "square",
        [3],
        idempotency_key="key-1",
        created_at="2026-08-20T12:34:56.789012+00:00",
        user_agent=UA,
    )
    result, sleeps = drive(flow, script)
    assert result == "trn-child"
    assert sleeps == [0.25, 0.5, 1.0]
    assert len(script.requests) == 4
    assert len({request.body for request in script.requests}) == 1
    assert body_of(script.requests[0]) == {
        "task_name": "square",
        "input": "WzNd",
        "idempotency_key": "key-1",
        "created_at": "2026-08-20T12:34:56.789012+00:00",
    }


def test_run_subtask_unknown_task_is_final() -> None:
    flow = callback.run_subtask("nope", None, idempotency_key="k", created_at="t", user_agent=UA)
    error, sleeps = drive_error(flow, Script(status(404, b'{"message": "task nope not found"}')))
    assert type(error) is ClientError
    assert str(error) == "run subtask failed: task nope not found (HTTP 404)"
    assert sleeps == []


# --- wait_for_subtask ---------------------------------------------------------------

RUNNING = ok({"still_running": True})


def done(text: str) -> Response:
    return ok({"still_running": False, "complete": {"output": b64(text)}})


def failed(details: str) -> Response:
    return ok({"still_running": False, "error": {"details": details}})


def test_poll_backoff_starts_fast_and_caps_at_one_second() -> None:
    delays = [POLL_BACKOFF.delay(n) for n in range(12)]
    assert delays[:4] == pytest.approx([0.02, 0.03, 0.045, 0.0675])
    assert delays == sorted(delays)
    assert max(delays) == 1.0
    assert delays[-1] == 1.0
    assert SUBTASK_WAIT_LIMIT == 86_400.0


def test_wait_for_subtask_polls_at_once() -> None:
    script = Script(done("[5]"))
    result, sleeps = drive(wait_for_subtask("trn-1", UA), script)
    assert result == 5
    assert sleeps == []
    assert script.requests == [build_get_subtask_result("trn-1", UA)]


def test_wait_for_subtask_backs_off_between_polls() -> None:
    script = Script(RUNNING, RUNNING, RUNNING, done("[[1,2]]"))
    result, sleeps = drive(wait_for_subtask("trn-1", UA), script)
    assert result == [1, 2]
    assert sleeps == pytest.approx([0.02, 0.03, 0.045])
    assert all(request == build_get_subtask_result("trn-1", UA) for request in script.requests)


@given(st.integers(min_value=0, max_value=60))
def test_wait_for_subtask_sleeps_follow_the_poll_backoff(polls: int) -> None:
    script = Script(*[RUNNING] * polls, done("[null]"))
    result, sleeps = drive(wait_for_subtask("trn-1", UA), script)
    assert result is None
    assert sleeps == [POLL_BACKOFF.delay(n) for n in range(polls)]
    assert all(0.02 <= delay <= 1.0 for delay in sleeps)


def test_a_failed_child_raises_task_run_error() -> None:
    error, _ = drive_error(wait_for_subtask("trn-7", UA), Script(RUNNING, failed("boom")))
    assert type(error) is TaskRunError
    assert str(error) == "Subtask failed: boom"
    assert error.task_run_id == "trn-7"


def test_nested_failures_accumulate_prefixes() -> None:
    error, _ = drive_error(wait_for_subtask("trn-7", UA), Script(failed("Subtask failed: boom")))
    assert str(error) == "Subtask failed: Subtask failed: boom"


def test_a_canceled_child_raises_task_run_error() -> None:
    canceled = ok({"still_running": False})
    error, _ = drive_error(wait_for_subtask("trn-7", UA), Script(canceled))
    assert isinstance(error, TaskRunError)
    assert str(error) == "Subtask failed: the subtask was canceled"


def test_waiting_past_the_limit_raises_our_timeout_naming_task_and_run() -> None:
    script = Script(*[RUNNING] * 10)
    flow = wait_for_subtask("trn-slow", UA, limit=0.1, task_name="crunch")
    error, sleeps = drive_error(flow, script)
    assert type(error) is RenderTimeout
    assert isinstance(error, builtins.TimeoutError)
    assert str(error) == (
        "get task result failed: subtask 'crunch' (trn-slow) did not finish within 0.1 s"
    )
    assert sleeps == pytest.approx([0.02, 0.03, 0.045])
    assert len(script.requests) == 4


def test_the_timeout_without_a_task_name_names_the_run() -> None:
    error, sleeps = drive_error(wait_for_subtask("trn-slow", UA, limit=0), Script(RUNNING))
    assert str(error) == "get task result failed: trn-slow did not finish within 0 s"
    assert sleeps == []


def test_a_limit_reached_exactly_still_polls_once_more() -> None:
    poll = Backoff(base=0.5, factor=1.0, cap=0.5, max_attempts=2, jitter=False)
    script = Script(RUNNING, RUNNING, done("[1]"))
    result, sleeps = drive(wait_for_subtask("trn-1", UA, poll=poll, limit=1.0), script)
    assert result == 1
    assert sleeps == [0.5, 0.5]


def test_a_transient_error_while_polling_is_retried() -> None:
    script = Script(RUNNING, status(503, b"restarting"), done("[5]"))
    result, sleeps = drive(wait_for_subtask("trn-1", UA), script)
    assert result == 5
    assert sleeps == [0.02, 0.25]  # the poll's wait, then the socket's retry


def test_a_client_error_while_polling_is_final() -> None:
    error, _ = drive_error(
        wait_for_subtask("trn-x", UA), Script(status(404, b'{"message": "no such run"}'))
    )
    assert type(error) is ClientError
    assert str(error) == "get task result failed: no such run (HTTP 404)"


def test_a_subtask_from_start_to_result() -> None:
    # run-subtask then polling, on one scripted socket, as the worker drives them.
    script = Script(status(500), ok({"task_run_id": "trn-c"}), RUNNING, done("[[1,2]]"))
    sleeps: list[float] = []
    run_id = run_sync(
        callback.run_subtask(
            "pair",
            {"n": 2},
            idempotency_key="k",
            created_at="2026-01-01T00:00:00+00:00",
            user_agent=UA,
        ),
        script,
        sleeps.append,
    )
    value = run_sync(wait_for_subtask(run_id, UA, task_name="pair"), script, sleeps.append)
    assert value == [1, 2]
    assert sleeps == [0.25, 0.02]
    assert [request.url.rsplit("/", 1)[1] for request in script.requests] == [
        "run-subtask",
        "run-subtask",
        "get-subtask-result",
        "get-subtask-result",
    ]
    assert body_of(script.requests[2]) == {"task_run_id": "trn-c"}
