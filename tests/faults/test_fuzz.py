"""Hypothesis over arbitrary bytes: only documented exceptions escape the parsers.

- the SSE decoder: :class:`ProtocolError` (a line over the limit), nothing else;
- the REST parsers (any status, any headers, any body): a :class:`RenderError`;
- the event parser (any event name and data): a :class:`RenderError`;
- the task-socket parsers, both sides: ``TaskSocketError`` on the server side (a
  4xx answer), :class:`RenderError` on the worker side.

Bodies are drawn as raw bytes and as near-valid JSON (documents with the right keys
holding wrong types), so the parsers are reached past their first check.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from render_core import api, callback, taskserver
from render_core.errors import ProtocolError, RenderError
from render_core.http import Response
from render_core.sse import ServerSentEvent, SSEDecoder
from render_core.taskserver import TaskSocketError

FUZZ = settings(max_examples=300, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
KEYS = [
    "id", "status", "taskId", "attempts", "results", "input", "error", "startedAt",
    "completedAt", "taskRun", "cursor", "task", "name", "createdAt", "logs", "hasMore",
    "task_name", "task_run_id", "still_running", "complete", "error", "output", "details",
    "tasks", "options", "retry", "parameters", "timeout_seconds", "max_retries",
]  # fmt: skip
near_valid = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8) | st.lists(
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6), max_size=3
)
bodies = st.binary(max_size=300) | near_valid.map(
    lambda doc: json.dumps(doc, allow_nan=True).encode()
)
statuses = st.sampled_from([200, 201, 202, 204, 301, 400, 401, 404, 409, 429, 500, 503, 599])
headers = st.lists(
    st.tuples(
        st.sampled_from(["Retry-After", "Content-Type", "X-Request-Id", "X-Other"]),
        st.text(max_size=30),
    ),
    max_size=3,
).map(tuple)

REST_PARSERS: list[Callable[[Response], Any]] = [
    api.parse_start_task,
    api.parse_get_task_run,
    api.parse_cancel_task_run,
    api.parse_list_task_runs,
    api.parse_list_tasks,
    api.parse_get_task,
    api.parse_list_logs,
    callback.parse_input,
    callback.parse_run_subtask,
    callback.parse_subtask_result,
]
SERVER_PARSERS: list[Callable[[bytes], Any]] = [
    taskserver.parse_register_request,
    taskserver.parse_callback_request,
    taskserver.parse_run_subtask_request,
    taskserver.parse_subtask_result_request,
]


@FUZZ
@given(chunks=st.lists(st.binary(max_size=200), max_size=20), limit=st.integers(1, 400))
def test_sse_decoder_raises_only_protocol_error(chunks: list[bytes], limit: int) -> None:
    decoder = SSEDecoder(max_line_length=limit)
    events: list[object] = []
    with contextlib.suppress(ProtocolError):  # documented: a line over the limit
        for chunk in chunks:
            events += decoder.feed(chunk)
        decoder.close()
    assert all(isinstance(event, ServerSentEvent) for event in events)


@FUZZ
@given(status=statuses, head=headers, body=bodies, parser=st.sampled_from(REST_PARSERS))
def test_rest_and_worker_side_parsers_raise_only_render_errors(
    status: int, head: tuple[tuple[str, str], ...], body: bytes, parser: Callable[..., Any]
) -> None:
    error: RenderError | None = None
    try:
        parser(Response(status=status, headers=head, body=body))
    except RenderError as exc:
        error = exc
    assert error is None or str(error)  # a message a human can act on


@FUZZ
@given(name=st.sampled_from(["task.completed", "message", "task.x", "other"]), data=bodies)
def test_event_parser_raises_only_render_errors(name: str, data: bytes) -> None:
    event = ServerSentEvent(event=name, data=data.decode("utf-8", "replace"))
    with contextlib.suppress(RenderError):
        api.parse_task_run_event(event)


@FUZZ
@given(body=bodies, parser=st.sampled_from(SERVER_PARSERS))
def test_socket_server_parsers_raise_only_4xx_request_errors(
    body: bytes, parser: Callable[[bytes], Any]
) -> None:
    error: TaskSocketError | None = None
    try:
        parser(body)
    except TaskSocketError as exc:
        error = exc
    if error is not None:
        assert 400 <= error.status <= 499
        assert error.message
