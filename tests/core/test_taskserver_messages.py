"""Tests for the request parsers and response builders of render_core.taskserver.

Parsers are checked on golden bodies, against the bodies our own worker builds
(``build_*`` of the worker side), on a table of invalid inputs, and with Hypothesis:
for any bytes they return or raise :class:`TaskSocketError` (400), nothing else.
Builders are checked byte for byte and read back with the worker's own parsers.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from render_core import callback
from render_core.callback import (
    GET_INPUT,
    GET_SUBTASK_RESULT,
    POST_CALLBACK,
    REGISTER_TASKS,
    RUN_SUBTASK,
    SubtaskOutcome,
    TaskInput,
    build_callback_error,
    build_callback_success,
    build_get_subtask_result,
    build_register_tasks,
    build_run_subtask,
    error_for_status,
    parse_input,
    parse_run_subtask,
    parse_subtask_result,
)
from render_core.errors import ClientError
from render_core.http import Response
from render_core.taskserver import (
    SOCKET_ROUTES,
    CallbackResult,
    RegisteredRetry,
    RegisteredTask,
    SubtaskRequest,
    TaskFailure,
    TaskSocketError,
    build_error_response,
    build_input_response,
    build_run_subtask_response,
    build_subtask_result_response,
    match_route,
    parse_callback_request,
    parse_register_request,
    parse_run_subtask_request,
    parse_subtask_result_request,
)

UA = "render-sdk-python/0.0.0-test"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


def status_of(parse: Any, raw: bytes) -> int:
    """200 if ``parse`` accepts ``raw``, else the status of its TaskSocketError."""
    try:
        parse(raw)
    except TaskSocketError as exc:
        return exc.status if exc.message else 0
    return 200


def refused(parse: Any, raw: bytes) -> TaskSocketError:
    with pytest.raises(TaskSocketError) as info:
        parse(raw)
    assert info.value.status == 400
    return info.value


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=())),  # lone surrogates too
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)

PARSERS = [
    parse_register_request,
    parse_callback_request,
    parse_run_subtask_request,
    parse_subtask_result_request,
]

# Bodies no parser accepts: not JSON, not strict JSON, not an object.
NOT_AN_OBJECT = [
    (b"", "not JSON"),
    (b"{", "not JSON"),
    (b'{"a": 1} x', "not JSON"),
    (b"\xff\xfe{}", "not JSON"),  # not UTF-8
    ('\ufeff{"a": 1}'.encode(), "not JSON"),  # a BOM
    (b'{"a": NaN}', "NaN is not valid JSON"),
    (b'{"a": -Infinity}', "-Infinity is not valid JSON"),
    (b'{"a": 1e400}', "1e400 is out of range"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"[]", "must be a JSON object, not an array"),
    (b"null", "not null"),
    (b'"x"', "not a string"),
    (b"5", "not a number"),
    (b"true", "not a boolean"),
]


# ---------------------------------------------------------------- routes


def test_routes_are_the_five_endpoints() -> None:
    assert SOCKET_ROUTES == {
        "/input": GET_INPUT,
        "/callback": POST_CALLBACK,
        "/register-tasks": REGISTER_TASKS,
        "/run-subtask": RUN_SUBTASK,
        "/get-subtask-result": GET_SUBTASK_RESULT,
    }


@pytest.mark.parametrize(
    ("method", "target", "op"),
    [
        ("GET", "/input", GET_INPUT),
        ("GET", "/input?sdk_import_started_at=1.5&sdk_started_at=2", GET_INPUT),
        ("GET", "/input#frag", GET_INPUT),
        ("GET", "http://localhost/input?x=1", GET_INPUT),
        ("GET", "HTTP://localhost:8120/input", GET_INPUT),
        ("POST", "/callback", POST_CALLBACK),
        ("POST", "/register-tasks", REGISTER_TASKS),
        ("POST", "/run-subtask?x", RUN_SUBTASK),
        ("POST", "/get-subtask-result", GET_SUBTASK_RESULT),
    ],
)
def test_match_route_uses_method_and_path_only(
    method: str, target: str, op: callback.SocketOperation
) -> None:
    assert match_route(method, target) is op


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/input/",
        "/Input",
        "/v1/input",
        "*",
        "input",
        "ftp://x/input",
        "/callback/x",
        "?/input",
    ],
)
def test_match_route_unknown_path_is_404(target: str) -> None:
    with pytest.raises(TaskSocketError) as info:
        match_route("GET", target)
    assert info.value.status == 404
    assert info.value.allow is None
    assert "no task-socket endpoint" in info.value.message


@pytest.mark.parametrize(
    ("method", "target", "allow"),
    [
        ("POST", "/input", "GET"),
        ("HEAD", "/input", "GET"),
        ("get", "/input", "GET"),
        ("GET", "/callback", "POST"),
        ("PUT", "/register-tasks?x=1", "POST"),
        ("DELETE", "/run-subtask", "POST"),
        ("GET", "/get-subtask-result", "POST"),
    ],
)
def test_match_route_wrong_method_is_405_with_allow(method: str, target: str, allow: str) -> None:
    with pytest.raises(TaskSocketError) as info:
        match_route(method, target)
    assert (info.value.status, info.value.allow) == (405, allow)
    assert info.value.message.endswith(f"takes {allow}, not {method}")


def test_request_error_values() -> None:
    error = TaskSocketError(400, "tasks must be an array")
    assert (error.status, error.message, error.allow, str(error)) == (
        400,
        "tasks must be an array",
        None,
        "tasks must be an array",
    )
    assert repr(error) == "TaskSocketError(400, 'tasks must be an array')"
    assert TaskSocketError(405, "x", allow="GET").allow == "GET"
    for status in (200, 399, 600):
        with pytest.raises(ValueError, match=r"400\.\.599"):
            TaskSocketError(status, "x")


# ---------------------------------------------------------------- any body


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(("raw", "fragment"), NOT_AN_OBJECT)
def test_every_parser_refuses_what_is_not_a_json_object(
    parse: Any, raw: bytes, fragment: str
) -> None:
    assert fragment in refused(parse, raw).message


@pytest.mark.parametrize("parse", PARSERS)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_request_errors(parse: Any, raw: bytes) -> None:
    assert status_of(parse, raw) in (200, 400)


DOCUMENT_KEYS = st.sampled_from(
    [
        "tasks",
        "name",
        "options",
        "retry",
        "parameters",
        "complete",
        "error",
        "output",
        "details",
        "task_name",
        "input",
        "idempotency_key",
        "created_at",
        "task_run_id",
    ]
)
DOCUMENTS = st.recursive(
    JSON_VALUES
    | JSON_VALUES.map(lambda value: b64(json.dumps(value)))  # b64 JSON, of any shape
    | st.text(alphabet="AQIDBw=+/ -_"),  # base64-ish text
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(DOCUMENT_KEYS, children, max_size=5)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("parse", PARSERS)
@given(document=st.dictionaries(DOCUMENT_KEYS, DOCUMENTS, max_size=5))
def test_arbitrary_documents_raise_only_request_errors(parse: Any, document: Any) -> None:
    assert status_of(parse, body(document)) in (200, 400)


# ---------------------------------------------------------------- register


REGISTER_EXAMPLE: dict[str, Any] = {
    "tasks": [
        {
            "name": "add",
            "options": {
                "retry": {"max_retries": 3, "wait_duration_ms": 1000, "factor": 1.5},
                "timeout_seconds": 60,
                "plan": "starter",
            },
            "parameters": [
                {"name": "a", "has_default": False, "type": "int"},
                {"name": "b", "has_default": True, "type": "int", "default_value": "2"},
            ],
        }
    ]
}


def test_register_golden_example() -> None:
    [task] = parse_register_request(body(REGISTER_EXAMPLE))
    assert task == RegisteredTask(
        name="add",
        retry=RegisteredRetry(max_retries=3, wait_duration_ms=1000, factor=1.5),
        timeout_seconds=60,
        plan="starter",
        parameters=REGISTER_EXAMPLE["tasks"][0]["parameters"],
    )
    assert task.payload() == REGISTER_EXAMPLE["tasks"][0]


def test_register_reads_what_our_worker_sends() -> None:
    payload = {"tasks": [{"name": "square", "options": {}}, {"name": "noop", "options": {}}]}
    request = build_register_tasks(payload, UA)
    tasks = parse_register_request(request.body)
    assert [task.name for task in tasks] == ["square", "noop"]
    assert tasks[0] == RegisteredTask(name="square")
    assert tasks[0].payload() == {"name": "square", "options": {}}


def test_register_keeps_absent_options_as_none() -> None:
    tasks = parse_register_request(
        body(
            {
                "tasks": [
                    {"name": "a"},
                    {"name": "b", "options": None, "parameters": None},
                    {"name": "c", "options": {"retry": None, "timeout_seconds": None}},
                    {"name": "d", "options": {"retry": {}}},
                    {"name": "e", "options": {"retry": {"factor": 2}}},
                    {"name": "f", "options": {"timeout_seconds": 0, "plan": ""}},
                ]
            }
        )
    )
    assert tasks == [
        RegisteredTask(name="a"),
        RegisteredTask(name="b"),
        RegisteredTask(name="c"),
        RegisteredTask(name="d", retry=RegisteredRetry()),
        RegisteredTask(name="e", retry=RegisteredRetry(factor=2.0)),
        RegisteredTask(name="f"),
    ]
    assert isinstance(tasks[4].retry.factor, float)  # type: ignore[union-attr]
    assert tasks[3].payload() == {"name": "d", "options": {"retry": {}}}
    assert tasks[4].payload() == {"name": "e", "options": {"retry": {"factor": 2.0}}}


def test_register_of_nothing_is_an_empty_list() -> None:
    assert parse_register_request(b'{"tasks": []}') == []


def test_register_ignores_unknown_keys_and_keeps_parameters_as_given() -> None:
    parameter = {"name": "x", "has_default": False, "future": [1, 2]}
    document = {
        "tasks": [
            {
                "name": "t",
                "options": {"retry": {"max_retries": 0, "jitter": True}, "cpu": "big"},
                "parameters": [parameter],
                "description": "ignored",
            }
        ],
        "version": 2,
    }
    [task] = parse_register_request(body(document))
    assert task.retry == RegisteredRetry(max_retries=0)
    assert task.parameters == [parameter]
    assert task.payload() == {
        "name": "t",
        "options": {"retry": {"max_retries": 0}},
        "parameters": [parameter],
    }


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({}, "tasks must be an array, not null"),
        ({"tasks": {"name": "a"}}, "tasks must be an array, not an object"),
        ({"tasks": ["a"]}, "tasks[0] must be an object, not a string"),
        ({"tasks": [{}]}, "tasks[0].name must be a non-empty string"),
        ({"tasks": [{"name": ""}]}, "tasks[0].name must be a non-empty string"),
        ({"tasks": [{"name": 5}]}, "tasks[0].name must be a non-empty string"),
        ({"tasks": [{"name": "a", "options": []}]}, "tasks[0].options must be an object"),
        (
            {"tasks": [{"name": "a"}, {"name": "b", "options": {"retry": 3}}]},
            "tasks[1].options.retry must be an object, not a number",
        ),
        (
            {"tasks": [{"name": "a", "options": {"retry": {"max_retries": -1}}}]},
            "tasks[0].options.retry.max_retries must be a non-negative integer, not -1",
        ),
        (
            {"tasks": [{"name": "a", "options": {"retry": {"max_retries": True}}}]},
            "max_retries must be a non-negative integer, not True",
        ),
        (
            {"tasks": [{"name": "a", "options": {"retry": {"max_retries": 1.0}}}]},
            "max_retries must be a non-negative integer, not 1.0",
        ),
        (
            {"tasks": [{"name": "a", "options": {"retry": {"wait_duration_ms": "1"}}}]},
            "wait_duration_ms must be a non-negative integer, not '1'",
        ),
        (
            {"tasks": [{"name": "a", "options": {"retry": {"factor": -0.5}}}]},
            "tasks[0].options.retry.factor must be a non-negative number, not -0.5",
        ),
        (
            {"tasks": [{"name": "a", "options": {"retry": {"factor": False}}}]},
            "factor must be a non-negative number, not False",
        ),
        (
            {"tasks": [{"name": "a", "options": {"retry": {"factor": "2"}}}]},
            "factor must be a non-negative number",
        ),
        (
            {"tasks": [{"name": "a", "options": {"timeout_seconds": -5}}]},
            "tasks[0].options.timeout_seconds must be a positive integer, not -5",
        ),
        (
            {"tasks": [{"name": "a", "options": {"timeout_seconds": 60.5}}]},
            "timeout_seconds must be a positive integer, not 60.5",
        ),
        (
            {"tasks": [{"name": "a", "options": {"timeout_seconds": True}}]},
            "timeout_seconds must be a positive integer, not True",
        ),
        (
            {"tasks": [{"name": "a", "options": {"plan": 3}}]},
            "tasks[0].options.plan must be a string, not a number",
        ),
        (
            {"tasks": [{"name": "a", "parameters": {}}]},
            "tasks[0].parameters must be an array, not an object",
        ),
        (
            {"tasks": [{"name": "a", "parameters": [None]}]},
            "tasks[0].parameters[0] must be an object, not null",
        ),
        (
            {"tasks": [{"name": "a", "parameters": [{"name": "x"}, {"has_default": True}]}]},
            "tasks[0].parameters[1].name must be a non-empty string",
        ),
        (
            {"tasks": [{"name": "a"}, {"name": "b"}, {"name": "a"}]},
            "tasks[2]: task 'a' is registered twice",
        ),
    ],
)
def test_register_refusals_name_the_problem(document: Any, fragment: str) -> None:
    assert fragment in refused(parse_register_request, body(document)).message


@given(
    st.lists(
        st.builds(
            RegisteredTask,
            name=st.text(min_size=1),
            retry=st.none()
            | st.builds(
                RegisteredRetry,
                max_retries=st.none() | st.integers(min_value=0),
                wait_duration_ms=st.none() | st.integers(min_value=0),
                factor=st.none() | st.floats(min_value=0, allow_nan=False, allow_infinity=False),
            ),
            timeout_seconds=st.none() | st.integers(min_value=1),
            plan=st.none() | st.text(min_size=1),
            parameters=st.lists(
                st.fixed_dictionaries({"name": st.text(min_size=1), "has_default": st.booleans()}),
                max_size=3,
            ),
        ),
        max_size=4,
        unique_by=lambda task: task.name,
    )
)
def test_register_payload_round_trips(tasks: list[RegisteredTask]) -> None:
    document = {"tasks": [task.payload() for task in tasks]}
    assert parse_register_request(body(document)) == tasks


# ---------------------------------------------------------------- callback


@pytest.mark.parametrize(
    ("result_json", "output"),
    [
        (b"[5]", [5]),
        (b"[null]", [None]),
        (b"[[1,2]]", [[1, 2]]),
        (b"[1,2]", [1, 2]),  # a Go worker: its list of return values
        (b"[]", []),
        ('["caf\\u00e9", "\u2028"]'.encode(), ["café", "\u2028"]),
    ],
)
def test_callback_success_from_our_worker(result_json: bytes, output: list[Any]) -> None:
    request = build_callback_success(result_json, UA)
    result = parse_callback_request(request.body)
    assert result == CallbackResult(output=output)
    assert result.succeeded
    assert result.error is None


def test_callback_error_from_our_worker() -> None:
    request = build_callback_error("boom", "Traceback ...", UA)
    result = parse_callback_request(request.body)
    assert result == CallbackResult(error=TaskFailure(details="boom", stack_trace="Traceback ..."))
    assert not result.succeeded
    assert result.output is None


@pytest.mark.parametrize(
    ("document", "failure"),
    [
        ({"error": {"details": ""}}, TaskFailure(details="")),  # 0.6.1, message-less exception
        ({"error": {"details": "x", "stack_trace": None}}, TaskFailure(details="x")),
        ({"error": {"details": "x", "stack_trace": ""}}, TaskFailure(details="x")),
        (
            {"error": {"details": "x", "type": "ValueError"}, "complete": None},
            TaskFailure(details="x"),
        ),
    ],
)
def test_callback_error_shapes(document: Any, failure: TaskFailure) -> None:
    assert parse_callback_request(body(document)) == CallbackResult(error=failure)


def test_callback_complete_ignores_unknown_keys() -> None:
    document = {"complete": {"output": b64("[1]"), "size": 3}, "error": None, "extra": 1}
    assert parse_callback_request(body(document)) == CallbackResult(output=[1])


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({}, "a callback needs one of complete and error"),
        ({"complete": None, "error": None}, "needs one of complete and error"),
        (
            {"complete": {"output": b64("[1]")}, "error": {"details": "x"}},
            "one of complete and error, not both",
        ),
        ({"complete": "W10="}, "complete must be an object, not a string"),
        ({"complete": {}}, "complete.output is required"),
        ({"complete": {"output": None}}, "complete.output is required"),
        ({"complete": {"output": ""}}, "complete.output is required"),
        ({"complete": {"output": 5}}, "complete.output must be a base64 string, not a number"),
        ({"complete": {"output": "W10"}}, "complete.output is not standard base64"),
        ({"complete": {"output": "W1-="}}, "complete.output is not standard base64"),
        ({"complete": {"output": "é"}}, "complete.output is not standard base64"),
        ({"complete": {"output": b64("[1")}}, "complete.output is not base64-encoded JSON"),
        ({"complete": {"output": b64("[NaN]")}}, "NaN is not valid JSON"),
        (
            {"complete": {"output": b64("5")}},
            "must encode a JSON array (the result array), not a number",
        ),
        (
            {"complete": {"output": b64("null")}},
            "must encode a JSON array (the result array), not null",
        ),
        ({"complete": {"output": b64('{"a":1}')}}, "not an object"),
        ({"error": "boom"}, "error must be an object, not a string"),
        ({"error": {}}, "error.details must be a string, not null"),
        ({"error": {"details": 5}}, "error.details must be a string, not a number"),
        ({"error": {"details": "x", "stack_trace": []}}, "error.stack_trace must be a string"),
    ],
)
def test_callback_refusals_name_the_problem(document: Any, fragment: str) -> None:
    assert fragment in refused(parse_callback_request, body(document)).message


@given(st.lists(JSON_VALUES, max_size=5))
def test_callback_output_round_trips(output: list[Any]) -> None:
    result_json = json.dumps(output).encode()
    parsed = parse_callback_request(build_callback_success(result_json, UA).body)
    assert parsed.output == output


# ---------------------------------------------------------------- run-subtask


def test_run_subtask_from_our_worker() -> None:
    request = build_run_subtask(
        "square",
        [3],
        idempotency_key="5b2c",
        created_at="2026-08-20T12:34:56.789012+00:00",
        user_agent=UA,
    )
    assert parse_run_subtask_request(request.body) == SubtaskRequest(
        task_name="square",
        input=[3],
        idempotency_key="5b2c",
        created_at="2026-08-20T12:34:56.789012+00:00",
    )


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        # 0.6.1: no idempotency key, no timestamp.
        (
            {"task_name": "add", "input": b64('{"a": 1, "b": 2}')},
            SubtaskRequest(task_name="add", input={"a": 1, "b": 2}),
        ),
        # The official dev server crashed without an input: no arguments here.
        ({"task_name": "noop"}, SubtaskRequest(task_name="noop", input=[])),
        ({"task_name": "noop", "input": None}, SubtaskRequest(task_name="noop", input=[])),
        ({"task_name": "noop", "input": ""}, SubtaskRequest(task_name="noop", input=[])),
        (
            {"task_name": "t", "input": b64("[]"), "idempotency_key": "", "created_at": None},
            SubtaskRequest(task_name="t", input=[]),
        ),
        (
            {"task_name": "t", "input": b64("[1]"), "workflow": "x", "priority": 3},
            SubtaskRequest(task_name="t", input=[1]),
        ),
    ],
)
def test_run_subtask_shapes(document: Any, expected: SubtaskRequest) -> None:
    assert parse_run_subtask_request(body(document)) == expected


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({}, "task_name must be a non-empty string"),
        ({"task_name": ""}, "task_name must be a non-empty string"),
        ({"task_name": ["a"]}, "task_name must be a non-empty string"),
        ({"task_name": "t", "input": [1]}, "input must be a base64 string, not an array"),
        ({"task_name": "t", "input": "!!"}, "input is not standard base64"),
        ({"task_name": "t", "input": b64("[1,")}, "input is not base64-encoded JSON"),
        (
            {"task_name": "t", "input": b64("5")},
            "input must encode a JSON array or object, not a number",
        ),
        ({"task_name": "t", "input": b64("null")}, "must encode a JSON array or object, not null"),
        ({"task_name": "t", "input": b64('"s"')}, "not a string"),
        ({"task_name": "t", "idempotency_key": 7}, "run-subtask.idempotency_key must be a string"),
        ({"task_name": "t", "created_at": 1.5}, "run-subtask.created_at must be a string"),
    ],
)
def test_run_subtask_refusals_name_the_problem(document: Any, fragment: str) -> None:
    assert fragment in refused(parse_run_subtask_request, body(document)).message


@given(input_data=st.lists(JSON_VALUES, max_size=4) | st.dictionaries(st.text(), JSON_VALUES))
def test_run_subtask_input_round_trips(input_data: Any) -> None:
    request = build_run_subtask(
        "t", input_data, idempotency_key="k", created_at="2026-01-01T00:00:00+00:00", user_agent=UA
    )
    assert parse_run_subtask_request(request.body).input == input_data


# ---------------------------------------------------------------- get-subtask-result


def test_subtask_result_request_from_our_worker() -> None:
    request = build_get_subtask_result("trn-abc", UA)
    assert parse_subtask_result_request(request.body) == "trn-abc"


def test_subtask_result_request_ignores_unknown_keys() -> None:
    assert parse_subtask_result_request(b'{"task_run_id": "trn-1", "wait": true}') == "trn-1"


@pytest.mark.parametrize("document", [{}, {"task_run_id": ""}, {"task_run_id": 5}])
def test_subtask_result_request_needs_an_id(document: Any) -> None:
    message = refused(parse_subtask_result_request, body(document)).message
    assert message == "task_run_id must be a non-empty string"


# ---------------------------------------------------------------- builders


def test_input_response_golden() -> None:
    assert build_input_response("add", [2, 3]) == b'{"task_name":"add","input":"WzIsM10="}'


def test_input_response_for_register_mode() -> None:
    # What the official dev server serves in register mode; workers read it as no input.
    assert build_input_response("", None) == b'{"task_name":"","input":null}'


def test_input_response_with_ids_reads_back() -> None:
    raw = build_input_response(
        "add",
        {"a": 1},
        task_run_id="trn-1",
        root_task_run_id="trn-0",
        parent_task_run_id="trn-p",
        attempt=2,
    )
    assert json.loads(raw) == {
        "task_name": "add",
        "input": b64('{"a":1}'),
        "task_run_id": "trn-1",
        "root_task_run_id": "trn-0",
        "parent_task_run_id": "trn-p",
        "attempt": 2,
    }
    assert parse_input(Response(status=200, body=raw)) == TaskInput(
        task_name="add",
        input={"a": 1},
        task_run_id="trn-1",
        root_task_run_id="trn-0",
        parent_task_run_id="trn-p",
        attempt=2,
    )


def test_input_response_leaves_out_ids_not_given() -> None:
    raw = build_input_response("add", [], task_run_id="trn-1")
    assert json.loads(raw) == {"task_name": "add", "input": b64("[]"), "task_run_id": "trn-1"}


def test_input_response_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        build_input_response("add", [float("nan")])


def test_run_subtask_response() -> None:
    raw = build_run_subtask_response("trn-d2k4l6o2j5r3ldc4k0ug")
    assert raw == b'{"task_run_id":"trn-d2k4l6o2j5r3ldc4k0ug"}'
    assert parse_run_subtask(Response(status=200, body=raw)) == "trn-d2k4l6o2j5r3ldc4k0ug"


@pytest.mark.parametrize("run_id", ["", None, 5])
def test_run_subtask_response_needs_an_id(run_id: Any) -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        build_run_subtask_response(run_id)


@pytest.mark.parametrize(
    ("kwargs", "raw", "outcome"),
    [
        ({"still_running": True}, b'{"still_running":true}', SubtaskOutcome(still_running=True)),
        (
            {"still_running": False, "output": [5]},
            b'{"still_running":false,"complete":{"output":"WzVd"}}',
            SubtaskOutcome(still_running=False, value=5),
        ),
        (
            {"still_running": False, "output": [1, 2]},
            b'{"still_running":false,"complete":{"output":"WzEsMl0="}}',
            SubtaskOutcome(still_running=False, value=[1, 2]),
        ),
        (
            {"still_running": False, "error": "boom"},
            b'{"still_running":false,"error":{"details":"boom"}}',
            SubtaskOutcome(still_running=False, error="boom"),
        ),
        (
            {"still_running": False},  # the official answer for a canceled child
            b'{"still_running":false}',
            SubtaskOutcome(still_running=False, error="the subtask was canceled"),
        ),
    ],
)
def test_subtask_result_response(
    kwargs: dict[str, Any], raw: bytes, outcome: SubtaskOutcome
) -> None:
    assert build_subtask_result_response(**kwargs) == raw
    assert parse_subtask_result(Response(status=200, body=raw)) == outcome


@pytest.mark.parametrize(
    "kwargs",
    [
        {"still_running": True, "output": [1]},
        {"still_running": True, "error": "x"},
        {"still_running": False, "output": [1], "error": "x"},
    ],
)
def test_subtask_result_response_refuses_contradictions(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"still-running|not both"):
        build_subtask_result_response(**kwargs)


@given(st.lists(JSON_VALUES, max_size=4))
def test_subtask_output_round_trips_through_the_worker(output: list[Any]) -> None:
    raw = build_subtask_result_response(still_running=False, output=output)
    outcome = parse_subtask_result(Response(status=200, body=raw))
    expected = output[0] if len(output) == 1 else output
    assert outcome == SubtaskOutcome(still_running=False, value=expected)


def test_error_response_is_what_workers_quote() -> None:
    raw = build_error_response('task run "trn-x" not found')
    assert raw == b'{"message":"task run \\"trn-x\\" not found"}'
    error = error_for_status(RUN_SUBTASK, Response(status=404, body=raw))
    assert isinstance(error, ClientError)
    assert 'task run "trn-x" not found' in str(error)
