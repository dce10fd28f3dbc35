"""``GET /v1/logs``: the request builder and the page parser (render_core.api).

Golden URLs for Render's log API and for the dev servers (which read other query
names); the parser against our dev server's bodies, the
official dev server's (``labels: null``, empty ids, Go zero times) and bodies that
are not a page of logs at all. Pure functions: no mocks, no clock, no network.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from render_core import api
from render_core.config import ClientConfig
from render_core.errors import (
    ClientError,
    NotFoundError,
    UnexpectedResponseError,
    ValidationError,
)
from render_core.http import Response

UA = "render-sdk-python/9.9.9 (cpython/3.12.3; linux/x86_64)"
TOKEN = "rnd_GOLDEN_token"
AUTHED = ClientConfig(base_url="https://api.example.test", token=TOKEN, user_agent=UA)
LOCAL = ClientConfig(base_url="http://localhost:8120", local_dev=True, user_agent=UA)
T0 = dt.datetime(2026, 8, 20, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


def _query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def _ok(document: Any) -> Response:
    return Response(
        status=200,
        headers=[("Content-Type", "application/json")],
        body=json.dumps(document).encode(),
    )


# ---------------------------------------------------------------------------
# Building


def test_cloud_request_names_runs_with_repeated_task_run_keys() -> None:
    request = api.build_list_logs(
        AUTHED,
        ["trn-a", "trn-b"],
        owner_id="tea-1",
        start_time=T0,
        end_time=T0.astimezone(PLUS_TWO),
        text=["needle", "hay"],
        direction="forward",
        limit=50,
    )
    assert request.method == "GET"
    assert request.url.startswith("https://api.example.test/v1/logs?")
    assert _query(request.url) == [
        ("ownerId", "tea-1"),
        ("taskRun", "trn-a"),
        ("taskRun", "trn-b"),
        ("startTime", "2026-08-20T12:00:00.123456Z"),
        ("endTime", "2026-08-20T14:00:00.123456+02:00"),
        ("text", "needle"),
        ("text", "hay"),
        ("direction", "forward"),
        ("limit", "50"),
    ]
    assert request.header("Authorization") == f"Bearer {TOKEN}"
    assert request.header("Accept") == "application/json"
    assert not request.stream


def test_local_request_also_sends_the_dev_servers_name() -> None:
    request = api.build_list_logs(LOCAL, ["trn-a", "trn-b"], text="one")
    assert request.url.startswith("http://localhost:8120/v1/logs?")
    assert _query(request.url) == [
        ("taskRun", "trn-a"),
        ("taskRun", "trn-b"),
        ("taskRunID", "trn-a,trn-b"),
        ("text", "one"),
    ]
    assert request.header("Authorization") is None


def test_run_ids_are_encoded_as_query_values() -> None:
    request = api.build_list_logs(AUTHED, ["trn-a&limit=1"])
    assert _query(request.url) == [("taskRun", "trn-a&limit=1")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task_run_ids": "trn-a"}, "not a single string"),
        ({"task_run_ids": []}, "at least one task run"),
        ({"task_run_ids": ["trn-a", ""]}, "task_run_ids[1] must not be empty"),
        ({"task_run_ids": [None]}, "task_run_ids[0] must be a str"),
        ({"start_time": dt.datetime(2026, 1, 1)}, "start_time must be a timezone-aware"),
        ({"end_time": "2026-01-01T00:00:00Z"}, "end_time must be a timezone-aware"),
        ({"direction": "sideways"}, "direction must be 'forward' or 'backward'"),
        ({"limit": 0}, "limit must be a positive int"),
        ({"limit": True}, "limit must be a positive int"),
        ({"owner_id": ""}, "owner_id must not be empty"),
        ({"text": [""]}, "text must not be empty"),
    ],
)
def test_bad_arguments_are_refused_before_sending(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("task_run_ids", ["trn-a"])
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        api.build_list_logs(AUTHED, **kwargs)


# ---------------------------------------------------------------------------
# Parsing


# What the dev server answers, key order included.
OUR_PAGE = {
    "logs": [
        {
            "id": "7",
            "labels": [
                {"name": "taskRun", "value": "trn-a"},
                {"name": "stream", "value": "stderr"},
            ],
            "message": "hello",
            "timestamp": "2026-08-20T12:00:00.123456Z",
        }
    ],
    "hasMore": True,
    "nextStartTime": "2026-08-20T12:00:00.123456Z",
}


def test_parses_our_dev_servers_page() -> None:
    page = api.parse_list_logs(_ok(OUR_PAGE))
    assert page.has_more is True
    assert page.next_start_time == T0
    assert page.next_end_time is None
    (entry,) = page.logs
    assert entry == api.LogEntry(
        id="7",
        message="hello",
        timestamp=T0,
        labels={"taskRun": "trn-a", "stream": "stderr"},
    )
    assert entry.task_run_id == "trn-a"
    assert entry.stream == "stderr"


def test_the_dev_servers_page_is_written_by_the_same_definition() -> None:
    page = api.log_page_from_json(OUR_PAGE)
    assert json.dumps(api.log_page_json(page)) == json.dumps(OUR_PAGE)
    # No lines: an empty list and a null start time, as the dev server has always sent.
    assert json.dumps(api.log_page_json(api.LogPage())) == (
        '{"logs": [], "hasMore": false, "nextStartTime": null}'
    )
    # An end time (Render sends one) is written only when set, and read back.
    later = api.LogPage(next_start_time=T0, next_end_time=T0.astimezone(PLUS_TWO))
    assert api.log_page_from_json(api.log_page_json(later)) == later


def test_parses_the_official_dev_servers_page() -> None:
    page = api.parse_list_logs(
        _ok(
            {
                "logs": [
                    {
                        "id": "",
                        "labels": None,
                        "message": "chunk\n",
                        "timestamp": "2026-08-20T14:00:00.123456789+02:00",
                    }
                ],
                "hasMore": False,
                "nextEndTime": "0001-01-01T00:00:00Z",
                "nextStartTime": "0001-01-01T00:00:00Z",
            }
        )
    )
    assert page.next_start_time is None
    assert page.next_end_time is None
    (entry,) = page.logs
    assert entry == api.LogEntry(id="", message="chunk\n", timestamp=T0, labels={})
    assert entry.task_run_id is None
    assert entry.stream is None


def test_tolerates_missing_and_null_fields() -> None:
    page = api.parse_list_logs(_ok({"logs": None}))
    assert page == api.LogPage()
    page = api.parse_list_logs(
        _ok({"logs": [{"id": 3, "message": None, "labels": [{"name": "x"}, "junk"]}]})
    )
    assert page.logs == [api.LogEntry(id="3", message="", labels={"x": ""})]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>busy</html>", "not JSON"),
        (b"[]", "expected an object"),
        (b'{"logs": {}}', "'logs' must be a list"),
        (b'{"logs": [], "hasMore": "yes"}', "'hasMore' must be a boolean"),
        (b'{"logs": ["line"]}', r"logs\[0\] must be an object"),
        (b'{"logs": [{"message": 5}]}', r"logs\[0\].message must be a string"),
        (b'{"logs": [{"labels": {"a": "b"}}]}', r"logs\[0\].labels must be a list"),
        (b'{"logs": [{"timestamp": "yesterday"}]}', "not an RFC 3339 timestamp"),
        (b'{"logs": [], "nextStartTime": 5}', "nextStartTime"),
    ],
)
def test_a_body_that_is_not_a_page_of_logs_is_an_error(body: bytes, problem: str) -> None:
    with pytest.raises(UnexpectedResponseError, match=problem) as info:
        api.parse_list_logs(Response(status=200, body=body))
    assert info.value.operation == "list logs"


def test_error_statuses_map_like_every_operation() -> None:
    missing = Response(status=404, body=b'{"message": "not found: GET /v1/logs"}')
    with pytest.raises(NotFoundError, match="list logs failed: not found"):
        api.parse_list_logs(missing)
    bad = Response(status=400, body=b'{"message": "ownerId: required"}')
    with pytest.raises(ClientError, match="ownerId: required") as info:
        api.parse_list_logs(bad)
    assert info.value.status == 400
    with pytest.raises(UnexpectedResponseError, match="expected 200"):
        api.parse_list_logs(Response(status=204))
