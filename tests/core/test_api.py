"""Tests of the REST request builders and response parsers (render_core.api).

Builders are checked against golden requests (method, URL, headers, body bytes,
byte for byte); parsers against every status the API documents per
operation, plus the statuses it does not document (redirects, unexpected 2xx,
impossible codes) and bodies that are not what they should be. Everything is a
pure function of its arguments: no mocks, no clock, no network.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render_core import api, models
from render_core.backoff import REST_IDEMPOTENT, REST_NON_IDEMPOTENT, rest_rules
from render_core.config import ClientConfig
from render_core.errors import (
    ClientError,
    ConfigurationError,
    NotFoundError,
    RateLimitError,
    RenderError,
    ServerError,
    UnexpectedResponseError,
    ValidationError,
)
from render_core.http import Request, Response, header_value, normalize_headers
from render_core.sse import ServerSentEvent

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)

UA = "render-sdk-python/9.9.9 (cpython/3.12.3; linux/x86_64)"
TOKEN = "rnd_GOLDEN_token"
AUTHED = ClientConfig(base_url="https://api.example.test", token=TOKEN, user_agent=UA)
ANONYMOUS = ClientConfig(base_url="http://localhost:8120", local_dev=True, user_agent=UA)
API = "https://api.example.test/v1"
LOCAL_API = "http://localhost:8120/v1"

JSON_HEADERS = (("User-Agent", UA), ("Accept", "application/json"))
AUTH_HEADER = ("Authorization", f"Bearer {TOKEN}")
BODY_HEADER = ("Content-Type", "application/json")

# ---------------------------------------------------------------------------
# Wire bodies, with the kinds of surprises servers send.

RUN_ID = "trn-d2k4l6o2j5r3ldc4k0ug"
TASK_ID = "tsk-d2k4l4g2j5r3ldc4k0t0"
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))

TASK_RUN_JSON: dict[str, Any] = {
    "id": RUN_ID,
    "taskId": TASK_ID,
    "status": "running",
    "startedAt": "2026-08-20T12:00:00.123456789+02:00",
    "parentTaskRunId": "",
    "rootTaskRunId": RUN_ID,
    "retries": 0,
    "attempts": [
        {"attempt": 0, "status": "running", "startedAt": "2026-08-20T12:00:00.123456789+02:00"}
    ],
}

FAILED_DETAILS_JSON: dict[str, Any] = {
    "id": RUN_ID,
    "taskId": TASK_ID,
    "status": "failed",
    "results": [],
    "input": [2, 0],
    "error": "division by zero",
    "startedAt": "2026-08-20T12:00:00Z",
    "completedAt": "2026-08-20T12:00:03Z",
    "parentTaskRunId": "",
    "rootTaskRunId": RUN_ID,
    "retries": 1,
    "attempts": [
        {
            "attempt": 0,
            "status": "failed",
            "startedAt": "2026-08-20T12:00:00Z",
            "completedAt": "2026-08-20T12:00:01Z",
            "error": "division by zero",
        },
        {
            "attempt": 1,
            "status": "failed",
            "startedAt": "2026-08-20T12:00:02Z",
            "completedAt": "2026-08-20T12:00:03Z",
            "error": "division by zero",
        },
    ],
}

COMPLETED_DETAILS_JSON: dict[str, Any] = {
    **FAILED_DETAILS_JSON,
    "status": "completed",
    "results": [5],
    "input": {"a": 2, "b": 3},
    "error": None,
    "retries": 0,
    "attempts": [
        {
            "attempt": 0,
            "status": "completed",
            "startedAt": "2026-08-20T12:00:00Z",
            "completedAt": "2026-08-20T12:00:03Z",
            "results": [5],
        }
    ],
}

TASK_JSON: dict[str, Any] = {
    "id": TASK_ID,
    "name": "add",
    "createdAt": "2026-08-20T11:59:59.999999999Z",
    "workflowId": "wfl-1",
    "workflowVersionId": "wfv-1",
}

ERROR_JSON = {"id": "err-7f3a", "message": "task not found: my-workflow/nope"}


def body(document: object) -> bytes:
    return json.dumps(document).encode()


def ok(status: int, document: object) -> Response:
    return Response(
        status=status, headers={"Content-Type": "application/json"}, body=body(document)
    )


# ---------------------------------------------------------------------------
# Golden requests


def test_start_task_golden_list_input() -> None:
    request = api.build_start_task(AUTHED, "my-workflow/add", [2, 3])
    assert request == Request(
        method="POST",
        url=f"{API}/task-runs",
        headers=(*JSON_HEADERS, BODY_HEADER, AUTH_HEADER),
        body=b'{"task":"my-workflow/add","input":[2,3]}',
        stream=False,
    )


def test_start_task_golden_dict_input_without_token() -> None:
    request = api.build_start_task(ANONYMOUS, "my-workflow/add", {"a": 2, "b": 3})
    assert request == Request(
        method="POST",
        url=f"{LOCAL_API}/task-runs",
        headers=(*JSON_HEADERS, BODY_HEADER),
        body=b'{"task":"my-workflow/add","input":{"a":2,"b":3}}',
    )
    assert request.header("Authorization") is None


def test_start_task_tuple_input_is_a_list_and_versioned_slug_is_kept() -> None:
    request = api.build_start_task(AUTHED, "my-wf/my-task:SHA123", (1, "x", None))
    assert request.body == b'{"task":"my-wf/my-task:SHA123","input":[1,"x",null]}'


def test_start_task_empty_input() -> None:
    assert api.build_start_task(AUTHED, "wf/t", []).body == b'{"task":"wf/t","input":[]}'
    assert api.build_start_task(AUTHED, "wf/t", {}).body == b'{"task":"wf/t","input":{}}'


def test_start_task_body_is_utf8_not_escaped() -> None:
    request = api.build_start_task(AUTHED, "wf/grüße", ["héllo ✓", "\u2028"])
    assert request.body == '{"task":"wf/grüße","input":["héllo ✓","\u2028"]}'.encode()
    assert b"\\u" not in request.body


def test_start_task_idempotency_key_only_when_given() -> None:
    with_key = api.build_start_task(AUTHED, "wf/t", [1], idempotency_key="key-1")
    assert with_key.body == b'{"task":"wf/t","input":[1],"idempotencyKey":"key-1"}'
    without = api.build_start_task(AUTHED, "wf/t", [1])
    assert b"idempotencyKey" not in without.body
    assert api.build_start_task(AUTHED, "wf/t", [1], idempotency_key=None) == without


@pytest.mark.parametrize(
    ("config", "base", "auth"), [(AUTHED, API, [AUTH_HEADER]), (ANONYMOUS, LOCAL_API, [])]
)
def test_get_task_run_golden(config: ClientConfig, base: str, auth: list[tuple[str, str]]) -> None:
    assert api.build_get_task_run(config, RUN_ID) == Request(
        method="GET", url=f"{base}/task-runs/{RUN_ID}", headers=(*JSON_HEADERS, *auth)
    )


@pytest.mark.parametrize(
    ("config", "base", "auth"), [(AUTHED, API, [AUTH_HEADER]), (ANONYMOUS, LOCAL_API, [])]
)
def test_cancel_task_run_golden(
    config: ClientConfig, base: str, auth: list[tuple[str, str]]
) -> None:
    assert api.build_cancel_task_run(config, RUN_ID) == Request(
        method="DELETE", url=f"{base}/task-runs/{RUN_ID}", headers=(*JSON_HEADERS, *auth)
    )


@pytest.mark.parametrize(
    ("config", "base", "auth"), [(AUTHED, API, [AUTH_HEADER]), (ANONYMOUS, LOCAL_API, [])]
)
def test_get_task_golden(config: ClientConfig, base: str, auth: list[tuple[str, str]]) -> None:
    assert api.build_get_task(config, TASK_ID) == Request(
        method="GET", url=f"{base}/tasks/{TASK_ID}", headers=(*JSON_HEADERS, *auth)
    )


@pytest.mark.parametrize(
    ("params", "query"),
    [
        (None, ""),
        (models.ListTaskRunsParams(), ""),
        (models.ListTaskRunsParams(limit=5), "?limit=5"),
        (models.ListTaskRunsParams(cursor="trn-abc"), "?cursor=trn-abc"),
        (models.ListTaskRunsParams(limit=20, cursor="trn-abc"), "?cursor=trn-abc&limit=20"),
        (models.ListTaskRunsParams(task_slug=["a", "b"]), "?taskSlug=a&taskSlug=b"),
        (models.ListTaskRunsParams(task_slug="wf/one"), "?taskSlug=wf%2Fone"),
        (models.ListTaskRunsParams(owner_id="tea-1"), "?ownerId=tea-1"),
        (models.ListTaskRunsParams(owners=["tea-1", "usr-2"]), "?ownerId=tea-1&ownerId=usr-2"),
        (models.ListTaskRunsParams(task_slug=[]), ""),
        (
            models.ListTaskRunsParams(
                limit=3,
                cursor="c 1&x=y",
                task_slug=["wf/a", "wf/b"],
                root_task_run_id=["trn-r"],
                owner_id=["tea-1"],
                workflow_version_id=["wfv-1", "wfv-2"],
                workflow_id=["wfl-1"],
            ),
            "?cursor=c+1%26x%3Dy&limit=3&taskSlug=wf%2Fa&taskSlug=wf%2Fb&rootTaskRunId=trn-r"
            "&ownerId=tea-1&workflowVersionId=wfv-1&workflowVersionId=wfv-2&workflowId=wfl-1",
        ),
    ],
)
def test_list_task_runs_golden(params: models.ListTaskRunsParams | None, query: str) -> None:
    assert api.build_list_task_runs(AUTHED, params) == Request(
        method="GET", url=f"{API}/task-runs{query}", headers=(*JSON_HEADERS, AUTH_HEADER)
    )


def test_list_task_runs_without_token_has_no_authorization() -> None:
    request = api.build_list_task_runs(ANONYMOUS)
    assert request == Request(method="GET", url=f"{LOCAL_API}/task-runs", headers=JSON_HEADERS)


@pytest.mark.parametrize(
    ("params", "query"),
    [
        (None, ""),
        (models.ListTasksParams(limit=1), "?limit=1"),
        (models.ListTasksParams(cursor="tsk-9", limit=50), "?cursor=tsk-9&limit=50"),
        (models.ListTasksParams(task_slug=("a", "b")), "?taskSlug=a&taskSlug=b"),
        (
            models.ListTasksParams(
                owner_id=["tea-1", "tea-2"],
                task_slug="wf/a",
                workflow_version_id="wfv-1",
                workflow_id=["wfl-1", "wfl-2"],
            ),
            "?ownerId=tea-1&ownerId=tea-2&taskSlug=wf%2Fa&workflowVersionId=wfv-1"
            "&workflowId=wfl-1&workflowId=wfl-2",
        ),
    ],
)
def test_list_tasks_golden(params: models.ListTasksParams | None, query: str) -> None:
    assert api.build_list_tasks(AUTHED, params) == Request(
        method="GET", url=f"{API}/tasks{query}", headers=(*JSON_HEADERS, AUTH_HEADER)
    )
    assert api.build_list_tasks(ANONYMOUS, params).headers == JSON_HEADERS


def test_task_run_events_golden() -> None:
    request = api.build_task_run_events(AUTHED, ["trn-a", "trn-b"])
    assert request == Request(
        method="GET",
        url=f"{API}/task-runs/events?taskRunIds=trn-a&taskRunIds=trn-b",
        headers=(
            ("User-Agent", UA),
            ("Accept", "text/event-stream"),
            AUTH_HEADER,
            ("Cache-Control", "no-cache"),
        ),
        body=b"",
        stream=True,
    )


def test_task_run_events_resume_without_token() -> None:
    request = api.build_task_run_events(ANONYMOUS, ("trn-a",), last_event_id="42")
    assert request == Request(
        method="GET",
        url=f"{LOCAL_API}/task-runs/events?taskRunIds=trn-a",
        headers=(
            ("User-Agent", UA),
            ("Accept", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("Last-Event-ID", "42"),
        ),
        stream=True,
    )
    # An empty last id (a stream that never sent one) is not sent.
    assert (
        api.build_task_run_events(ANONYMOUS, ["trn-a"], last_event_id="").header("Last-Event-ID")
        is None
    )


def test_task_run_events_accepts_any_iterable_of_ids() -> None:
    request = api.build_task_run_events(AUTHED, (run_id for run_id in ["x", "y/z"]))
    assert request.url == f"{API}/task-runs/events?taskRunIds=x&taskRunIds=y%2Fz"


ALL_BUILDERS: list[tuple[str, Callable[[ClientConfig], Request]]] = [
    ("start", lambda c: api.build_start_task(c, "wf/t", [1])),
    ("get run", lambda c: api.build_get_task_run(c, RUN_ID)),
    ("cancel", lambda c: api.build_cancel_task_run(c, RUN_ID)),
    ("list runs", api.build_list_task_runs),
    ("list tasks", api.build_list_tasks),
    ("get task", lambda c: api.build_get_task(c, TASK_ID)),
    ("events", lambda c: api.build_task_run_events(c, [RUN_ID])),
]


@pytest.mark.parametrize(("name", "build"), ALL_BUILDERS, ids=[n for n, _ in ALL_BUILDERS])
def test_common_header_rules(name: str, build: Callable[[ClientConfig], Request]) -> None:
    authed, anonymous = build(AUTHED), build(ANONYMOUS)
    assert authed.header("user-agent") == UA
    assert authed.header("Authorization") == f"Bearer {TOKEN}"
    assert anonymous.header("Authorization") is None
    # Content-Type exactly when there is a body; only the event stream is streamed.
    assert (authed.header("Content-Type") is not None) == bool(authed.body)
    assert authed.stream == (name == "events")
    assert authed.url.startswith(API + "/")
    assert anonymous.url.startswith(LOCAL_API + "/")
    # Token-less requests differ only by the Authorization header.
    assert [h for h in authed.headers if h[0] != "Authorization"] == list(anonymous.headers)


def test_operations_table() -> None:
    assert [(op.name, op.method, op.success) for op in (api.START_TASK, api.GET_TASK_RUN)] == [
        ("start task", "POST", 202),
        ("get task run", "GET", 200),
    ]
    assert (api.CANCEL_TASK_RUN.method, api.CANCEL_TASK_RUN.success) == ("DELETE", 204)
    # Which retry table a call of each operation gets (without an idempotency key).
    assert rest_rules(api.START_TASK.method) is REST_NON_IDEMPOTENT
    for op in (
        api.GET_TASK_RUN,
        api.LIST_TASK_RUNS,
        api.CANCEL_TASK_RUN,
        api.TASK_RUN_EVENTS,
        api.LIST_TASKS,
        api.GET_TASK,
        api.LIST_LOGS,
    ):
        assert rest_rules(op.method) is REST_IDEMPOTENT, op


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@PROPERTY_SETTINGS
@given(
    task=st.text(min_size=1).filter(lambda t: t.strip() == t and t.strip()),
    args=st.lists(JSON_VALUES, max_size=4) | st.dictionaries(st.text(), JSON_VALUES, max_size=4),
    key=st.none() | st.text(min_size=1).filter(str.strip),
)
def test_start_task_body_round_trips(task: str, args: Any, key: str | None) -> None:
    request = api.build_start_task(AUTHED, task, args, idempotency_key=key)
    document = json.loads(request.body.decode("utf-8"))
    expected: dict[str, Any] = {"task": task, "input": args}
    if key is not None:
        expected["idempotencyKey"] = key
    assert document == expected
    assert list(document) == list(expected)
    # Compact: re-encoding compactly gives back exactly the same bytes.
    assert request.body == json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


# ---------------------------------------------------------------------------
# Validation before sending


class Opaque:
    pass


def wrong(value: object) -> Any:
    """An argument of the wrong type, passed on purpose (hides it from mypy only)."""
    return value


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _circular() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


INVALID_CALLS: list[tuple[str, Callable[[], object], str]] = [
    ("empty task", lambda: api.build_start_task(AUTHED, "", []), "task_identifier"),
    ("blank task", lambda: api.build_start_task(AUTHED, "   ", []), "task_identifier"),
    ("padded task", lambda: api.build_start_task(AUTHED, " wf/t ", []), "task_identifier"),
    ("newline task", lambda: api.build_start_task(AUTHED, "wf/t\n", []), "task_identifier"),
    ("int task", lambda: api.build_start_task(AUTHED, wrong(5), []), "task_identifier"),
    ("input None", lambda: api.build_start_task(AUTHED, "wf/t", wrong(None)), "input_data"),
    ("input int", lambda: api.build_start_task(AUTHED, "wf/t", wrong(3)), "input_data"),
    ("input str", lambda: api.build_start_task(AUTHED, "wf/t", "ab"), "input_data"),
    ("input set", lambda: api.build_start_task(AUTHED, "wf/t", wrong({1, 2})), "input_data"),
    ("input int key", lambda: api.build_start_task(AUTHED, "wf/t", wrong({1: "a"})), "input_data"),
    ("input NaN", lambda: api.build_start_task(AUTHED, "wf/t", [math.nan]), "input_data"),
    ("input inf", lambda: api.build_start_task(AUTHED, "wf/t", {"x": math.inf}), "input_data"),
    ("input -inf", lambda: api.build_start_task(AUTHED, "wf/t", [[-math.inf]]), "input_data"),
    ("input object", lambda: api.build_start_task(AUTHED, "wf/t", [Opaque()]), "input_data"),
    ("input bytes", lambda: api.build_start_task(AUTHED, "wf/t", [b"raw"]), "input_data"),
    ("input circular", lambda: api.build_start_task(AUTHED, "wf/t", _circular()), "input_data"),
    ("input too deep", lambda: api.build_start_task(AUTHED, "wf/t", _deep(100_000)), "input_data"),
    (
        "empty key",
        lambda: api.build_start_task(AUTHED, "wf/t", [], idempotency_key=""),
        "idempotency_key",
    ),
    (
        "int key",
        lambda: api.build_start_task(AUTHED, "wf/t", [], idempotency_key=wrong(1)),
        "idempotency_key",
    ),
    ("get run empty", lambda: api.build_get_task_run(AUTHED, ""), "task_run_id"),
    ("get run None", lambda: api.build_get_task_run(AUTHED, wrong(None)), "task_run_id"),
    ("get run blank", lambda: api.build_get_task_run(AUTHED, " \t"), "task_run_id"),
    ("get run dot", lambda: api.build_get_task_run(AUTHED, "."), "task_run_id"),
    ("cancel dotdot", lambda: api.build_cancel_task_run(AUTHED, ".."), "task_run_id"),
    ("cancel int", lambda: api.build_cancel_task_run(AUTHED, wrong(12)), "task_run_id"),
    ("get task empty", lambda: api.build_get_task(AUTHED, ""), "task_id"),
    ("get task bytes", lambda: api.build_get_task(AUTHED, wrong(b"tsk")), "task_id"),
    ("get task dotdot", lambda: api.build_get_task(AUTHED, ".."), "task_id"),
    ("events str", lambda: api.build_task_run_events(AUTHED, "trn-a"), "task_run_ids"),
    ("events bytes", lambda: api.build_task_run_events(AUTHED, wrong(b"trn-a")), "task_run_ids"),
    ("events None", lambda: api.build_task_run_events(AUTHED, wrong(None)), "task_run_ids"),
    ("events int", lambda: api.build_task_run_events(AUTHED, wrong(7)), "task_run_ids"),
    ("events empty", lambda: api.build_task_run_events(AUTHED, []), "task_run_ids"),
    (
        "events empty id",
        lambda: api.build_task_run_events(AUTHED, ["a", ""]),
        r"task_run_ids\[1\]",
    ),
    (
        "events None id",
        lambda: api.build_task_run_events(AUTHED, wrong([None])),
        r"task_run_ids\[0\]",
    ),
    (
        "list runs params",
        lambda: api.build_list_task_runs(AUTHED, wrong({"limit": 1})),
        "params",
    ),
    (
        "list runs swapped",
        lambda: api.build_list_task_runs(AUTHED, wrong(models.ListTasksParams())),
        "params",
    ),
    (
        "list tasks params",
        lambda: api.build_list_tasks(AUTHED, wrong(models.ListTaskRunsParams())),
        "params",
    ),
]


@pytest.mark.parametrize(
    ("name", "call", "names"), INVALID_CALLS, ids=[c[0] for c in INVALID_CALLS]
)
def test_invalid_arguments_raise_validation_error(
    name: str, call: Callable[[], object], names: str
) -> None:
    with pytest.raises(ValidationError, match=names) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ClientError)
    assert info.value.status is None
    assert info.value.__cause__ is None


def test_non_str_dict_key_is_named() -> None:
    with pytest.raises(ValidationError, match=r"got 1\b"):
        api.build_start_task(AUTHED, "wf/t", wrong({"a": 1, 1: "b"}))


def test_input_none_message_suggests_empty_list() -> None:
    with pytest.raises(ValidationError, match=r"pass \[\]"):
        api.build_start_task(AUTHED, "wf/t", wrong(None))


def test_nested_too_deep_has_its_own_message() -> None:
    with pytest.raises(ValidationError, match="nested too deeply"):
        api.encode_json(_deep(100_000), "input_data")


def test_encode_json_is_compact_utf8() -> None:
    assert api.encode_json({"a": [1, 2.5, None, True], "é": "✓"}, "x") == (
        '{"a":[1,2.5,null,true],"é":"✓"}'.encode()
    )


@pytest.mark.parametrize(
    "run_id",
    [
        "a/b",
        "../x",
        "../../tasks",
        "a?b=c",
        "a#frag",
        "a b",
        "%2F",
        "trn-ü",
        "a..b",
        "...",
        "/",
        "?",
    ],
)
@pytest.mark.parametrize(
    ("build", "prefix"),
    [
        (api.build_get_task_run, f"{API}/task-runs/"),
        (api.build_cancel_task_run, f"{API}/task-runs/"),
        (api.build_get_task, f"{API}/tasks/"),
    ],
)
def test_path_injection_is_encoded(
    run_id: str, build: Callable[[ClientConfig, str], Request], prefix: str
) -> None:
    url = build(AUTHED, run_id).url
    assert url == prefix + quote(run_id, safe="")
    segment = url[len(prefix) :]
    assert not set(segment) & set("/?# ")
    assert unquote(segment) == run_id


@PROPERTY_SETTINGS
@given(st.text(min_size=1).filter(lambda s: s.strip() and s not in (".", "..")))
def test_any_id_stays_one_path_segment(run_id: str) -> None:
    for build, route in (
        (api.build_get_task_run, "/v1/task-runs/"),
        (api.build_cancel_task_run, "/v1/task-runs/"),
        (api.build_get_task, "/v1/tasks/"),
    ):
        parts = urlsplit(build(AUTHED, run_id).url)
        assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == (
            "https",
            "api.example.test",
            "",
            "",
        )
        assert parts.path.startswith(route)
        segment = parts.path[len(route) :]
        assert "/" not in segment
        assert unquote(segment) == run_id


@PROPERTY_SETTINGS
@given(st.lists(st.text(min_size=1).filter(str.strip), min_size=1, max_size=5))
def test_event_ids_are_repeated_query_keys(ids: list[str]) -> None:
    parts = urlsplit(api.build_task_run_events(AUTHED, ids).url)
    assert parts.path == "/v1/task-runs/events"
    assert parts.fragment == ""
    pairs = [pair.split("=") for pair in parts.query.split("&")]
    assert [key for key, _ in pairs] == ["taskRunIds"] * len(ids)
    assert [unquote(value.replace("+", " ")) for _, value in pairs] == ids


# ---------------------------------------------------------------------------
# Parsing: documented successes


def test_parse_start_task_202() -> None:
    run = api.parse_start_task(ok(202, TASK_RUN_JSON))
    assert isinstance(run, models.TaskRun)
    assert run.id == RUN_ID
    assert run.task_id == TASK_ID
    assert run.status is models.TaskRunStatus.RUNNING
    assert run.started_at == dt.datetime(2026, 8, 20, 12, 0, 0, 123456, tzinfo=PLUS_TWO)
    assert run.parent_task_run_id == ""
    assert run.is_root
    assert run.root_task_run_id == RUN_ID
    assert run.attempts == [
        models.TaskAttempt(
            attempt=0,
            status=models.TaskRunStatus.RUNNING,
            started_at=dt.datetime(2026, 8, 20, 10, 0, 0, 123456, tzinfo=dt.timezone.utc),
        )
    ]
    assert run.cursor is None


def test_parse_get_task_run_failed_details() -> None:
    details = api.parse_get_task_run(ok(200, FAILED_DETAILS_JSON))
    assert isinstance(details, models.TaskRunDetails)
    assert details.status is models.TaskRunStatus.FAILED
    assert details.error == "division by zero"
    assert details.input_ == [2, 0]
    assert details.results == []
    assert details.retries == 1
    assert [a.attempt for a in details.attempts] == [0, 1]
    assert details.attempts[1].error == "division by zero"
    assert details.completed_at == dt.datetime(2026, 8, 20, 12, 0, 3, tzinfo=dt.timezone.utc)


def test_parse_get_task_run_completed_details() -> None:
    details = api.parse_get_task_run(ok(200, COMPLETED_DETAILS_JSON))
    assert details.status.is_success
    assert details.result == 5
    assert details.input_ == {"a": 2, "b": 3}
    assert details.error is None
    assert details.attempts[0].results == [5]


def test_parse_tolerates_unknown_keys_unknown_status_and_null_results() -> None:
    document = {
        **FAILED_DETAILS_JSON,
        "status": "hibernating",
        "results": None,
        "error": None,
        "brandNewKey": {"x": 1},
        "parentTaskAttempt": 2,
        "parentTaskRunId": "trn-parent",
    }
    details = api.parse_get_task_run(ok(200, document))
    assert details.status == "hibernating"
    assert not details.status.is_known
    assert not details.status.is_terminal
    assert details.results == []
    assert details.extra == {"brandNewKey": {"x": 1}}
    assert details.parent_task_attempt == 2
    assert not details.is_root


def test_parse_accepts_utf8_body_without_content_type() -> None:
    document = {**COMPLETED_DETAILS_JSON, "results": ["héllo ✓"]}
    response = Response(status=200, body=json.dumps(document, ensure_ascii=False).encode("utf-8"))
    assert api.parse_get_task_run(response).results == ["héllo ✓"]


def test_parse_cancel_204() -> None:
    api.parse_cancel_task_run(Response(status=204))
    # A 204 body is never looked at.
    api.parse_cancel_task_run(Response(status=204, body=b"garbage"))


def test_parse_list_task_runs_attaches_cursors() -> None:
    second = {**TASK_RUN_JSON, "id": "trn-2", "status": "completed"}
    response = ok(
        200,
        [
            {"taskRun": TASK_RUN_JSON, "cursor": "cur-1"},
            {"taskRun": second, "cursor": "cur-2", "extraWrapperKey": True},
        ],
    )
    runs = api.parse_list_task_runs(response)
    assert [(run.id, run.cursor) for run in runs] == [(RUN_ID, "cur-1"), ("trn-2", "cur-2")]
    assert all(run.task_run is run for run in runs)
    assert runs[1].status is models.TaskRunStatus.COMPLETED
    assert api.parse_list_task_runs(ok(200, [])) == []


def test_parse_list_tasks_attaches_cursors() -> None:
    tasks = api.parse_list_tasks(ok(200, [{"task": TASK_JSON, "cursor": "tsk-cur"}]))
    assert len(tasks) == 1
    assert tasks[0].cursor == "tsk-cur"
    assert tasks[0].name == "add"
    assert tasks[0].workflow_version_id == "wfv-1"
    assert tasks[0].created_at == dt.datetime(
        2026, 8, 20, 11, 59, 59, 999999, tzinfo=dt.timezone.utc
    )
    assert api.parse_list_tasks(ok(200, [])) == []


def test_parse_get_task_200() -> None:
    task = api.parse_get_task(ok(200, {**TASK_JSON, "somethingNew": 1}))
    assert task == models.Task(
        id=TASK_ID,
        name="add",
        created_at=dt.datetime(2026, 8, 20, 11, 59, 59, 999999, tzinfo=dt.timezone.utc),
        workflow_id="wfl-1",
        workflow_version_id="wfv-1",
    )
    assert task.extra == {"somethingNew": 1}


def test_check_task_run_events_200_passes() -> None:
    api.check_task_run_events(Response(status=200))
    headers = {"Content-Type": "text/event-stream; charset=utf-8"}
    api.check_task_run_events(Response(status=200, headers=headers))


# ---------------------------------------------------------------------------
# Parsing: documented errors, per operation

PARSERS: dict[str, tuple[Callable[[Response], object], api.Operation, Response]] = {
    "start": (api.parse_start_task, api.START_TASK, ok(202, TASK_RUN_JSON)),
    "get run": (api.parse_get_task_run, api.GET_TASK_RUN, ok(200, FAILED_DETAILS_JSON)),
    "list runs": (
        api.parse_list_task_runs,
        api.LIST_TASK_RUNS,
        ok(200, [{"taskRun": TASK_RUN_JSON, "cursor": "c"}]),
    ),
    "cancel": (api.parse_cancel_task_run, api.CANCEL_TASK_RUN, Response(status=204)),
    "events": (api.check_task_run_events, api.TASK_RUN_EVENTS, Response(status=200)),
    "list tasks": (
        api.parse_list_tasks,
        api.LIST_TASKS,
        ok(200, [{"task": TASK_JSON, "cursor": "c"}]),
    ),
    "get task": (api.parse_get_task, api.GET_TASK, ok(200, TASK_JSON)),
}

DOCUMENTED_ERRORS = {
    "start": (400, 401, 403, 404, 429, 500, 503),
    "get run": (401, 403, 404, 429, 500, 503),
    "list runs": (401, 403, 404, 429, 500, 503),
    "cancel": (401, 403, 404, 429, 500, 503),
    "events": (400, 401, 403, 404, 429, 500, 503),
    "list tasks": (401, 403, 404, 429, 500, 503),
    "get task": (401, 403, 404, 429, 500, 503),
}

EXPECTED_CLASS: dict[int, type[RenderError]] = {
    400: ClientError,
    401: ClientError,
    403: ClientError,
    404: NotFoundError,
    429: RateLimitError,
    500: ServerError,
    503: ServerError,
}

DOCUMENTED_CASES = [
    (op, status) for op, statuses in DOCUMENTED_ERRORS.items() for status in statuses
]


def test_every_parser_accepts_its_documented_success() -> None:
    for parse, operation, success in PARSERS.values():
        assert success.status == operation.success
        parse(success)  # does not raise


@pytest.mark.parametrize(("op", "status"), DOCUMENTED_CASES)
def test_documented_error_maps_to_class_and_attributes(op: str, status: int) -> None:
    parse, operation, _ = PARSERS[op]
    response = Response(
        status=status,
        headers={"Content-Type": "application/json", "X-Request-Id": "hdr-1"},
        body=body(ERROR_JSON),
    )
    with pytest.raises(RenderError) as info:
        parse(response)
    exc = info.value
    assert type(exc) is EXPECTED_CLASS[status]
    assert exc.status == status
    assert exc.operation == operation.name
    assert exc.request_id == "err-7f3a"  # the body's id wins over the header
    assert exc.message == "task not found: my-workflow/nope"
    assert str(exc) == (
        f"{operation.name} failed: task not found: my-workflow/nope (HTTP {status}, ID: err-7f3a)"
    )
    if status == 429:
        assert isinstance(exc, RateLimitError)
        assert exc.retry_after is None


@pytest.mark.parametrize("status", [402, 405, 409, 410, 413, 418, 422, 451, 499])
def test_other_4xx_are_client_errors(status: int) -> None:
    exc = api.error_for_response(api.GET_TASK_RUN, ok(status, {"message": "nope"}))
    assert type(exc) is ClientError
    assert exc.status == status


@pytest.mark.parametrize("status", [501, 502, 504, 520, 599])
def test_other_5xx_are_server_errors(status: int) -> None:
    exc = api.error_for_response(api.GET_TASK_RUN, ok(status, {"message": "down"}))
    assert type(exc) is ServerError
    assert str(exc) == f"get task run failed: down (HTTP {status})"


@pytest.mark.parametrize(
    ("headers", "document", "request_id"),
    [
        ({"X-Request-Id": "req-9"}, {"message": "boom"}, "req-9"),
        ({"x-request-id": "req-9"}, {"message": "boom", "id": None}, "req-9"),
        ({"Render-Request-Id": "rr-1"}, {"message": "boom"}, "rr-1"),
        ({"X-Request-Id": "req-9", "Render-Request-Id": "rr-1"}, {"message": "boom"}, "req-9"),
        ({"X-Request-Id": "req-9"}, {"message": "boom", "id": "body-1"}, "body-1"),
        ({"X-Request-Id": "req-9"}, {"message": "boom", "id": ""}, "req-9"),
        ({}, {"message": "boom"}, None),
        ({"X-Request-Id": ""}, {"message": "boom"}, None),
    ],
)
def test_request_id_from_body_else_header(
    headers: dict[str, str], document: dict[str, Any], request_id: str | None
) -> None:
    response = Response(status=500, headers=headers, body=body(document))
    exc = api.error_for_response(api.GET_TASK_RUN, response)
    assert exc.request_id == request_id
    assert exc.message == "boom"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"message": "bad input", "code": "invalid", "more": 1}, "bad input"),
        ({"error": "legacy error key"}, "legacy error key"),
        ({"message": "", "error": "fallback"}, "fallback"),
        ({"message": 5, "error": "typed wrong"}, "typed wrong"),
        ({"id": "only-id"}, 'server returned no error message: {"id": "only-id"}'),
        (
            {"message": {"nested": True}},
            'server returned no error message: {"message": {"nested": true}}',
        ),
        ([1, 2], "server returned no error message: [1, 2]"),
        (None, "server returned no error message: null"),
        ("just a string", 'server returned no error message: "just a string"'),
    ],
)
def test_error_message_from_json_bodies(document: object, message: str) -> None:
    exc = api.error_for_response(api.START_TASK, ok(400, document))
    assert type(exc) is ClientError
    assert exc.message == message
    assert str(exc).startswith(f"start task failed: {message}")


@pytest.mark.parametrize(
    ("status", "raw", "cls", "message"),
    [
        (401, b"Unauthorized", ClientError, "server returned a non-JSON response: Unauthorized"),
        (
            502,
            b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
            ServerError,
            "server returned a non-JSON response: "
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        ),
        (503, b"", ServerError, "HTTP 503 with an empty body"),
        (404, b"  \r\n ", NotFoundError, "HTTP 404 with an empty body"),
        (
            403,
            b"\xff\xfe denied",
            ClientError,
            "server returned a non-JSON response: \ufffd\ufffd denied",
        ),
        (429, b"slow down", RateLimitError, "server returned a non-JSON response: slow down"),
        (
            400,
            b'{"message": "trunc',
            ClientError,
            'server returned a non-JSON response: {"message": "trunc',
        ),
        (
            500,
            b"[" * 100_000,
            ServerError,
            "server returned a non-JSON response: " + "[" * 200 + "...",
        ),
    ],
)
def test_non_json_error_bodies_still_map_by_status(
    status: int, raw: bytes, cls: type[RenderError], message: str
) -> None:
    response = Response(status=status, headers={"Content-Type": "text/html"}, body=raw)
    exc = api.error_for_response(api.CANCEL_TASK_RUN, response)
    assert type(exc) is cls
    assert exc.status == status
    assert exc.message == message
    assert str(exc) == f"cancel task run failed: {message} (HTTP {status})"


def test_long_error_body_is_quoted_in_part() -> None:
    exc = api.error_for_response(api.GET_TASK, Response(status=500, body=b"x" * 5000))
    assert exc.message == "server returned a non-JSON response: " + "x" * 200 + "..."


# Retry-After on 429

NOW = 1_787_227_200.0  # 2026-08-20T12:00:00Z
DATE = formatdate(NOW, usegmt=True)
IN_90_S = formatdate(NOW + 90, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": " 120 "}, 120.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": IN_90_S, "Date": DATE}, 90.0),
        ({"Retry-After": DATE, "Date": IN_90_S}, 0.0),
        ({"Retry-After": IN_90_S}, None),  # no reference clock: not guessed
        ({"Retry-After": IN_90_S, "Date": "yesterday"}, None),
        ({"Retry-After": "5", "Date": "yesterday"}, 5.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-3"}, None),
        ({}, None),
    ],
)
def test_rate_limit_retry_after(headers: dict[str, str], retry_after: float | None) -> None:
    response = Response(status=429, headers=headers, body=body({"message": "rate limited"}))
    exc = api.error_for_response(api.START_TASK, response)
    assert isinstance(exc, RateLimitError)
    assert exc.retry_after == retry_after
    assert exc.status == 429
    assert str(exc) == "start task failed: rate limited (HTTP 429)"


@pytest.mark.parametrize(
    ("headers", "now", "expected"),
    [
        ({}, NOW, None),
        ({"Retry-After": "30"}, NOW, 30.0),
        ({"Retry-After": IN_90_S}, NOW, 90.0),
        ({"Retry-After": IN_90_S}, NOW + 100, 0.0),
        ({"Retry-After": IN_90_S, "Date": "garbage"}, NOW + 30, 60.0),
        # The server's Date wins over the local clock (immune to clock skew).
        ({"Retry-After": IN_90_S, "Date": DATE}, NOW + 3600, 90.0),
        ({"Retry-After": IN_90_S, "Date": DATE}, None, 90.0),
        ({"Retry-After": IN_90_S}, 0.0, NOW + 90),
        # Obsolete RFC 850 dates (two-digit years) get the right century with or
        # without a local clock.
        ({"Retry-After": IN_90_S, "Date": "Thursday, 20-Aug-26 12:00:00 GMT"}, None, 90.0),
        ({"Retry-After": "Thursday, 20-Aug-26 12:01:30 GMT", "Date": DATE}, None, 90.0),
        (
            {
                "Retry-After": "Thursday, 20-Aug-26 12:01:30 GMT",
                "Date": "Thursday, 20-Aug-26 12:00:00 GMT",
            },
            None,
            90.0,
        ),
        ({"Retry-After": IN_90_S, "Date": "Thursday, 20-Aug-26 12:00:00 GMT"}, NOW, 90.0),
        ({"Retry-After": "Thu Aug 20 12:01:30 2026", "Date": DATE}, None, 90.0),
    ],
)
def test_retry_after_seconds(
    headers: dict[str, str], now: float | None, expected: float | None
) -> None:
    assert api.retry_after_seconds(Response(status=429, headers=headers), now) == expected


# Undocumented statuses


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_with_location_is_unexpected(status: int) -> None:
    response = Response(status=status, headers={"Location": "https://elsewhere.test/v1/x"})
    for parse, operation, _ in PARSERS.values():
        with pytest.raises(UnexpectedResponseError) as info:
            parse(response)
        exc = info.value
        assert exc.status == status
        assert exc.operation == operation.name
        assert "redirect to https://elsewhere.test/v1/x" in str(exc)
        assert "base_url" in str(exc)
        assert str(exc).startswith(f"{operation.name} failed: ")


@pytest.mark.parametrize("status", [300, 304, 399])
def test_redirect_without_location_is_unexpected(status: int) -> None:
    exc = api.error_for_response(api.GET_TASK_RUN, Response(status=status))
    assert type(exc) is UnexpectedResponseError
    assert str(exc) == (
        "get task run failed: unexpected redirect; redirects are not followed, "
        f"check base_url (HTTP {status})"
    )


@pytest.mark.parametrize(
    ("parse", "status", "expected"),
    [
        (api.parse_start_task, 200, 202),
        (api.parse_start_task, 201, 202),
        (api.parse_start_task, 204, 202),
        (api.parse_get_task_run, 204, 200),
        (api.parse_get_task_run, 202, 200),
        (api.parse_get_task_run, 201, 200),
        (api.parse_cancel_task_run, 200, 204),
        (api.parse_cancel_task_run, 202, 204),
        (api.parse_list_task_runs, 206, 200),
        (api.parse_list_tasks, 204, 200),
        (api.parse_get_task, 203, 200),
        (api.check_task_run_events, 204, 200),
        (api.check_task_run_events, 101, 200),
    ],
)
def test_unexpected_2xx_raises(
    parse: Callable[[Response], object], status: int, expected: int
) -> None:
    with pytest.raises(
        UnexpectedResponseError, match=rf"unexpected status {status} \(expected {expected}\)"
    ):
        parse(ok(status, TASK_RUN_JSON))


@pytest.mark.parametrize("status", [0, 1, 99, 100, 199, 600, 999, -1])
def test_impossible_statuses_raise_unexpected(status: int) -> None:
    for parse, operation, _ in PARSERS.values():
        with pytest.raises(UnexpectedResponseError) as info:
            parse(ok(status, ERROR_JSON))
        assert info.value.status == status
        assert info.value.operation == operation.name


def test_error_for_response_with_a_plain_operation_name() -> None:
    exc = api.error_for_response("custom op", Response(status=201))
    assert type(exc) is UnexpectedResponseError
    assert str(exc) == "custom op failed: unexpected status 201 (HTTP 201)"
    missing = api.error_for_response("custom op", ok(404, {"message": "gone"}))
    assert type(missing) is NotFoundError
    assert str(missing) == "custom op failed: gone (HTTP 404)"


# Success statuses with bodies that are not what they should be

BODY_PARSERS = [
    (api.parse_start_task, api.START_TASK),
    (api.parse_get_task_run, api.GET_TASK_RUN),
    (api.parse_list_task_runs, api.LIST_TASK_RUNS),
    (api.parse_list_tasks, api.LIST_TASKS),
    (api.parse_get_task, api.GET_TASK),
]
ALL_OPS = frozenset(op.name for _, op in BODY_PARSERS)
LIST_OPS = frozenset({"list task runs", "list tasks"})
# A JSON object is never a page, so the list operations reject every object body.
RUN_OPS = frozenset({"start task", "get task run"}) | LIST_OPS
DETAILS_OPS = frozenset({"get task run"}) | LIST_OPS
TASK_OPS = frozenset({"get task"}) | RUN_OPS

# (body, the operations that must reject it); every other operation must parse it.
BAD_SUCCESS_BODIES: list[tuple[bytes, frozenset[str]]] = [
    (b"", ALL_OPS),
    (b"not json", ALL_OPS),
    (b"<html>oops</html>", ALL_OPS),
    (b"\xff\xfe\x00", ALL_OPS),
    (b"[" * 100_000, ALL_OPS),
    (b"5", ALL_OPS),
    (b'"text"', ALL_OPS),
    (b"{}", ALL_OPS),
    (b"[]", ALL_OPS - LIST_OPS),
    (b'{"status": "running"}', ALL_OPS),
    (b'{"id": ["x"], "status": "running"}', ALL_OPS),
    (b'{"taskRun": {"id": "x", "status": "running"}, "cursor": "c"}', ALL_OPS),
    (b'[{"taskRun": 1, "cursor": "c"}]', ALL_OPS),
    (b'[{"cursor": "c"}]', ALL_OPS),
    (b'[{"task": {"name": "x"}, "cursor": "c"}]', ALL_OPS),
    (b'[{"taskRun": {"id": "x"}, "cursor": "c"}]', ALL_OPS),
    (b'{"id": "trn-1"}', RUN_OPS),
    (b'{"id": "trn-1", "status": 3}', RUN_OPS),
    (b'{"id": "trn-1", "status": null}', RUN_OPS),
    (b'{"id": "trn-1", "status": "running", "attempts": "many"}', RUN_OPS),
    (b'{"id": "trn-1", "status": "running", "attempts": [{"attempt": 0}]}', RUN_OPS),
    (b'{"id": "trn-1", "status": "running", "startedAt": "yesterday"}', RUN_OPS),
    (b'{"id": "trn-1", "status": "running", "retries": "two"}', RUN_OPS),
    (b'{"id": "trn-1", "status": "running", "input": 5}', DETAILS_OPS),
    (b'{"id": "trn-1", "status": "running", "results": {"a": 1}}', DETAILS_OPS),
    (b'{"id": "tsk-1", "createdAt": "2026-13-45T00:00:00Z"}', TASK_OPS),
    (b'{"id": "tsk-1", "name": ["x"]}', TASK_OPS),
]


def _parse_or_unexpected(
    parse: Callable[[Response], object], operation: api.Operation, raw: bytes
) -> object:
    """The parsed value, or the UnexpectedResponseError (checked) that replaced it."""
    try:
        return parse(Response(status=operation.success, body=raw))
    except UnexpectedResponseError as exc:
        error = exc
    assert error.operation == operation.name
    assert error.status == operation.success
    assert str(error).startswith(f"{operation.name} failed: ")
    return error


@pytest.mark.parametrize(("raw", "rejected_by"), BAD_SUCCESS_BODIES)
def test_malformed_success_bodies_raise_unexpected(raw: bytes, rejected_by: frozenset[str]) -> None:
    for parse, op in BODY_PARSERS:
        outcome = _parse_or_unexpected(parse, op, raw)
        rejected = isinstance(outcome, UnexpectedResponseError)
        assert rejected == (op.name in rejected_by), (op.name, raw, outcome)


def test_null_page_is_empty_or_unexpected() -> None:
    # The codec may read a null array as empty (its tolerant-reader rule); either
    # way it is never a crash, and a null object is always refused.
    for parse, op in BODY_PARSERS:
        outcome = _parse_or_unexpected(parse, op, b"null")
        if op.name in LIST_OPS:
            assert outcome == [] or isinstance(outcome, UnexpectedResponseError)
        else:
            assert isinstance(outcome, UnexpectedResponseError)


def test_non_json_success_body_message() -> None:
    with pytest.raises(UnexpectedResponseError) as info:
        api.parse_get_task_run(Response(status=200, body=b"<html>maintenance</html>"))
    assert str(info.value) == (
        "get task run failed: server returned a non-JSON response: "
        "<html>maintenance</html> (HTTP 200)"
    )
    assert info.value.__cause__ is None


def test_malformed_success_body_names_the_problem() -> None:
    with pytest.raises(
        UnexpectedResponseError, match=r"^start task failed: malformed response: .*status"
    ):
        api.parse_start_task(ok(202, {"id": "trn-1"}))


@PROPERTY_SETTINGS
@given(st.binary(max_size=200))
def test_any_success_bytes_parse_or_raise_unexpected(raw: bytes) -> None:
    for parse, op in BODY_PARSERS:
        _parse_or_unexpected(parse, op, raw)


@PROPERTY_SETTINGS
@given(JSON_VALUES)
def test_any_success_json_parses_or_raises_unexpected(document: object) -> None:
    raw = json.dumps(document).encode()
    for parse, op in BODY_PARSERS:
        _parse_or_unexpected(parse, op, raw)


ANY_HEADERS = st.lists(
    st.tuples(
        st.sampled_from(["Retry-After", "Date", "X-Request-Id", "Location", "Content-Type"]),
        st.text(max_size=40),
    ),
    max_size=4,
)


@PROPERTY_SETTINGS
@given(
    status=st.integers(min_value=-5, max_value=1000),
    headers=ANY_HEADERS,
    raw=st.binary(max_size=100) | JSON_VALUES.map(lambda v: json.dumps(v).encode()),
)
def test_error_for_response_never_fails(
    status: int, headers: list[tuple[str, str]], raw: bytes
) -> None:
    for _, operation, _ in PARSERS.values():
        exc = api.error_for_response(operation, Response(status=status, headers=headers, body=raw))
        assert isinstance(exc, RenderError)
        assert exc.status == status
        assert exc.operation == operation.name
        assert str(exc).startswith(f"{operation.name} failed: ")
        if 400 <= status <= 599:
            assert isinstance(exc, ClientError if status < 500 else ServerError)
        else:
            assert type(exc) is UnexpectedResponseError
        if isinstance(exc, RateLimitError):
            assert exc.retry_after is None or exc.retry_after >= 0


# ---------------------------------------------------------------------------
# Event stream


@pytest.mark.parametrize(
    "name",
    ["task.completed", "task.failed", "task.canceled", "task.succeeded", "task.running", "message"],
)
def test_task_events_parse_to_details(name: str) -> None:
    event = ServerSentEvent(event=name, data=json.dumps(FAILED_DETAILS_JSON), id="7")
    details = api.parse_task_run_event(event)
    assert isinstance(details, models.TaskRunDetails)
    assert details.id == RUN_ID
    assert details.status is models.TaskRunStatus.FAILED
    assert details.error == "division by zero"


def test_event_name_is_advisory() -> None:
    # The dev server names every terminal event task.completed; status decides.
    canceled = {**COMPLETED_DETAILS_JSON, "status": "canceled", "results": None}
    details = api.parse_task_run_event(
        ServerSentEvent(event="task.completed", data=json.dumps(canceled))
    )
    assert details is not None
    assert details.status is models.TaskRunStatus.CANCELED


@pytest.mark.parametrize(
    "name", ["ping", "log", "error", "", "tasks", "Task.completed", "heartbeat"]
)
def test_non_task_events_are_ignored(name: str) -> None:
    event = ServerSentEvent(event=name, data=json.dumps(FAILED_DETAILS_JSON))
    assert api.parse_task_run_event(event) is None
    assert api.parse_task_run_event(ServerSentEvent(event=name, data="not json")) is None


@pytest.mark.parametrize("name", ["task.completed", "message"])
def test_task_event_without_data_is_ignored(name: str) -> None:
    assert api.parse_task_run_event(ServerSentEvent(event=name, data="")) is None


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("not json", "non-JSON data"),
        ("{", "non-JSON data"),
        (" ", "non-JSON data"),
        ("[" * 100_000, "non-JSON data"),
        ('{"foo": 1}', "is not a task run"),
        ("[1, 2]", "is not a task run"),
        ("null", "is not a task run"),
        ('{"id": "trn-1", "status": "failed", "attempts": [{"attempt": 0}]}', "is not a task run"),
    ],
)
def test_bad_task_event_data_raises(data: str, match: str) -> None:
    with pytest.raises(UnexpectedResponseError, match=match) as info:
        api.parse_task_run_event(ServerSentEvent(event="task.completed", data=data))
    assert info.value.operation == "task run events"
    assert str(info.value).startswith("task run events failed: event 'task.completed'")


def test_huge_bad_event_data_is_quoted_in_part() -> None:
    with pytest.raises(UnexpectedResponseError) as info:
        api.parse_task_run_event(ServerSentEvent(event="task.failed", data="x" * 10_000))
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ClientError),
        (401, ClientError),
        (403, ClientError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (204, UnexpectedResponseError),
        (301, UnexpectedResponseError),
    ],
)
def test_check_task_run_events_maps_errors(status: int, cls: type[RenderError]) -> None:
    response = Response(status=status, headers={"Retry-After": "3"}, body=b"stream refused")
    with pytest.raises(RenderError) as info:
        api.check_task_run_events(response)
    assert type(info.value) is cls
    assert info.value.operation == "task run events"
    if isinstance(info.value, RateLimitError):
        assert info.value.retry_after == 3.0


# ---------------------------------------------------------------------------
# The transport seam values (render_core.http)


def test_headers_normalisation_and_lookup() -> None:
    assert normalize_headers(None) == ()
    assert normalize_headers({"A": "1", "b": "2"}) == (("A", "1"), ("b", "2"))
    assert normalize_headers([("A", "1"), ("A", "2")]) == (("A", "1"), ("A", "2"))
    assert normalize_headers(wrong(iter([("n", 5)]))) == (("n", "5"),)
    headers = normalize_headers([("Set-Cookie", "a"), ("set-cookie", "b")])
    assert header_value(headers, "SET-COOKIE") == "a"
    assert header_value(headers, "missing") is None
    assert header_value((), "x") is None


def test_request_and_response_values() -> None:
    request = Request(method="GET", url="http://x/v1", headers={"Accept": "a/b"})
    assert request.headers == (("Accept", "a/b"),)
    assert request.header("accept") == "a/b"
    assert request.header("Other") is None
    assert (request.body, request.stream) == (b"", False)
    response = Response(status=200, headers=[("Content-Type", "text/plain")])
    assert response.header("content-type") == "text/plain"
    assert response.header("Date") is None
    assert response.body == b""
    assert Response(status=204) == Response(status=204, headers=None, body=b"")


@pytest.mark.parametrize("value", ["1\r\nX-Evil: 1", "1\n", "1\x00"])
def test_last_event_id_cannot_inject_headers(value: str) -> None:
    with pytest.raises(ValidationError, match="last_event_id"):
        api.build_task_run_events(AUTHED, [RUN_ID], last_event_id=value)


def test_request_repr_never_shows_the_token() -> None:
    request = api.build_get_task_run(AUTHED, RUN_ID)
    assert TOKEN not in repr(request)
    assert "<redacted>" in repr(request)
    assert request.header("Authorization") == f"Bearer {TOKEN}"


def test_a_token_a_header_cannot_carry_is_a_clear_error() -> None:
    config = ClientConfig(base_url="https://api.example.test", token="rnd_abc123…", user_agent=UA)
    with pytest.raises(ConfigurationError, match="copied whole") as info:
        api.build_get_task_run(config, RUN_ID)
    assert "rnd_abc" not in str(info.value)


def test_lone_surrogates_are_escaped_not_an_encoding_crash() -> None:
    request = api.build_start_task(AUTHED, "wf/t", ["\ud800"])
    assert json.loads(request.body)["input"] == ["\ud800"]
