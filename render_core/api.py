"""REST operations: build a :class:`Request`, parse a :class:`Response`.

Each REST operation has a builder ``build_<op>(config, ...) -> Request``
and a parser ``parse_<op>(response) -> model``. Builders validate arguments
before anything is sent (a bad argument raises :class:`ValidationError` naming
it); parsers accept exactly the documented success status and map everything
else through :func:`error_for_response` (with the official client's gaps fixed:
non-JSON bodies still map by status, redirects and undocumented 2xx codes raise
instead of returning nothing).

Nothing here performs I/O or retries; see :mod:`render_core.flows` for the
generators that combine these with the retry rules of :mod:`render_core.backoff`.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlencode

import attrs

from render_core import codec, models
from render_core.backoff import parse_http_date, parse_retry_after
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
from render_core.http import Request, Response
from render_core.sse import ServerSentEvent

__all__ = [
    "CANCEL_TASK_RUN",
    "GET_TASK",
    "GET_TASK_RUN",
    "LIST_LOGS",
    "LIST_TASKS",
    "LIST_TASK_RUNS",
    "START_TASK",
    "TASK_RUN_EVENTS",
    "LogEntry",
    "LogPage",
    "Operation",
    "build_cancel_task_run",
    "build_get_task",
    "build_get_task_run",
    "build_list_logs",
    "build_list_task_runs",
    "build_list_tasks",
    "build_start_task",
    "build_task_run_events",
    "encode_json",
    "error_for_response",
    "log_page_from_json",
    "log_page_json",
    "parse_cancel_task_run",
    "parse_get_task",
    "parse_get_task_run",
    "parse_list_logs",
    "parse_list_task_runs",
    "parse_list_tasks",
    "parse_start_task",
    "parse_task_run_event",
    "check_task_run_events",
    "retry_after_seconds",
]

T = TypeVar("T")


@attrs.frozen
class Operation:
    """One REST endpoint: its human name (used in messages), method and success code."""

    name: str
    method: str
    success: int


START_TASK: Final = Operation("start task", "POST", 202)
GET_TASK_RUN: Final = Operation("get task run", "GET", 200)
LIST_TASK_RUNS: Final = Operation("list task runs", "GET", 200)
CANCEL_TASK_RUN: Final = Operation("cancel task run", "DELETE", 204)
TASK_RUN_EVENTS: Final = Operation("task run events", "GET", 200)
LIST_TASKS: Final = Operation("list tasks", "GET", 200)
GET_TASK: Final = Operation("get task", "GET", 200)
LIST_LOGS: Final = Operation("list logs", "GET", 200)

# A dev-only request header of ``POST /v1/task-runs``: the run being started re-runs
# the run it names. The local dev server records the link for its dashboard; the
# request body (the wire shape) is unchanged, and other servers ignore the header.
DEV_RERUN_HEADER: Final = "Render-Dev-Rerun-Of"

# Event names the official clients treat as terminal; the name is advisory and
# ``data.status`` decides, but other event types are not task runs.
_TASK_EVENT_PREFIX = "task."
# How much of a non-JSON error body to quote in an exception message.
_BODY_EXCERPT = 200


# ---------------------------------------------------------------------------
# Request building


def encode_json(value: Any, what: str) -> bytes:
    """Compact UTF-8 JSON; refuses NaN/Infinity and non-serialisable values up front."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate: valid in a Python str, not in UTF-8; JSON escapes it.
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise ValidationError(f"{what} is nested too deeply to encode as JSON") from None


def _headers(
    config: ClientConfig, *, body: bool = False, accept: str = "application/json"
) -> list[tuple[str, str]]:
    headers = [("User-Agent", config.user_agent), ("Accept", accept)]
    if body:
        headers.append(("Content-Type", "application/json"))
    if config.token:
        if not (config.token.isascii() and config.token.isprintable()):
            # Caught here rather than as an encoding error deep inside an HTTP library.
            raise ConfigurationError(
                "the API token has characters an HTTP header cannot carry; "
                "check that it was copied whole (no ellipsis or smart quotes)"
            )
        headers.append(("Authorization", f"Bearer {config.token}"))
    return headers


def _require_id(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(f"{name} must not be empty")
    return value


def _path_segment(value: str, name: str) -> str:
    # safe="" so that "/", "?" and "#" can never change the route. A segment that
    # is exactly "." or ".." is a dot-segment: HTTP clients (urllib3, yarl) remove
    # it, even percent-encoded, turning DELETE /task-runs/.. into DELETE /v1/.
    if value in (".", ".."):
        raise ValidationError(f"{name} must not be {value!r}")
    return quote(value, safe="")


def _url(config: ClientConfig, path: str, query: Sequence[tuple[str, str]] = ()) -> str:
    url = config.api_url + path
    if query:
        url += "?" + urlencode(query)
    return url


def _input_payload(input_data: object) -> list[Any] | dict[str, Any]:
    if isinstance(input_data, list | tuple):
        return list(input_data)
    if isinstance(input_data, dict):
        for key in input_data:
            if not isinstance(key, str):
                raise ValidationError(f"input_data keys must be parameter names (str), got {key!r}")
        return input_data
    if input_data is None:
        raise ValidationError("input_data is required: pass [] for a task that takes no arguments")
    raise ValidationError(
        "input_data must be a list (positional arguments) or a dict (named arguments), "
        f"got {type(input_data).__name__}"
    )


def build_start_task(
    config: ClientConfig,
    task_identifier: str,
    input_data: Sequence[Any] | dict[str, Any],
    *,
    idempotency_key: str | None = None,
) -> Request:
    """``POST /v1/task-runs``; with ``idempotencyKey`` when given."""
    task = _require_id(task_identifier, "task_identifier")
    if task != task.strip():
        raise ValidationError(f"task_identifier has surrounding whitespace: {task!r}")
    payload: dict[str, Any] = {"task": task, "input": _input_payload(input_data)}
    if idempotency_key is not None:
        payload["idempotencyKey"] = _require_id(idempotency_key, "idempotency_key")
    return Request(
        method=START_TASK.method,
        url=_url(config, "/task-runs"),
        headers=_headers(config, body=True),
        body=encode_json(payload, "input_data"),
    )


def _task_run_request(config: ClientConfig, method: str, task_run_id: str) -> Request:
    run_id = _require_id(task_run_id, "task_run_id")
    return Request(
        method=method,
        url=_url(config, "/task-runs/" + _path_segment(run_id, "task_run_id")),
        headers=_headers(config),
    )


def build_get_task_run(config: ClientConfig, task_run_id: str) -> Request:
    """``GET /v1/task-runs/{taskRunId}``."""
    return _task_run_request(config, "GET", task_run_id)


def build_cancel_task_run(config: ClientConfig, task_run_id: str) -> Request:
    """``DELETE /v1/task-runs/{taskRunId}``."""
    return _task_run_request(config, "DELETE", task_run_id)


def _paging(limit: int | None, cursor: str | None) -> list[tuple[str, str]]:
    query: list[tuple[str, str]] = []
    if cursor is not None:
        query.append(("cursor", cursor))
    if limit is not None:
        query.append(("limit", str(limit)))
    return query


# The query names of the list filters, in the order they are sent (arrays are
# repeated keys, key=a&key=b, as the official clients send them).
_TASK_RUN_FILTERS = (
    ("taskSlug", "task_slug"),
    ("rootTaskRunId", "root_task_run_id"),
    ("ownerId", "owner_id"),
    ("workflowVersionId", "workflow_version_id"),
    ("workflowId", "workflow_id"),
)
_TASK_FILTERS = (
    ("ownerId", "owner_id"),
    ("taskSlug", "task_slug"),
    ("workflowVersionId", "workflow_version_id"),
    ("workflowId", "workflow_id"),
)
_ListParams = TypeVar("_ListParams", models.ListTaskRunsParams, models.ListTasksParams)


def _build_list(
    config: ClientConfig,
    path: str,
    params: _ListParams | None,
    kind: type[_ListParams],
    filters: Sequence[tuple[str, str]],
) -> Request:
    params = params if params is not None else kind()
    if not isinstance(params, kind):
        raise ValidationError(f"params must be {kind.__name__}, got {type(params).__name__}")
    query = _paging(params.limit, params.cursor)
    for key, attribute in filters:
        values: tuple[str, ...] | None = getattr(params, attribute)
        if values:
            query.extend((key, value) for value in values)
    return Request(method="GET", url=_url(config, path, query), headers=_headers(config))


def build_list_task_runs(
    config: ClientConfig, params: models.ListTaskRunsParams | None = None
) -> Request:
    """``GET /v1/task-runs`` with its filters (unset ones omitted)."""
    return _build_list(config, "/task-runs", params, models.ListTaskRunsParams, _TASK_RUN_FILTERS)


def build_list_tasks(config: ClientConfig, params: models.ListTasksParams | None = None) -> Request:
    """``GET /v1/tasks``."""
    return _build_list(config, "/tasks", params, models.ListTasksParams, _TASK_FILTERS)


def build_get_task(config: ClientConfig, task_id: str) -> Request:
    """``GET /v1/tasks/{taskId}``."""
    ident = _require_id(task_id, "task_id")
    return Request(
        method="GET",
        url=_url(config, "/tasks/" + _path_segment(ident, "task_id")),
        headers=_headers(config),
    )


def build_task_run_events(
    config: ClientConfig, task_run_ids: Iterable[str], *, last_event_id: str | None = None
) -> Request:
    """``GET /v1/task-runs/events?taskRunIds=a&taskRunIds=b`` as a streamed request.

    ``last_event_id`` (from the previous connection's decoder) is sent as
    ``Last-Event-ID`` so the server can resume where the stream broke.
    """
    if isinstance(task_run_ids, str | bytes):
        raise ValidationError("task_run_ids must be a list of run ids, not a single string")
    if not isinstance(task_run_ids, Iterable):
        raise ValidationError(
            f"task_run_ids must be a list of run ids, got {type(task_run_ids).__name__}"
        )
    ids = [
        _require_id(run_id, f"task_run_ids[{index}]") for index, run_id in enumerate(task_run_ids)
    ]
    if not ids:
        raise ValidationError("task_run_ids must name at least one task run")
    headers = _headers(config, accept="text/event-stream")
    headers.append(("Cache-Control", "no-cache"))
    if last_event_id:
        if any(ch in last_event_id for ch in "\r\n\x00"):
            raise ValidationError("last_event_id must not contain CR, LF or NUL")
        headers.append(("Last-Event-ID", last_event_id))
    query = [("taskRunIds", run_id) for run_id in ids]
    return Request(
        method="GET", url=_url(config, "/task-runs/events", query), headers=headers, stream=True
    )


# ---------------------------------------------------------------------------
# Response parsing


def _decode_json(response: Response) -> Any:
    return json.loads(response.body.decode("utf-8"))


def _excerpt(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if len(text) > _BODY_EXCERPT:
        text = text[:_BODY_EXCERPT] + "..."
    return text


def _error_fields(response: Response) -> tuple[str, str | None]:
    """The server's message and error id, from a JSON body or the raw text."""
    request_id = response.header("X-Request-Id") or response.header("Render-Request-Id") or None
    is_json = True
    try:
        document = _decode_json(response)
    except (UnicodeDecodeError, ValueError, RecursionError):
        document, is_json = None, False
    if isinstance(document, dict):
        error = codec.structure(document, models.Error) if _is_error_shape(document) else None
        message = error.message if error is not None and error.message else None
        if message is None and isinstance(document.get("error"), str):
            message = document["error"]
        if error is not None and error.id:
            request_id = error.id
        if message:
            return message, request_id
    text = _excerpt(response.body)
    if is_json:
        # Valid JSON without a message (``{"id": ...}``, a list...): quote it as is.
        return f"server returned no error message: {text}", request_id
    if text:
        return f"server returned a non-JSON response: {text}", request_id
    return f"HTTP {response.status} with an empty body", request_id


def _is_error_shape(document: dict[str, Any]) -> bool:
    return all(isinstance(document.get(key), str | None) for key in ("id", "message", "code"))


def error_for_response(operation: Operation | str, response: Response) -> RenderError:
    """The exception for a response that is not ``operation``'s documented success.

    429 -> :class:`RateLimitError` (with ``retry_after`` from ``Retry-After``,
    measured against the response's own ``Date`` header when it has one);
    404 -> :class:`NotFoundError`; other 4xx -> :class:`ClientError`;
    5xx -> :class:`ServerError`; anything else (1xx, 3xx, an undocumented 2xx,
    a status outside 100-599) -> :class:`UnexpectedResponseError`.
    """
    name = operation.name if isinstance(operation, Operation) else operation
    status = response.status
    if 400 <= status <= 599:
        message, request_id = _error_fields(response)
        kwargs: dict[str, Any] = {
            "operation": name,
            "status": status,
            "request_id": request_id,
        }
        if status == 429:
            return RateLimitError(message, retry_after=retry_after_seconds(response), **kwargs)
        if status == 404:
            return NotFoundError(message, **kwargs)
        if status < 500:
            return ClientError(message, **kwargs)
        return ServerError(message, **kwargs)
    if 300 <= status <= 399:
        location = response.header("Location")
        where = f" to {location}" if location else ""
        return UnexpectedResponseError(
            f"unexpected redirect{where}; redirects are not followed, check base_url",
            operation=name,
            status=status,
        )
    expected = f" (expected {operation.success})" if isinstance(operation, Operation) else ""
    return UnexpectedResponseError(
        f"unexpected status {status}{expected}", operation=name, status=status
    )


def retry_after_seconds(response: Response, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds; an HTTP-date is measured against the ``Date`` header.

    Using the server's own ``Date`` makes the result immune to clock skew between
    client and server; ``now`` (seconds since the epoch) is the fallback. A date
    with neither reference is ignored (None) rather than guessed.
    """
    header = response.header("Retry-After")
    if header is None:
        return None
    date = response.header("Date")
    # ``now`` only gives an obsolete two-digit (RFC 850) year its century; without
    # it, the Retry-After date is the best anchor for the Date header's century
    # (anchoring on the epoch would read "26" as 1926, a century of waiting).
    anchor = now if now is not None else parse_http_date(header, 0.0)
    reference = parse_http_date(date, anchor or 0.0) if date is not None else None
    if reference is None:
        reference = now
    if reference is None:
        return parse_retry_after(header, 0.0) if parse_http_date(header, 0.0) is None else None
    return parse_retry_after(header, reference)


def _expect(operation: Operation, response: Response) -> None:
    if response.status != operation.success:
        raise error_for_response(operation, response)


def _parse_body(operation: Operation, response: Response, cls: type[T]) -> T:
    _expect(operation, response)
    try:
        document = _decode_json(response)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UnexpectedResponseError(
            f"server returned a non-JSON response: {_excerpt(response.body)}",
            operation=operation.name,
            status=response.status,
        ) from None
    try:
        return codec.structure(document, cls)
    except codec.DecodeError as exc:
        raise UnexpectedResponseError(
            f"malformed response: {exc}", operation=operation.name, status=response.status
        ) from None


def parse_start_task(response: Response) -> models.TaskRun:
    """202 -> :class:`TaskRun`."""
    return _parse_body(START_TASK, response, models.TaskRun)


def parse_get_task_run(response: Response) -> models.TaskRunDetails:
    """200 -> :class:`TaskRunDetails`."""
    return _parse_body(GET_TASK_RUN, response, models.TaskRunDetails)


def parse_cancel_task_run(response: Response) -> None:
    """204 -> None."""
    _expect(CANCEL_TASK_RUN, response)


def parse_list_task_runs(response: Response) -> list[models.TaskRun]:
    """200 -> the runs of one page, each carrying its ``cursor``."""
    items = _parse_body(LIST_TASK_RUNS, response, list[models.TaskRunWithCursor])
    return [attrs.evolve(item.task_run, cursor=item.cursor) for item in items]


def parse_list_tasks(response: Response) -> list[models.Task]:
    """200 -> the tasks of one page, each carrying its ``cursor``."""
    items = _parse_body(LIST_TASKS, response, list[models.TaskWithCursor])
    return [attrs.evolve(item.task, cursor=item.cursor) for item in items]


def parse_get_task(response: Response) -> models.Task:
    """200 -> :class:`Task`."""
    return _parse_body(GET_TASK, response, models.Task)


def check_task_run_events(response: Response) -> None:
    """Check the status line of an event stream before reading its body.

    ``response.body`` holds whatever the transport read of an error body (it
    need not read more than a few KiB); a 200 body is never read here.
    """
    _expect(TASK_RUN_EVENTS, response)


def parse_task_run_event(event: ServerSentEvent) -> models.TaskRunDetails | None:
    """The run carried by one event, or None for events that are not about a run.

    Events named ``task.*`` (or unnamed) carry a ``TaskRunDetails`` JSON object;
    the name is advisory and the caller decides on ``status``. A task event
    whose data is not a valid run raises :class:`UnexpectedResponseError`, so a
    waiter can fall back to ``GET`` instead of silently waiting forever.
    """
    if not (event.event.startswith(_TASK_EVENT_PREFIX) or event.event == "message"):
        return None
    if not event.data:
        return None
    try:
        document = json.loads(event.data)
    except (ValueError, RecursionError):
        raise UnexpectedResponseError(
            f"event {event.event!r} has non-JSON data: {event.data[:_BODY_EXCERPT]!r}",
            operation=TASK_RUN_EVENTS.name,
        ) from None
    try:
        return codec.structure(document, models.TaskRunDetails)
    except codec.DecodeError as exc:
        raise UnexpectedResponseError(
            f"event {event.event!r} is not a task run: {exc}", operation=TASK_RUN_EVENTS.name
        ) from None


# ---------------------------------------------------------------------------
# Logs (Render's log API and the dev server's GET /v1/logs)
#
# The answer's document is defined once, here: ``log_page_json`` writes it (the
# dev server serves it) and ``log_page_from_json`` reads it (the clients).

_LOG_DIRECTIONS = ("forward", "backward")


@attrs.frozen(kw_only=True)
class LogEntry:
    """One line of output: ``labels`` maps label names (``taskRun``, ``stream``...) to values."""

    id: str
    message: str
    timestamp: _dt.datetime | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def task_run_id(self) -> str | None:
        return self.labels.get("taskRun")

    @property
    def stream(self) -> str | None:
        """``stdout`` or ``stderr`` on the dev server; None when the server does not say."""
        return self.labels.get("stream")


@attrs.frozen(kw_only=True)
class LogPage:
    """One page of :class:`LogEntry`; when ``has_more``, ask again from ``next_start_time``."""

    logs: list[LogEntry] = attrs.field(factory=list)
    has_more: bool = False
    next_start_time: _dt.datetime | None = None
    next_end_time: _dt.datetime | None = None


def _log_time(value: _dt.datetime | None, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, _dt.datetime) or value.utcoffset() is None:
        raise ValidationError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return codec.format_timestamp(value)


def build_list_logs(
    config: ClientConfig,
    task_run_ids: Iterable[str],
    *,
    owner_id: str | None = None,
    start_time: _dt.datetime | None = None,
    end_time: _dt.datetime | None = None,
    text: Iterable[str] | None = None,
    direction: str | None = None,
    limit: int | None = None,
) -> Request:
    """``GET /v1/logs`` for the output of the given task runs.

    Runs are named with the repeated ``taskRun`` key of Render's log API, which
    also needs ``owner_id`` (the workspace id). In local-dev mode the runs are
    sent as a ``taskRunID`` comma list as well, the name the official dev server
    reads. ``direction`` is ``"forward"`` (oldest first) or ``"backward"``.
    """
    if isinstance(task_run_ids, str | bytes):
        raise ValidationError("task_run_ids must be a list of run ids, not a single string")
    ids = [
        _require_id(run_id, f"task_run_ids[{index}]") for index, run_id in enumerate(task_run_ids)
    ]
    if not ids:
        raise ValidationError("task_run_ids must name at least one task run")
    query: list[tuple[str, str]] = []
    if owner_id is not None:
        query.append(("ownerId", _require_id(owner_id, "owner_id")))
    query.extend(("taskRun", run_id) for run_id in ids)
    if config.local_dev:
        query.append(("taskRunID", ",".join(ids)))
    for key, name, value in (
        ("startTime", "start_time", start_time),
        ("endTime", "end_time", end_time),
    ):
        formatted = _log_time(value, name)
        if formatted is not None:
            query.append((key, formatted))
    if text is not None:
        if isinstance(text, str):
            text = [text]
        query.extend(("text", _require_id(fragment, "text")) for fragment in text)
    if direction is not None:
        if direction not in _LOG_DIRECTIONS:
            raise ValidationError(f"direction must be 'forward' or 'backward', got {direction!r}")
        query.append(("direction", direction))
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(f"limit must be a positive int, got {limit!r}")
        query.append(("limit", str(limit)))
    return Request(method="GET", url=_url(config, "/logs", query), headers=_headers(config))


def _malformed_logs(problem: str) -> UnexpectedResponseError:
    return UnexpectedResponseError(
        f"malformed response: {problem}", operation=LIST_LOGS.name, status=200
    )


def _page_time(document: dict[str, Any], key: str) -> _dt.datetime | None:
    value = document.get(key)
    if value is None or value == "":
        return None
    try:
        parsed = codec.parse_timestamp(value)
    except codec.DecodeError as exc:
        raise _malformed_logs(f"{key}: {exc}") from None
    # Go's zero time (year 1) is how the official dev server says "unset".
    return None if parsed.year == 1 else parsed


def _log_labels(value: Any, index: int) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, list):
        raise _malformed_logs(f"logs[{index}].labels must be a list")
    labels: dict[str, str] = {}
    for label in value:
        if isinstance(label, dict) and isinstance(label.get("name"), str):
            labels[label["name"]] = "" if label.get("value") is None else str(label["value"])
    return labels


def _log_entry(item: Any, index: int) -> LogEntry:
    if not isinstance(item, dict):
        raise _malformed_logs(f"logs[{index}] must be an object")
    message = item.get("message")
    if message is not None and not isinstance(message, str):
        raise _malformed_logs(f"logs[{index}].message must be a string")
    ident = item.get("id")
    timestamp = _page_time(item, "timestamp") if "timestamp" in item else None
    return LogEntry(
        id="" if ident is None else str(ident),
        message=message or "",
        timestamp=timestamp,
        labels=_log_labels(item.get("labels"), index),
    )


def _time_json(value: _dt.datetime | None) -> str | None:
    return None if value is None else codec.format_timestamp(value)


def log_page_json(page: LogPage) -> dict[str, Any]:
    """The ``GET /v1/logs`` document of ``page``: ``logs`` (each with ``id``, ``labels``
    as ``{"name", "value"}`` pairs, ``message``, ``timestamp``), ``hasMore``,
    ``nextStartTime`` (null when unset) and ``nextEndTime`` when set.

    ``log_page_from_json`` reads it back into an equal page.
    """
    document: dict[str, Any] = {
        "logs": [
            {
                "id": entry.id,
                "labels": [{"name": name, "value": value} for name, value in entry.labels.items()],
                "message": entry.message,
                "timestamp": _time_json(entry.timestamp),
            }
            for entry in page.logs
        ],
        "hasMore": page.has_more,
        "nextStartTime": _time_json(page.next_start_time),
    }
    if page.next_end_time is not None:
        document["nextEndTime"] = _time_json(page.next_end_time)
    return document


def parse_list_logs(response: Response) -> LogPage:
    """200 -> :class:`LogPage` (``labels: null`` and Go's zero times are read as empty)."""
    _expect(LIST_LOGS, response)
    try:
        document = _decode_json(response)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _malformed_logs(f"not JSON: {_excerpt(response.body)}") from None
    return log_page_from_json(document)


def log_page_from_json(document: Any) -> LogPage:
    """The ``LogPage`` of a decoded ``GET /v1/logs`` document (see ``log_page_json``).

    Also reads Render's answers: ``labels: null`` and Go's zero times are read as
    empty, absent keys as their defaults. Raises UnexpectedResponseError for any
    other shape.
    """
    if not isinstance(document, dict):
        raise _malformed_logs("expected an object with a 'logs' list")
    items = document.get("logs")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise _malformed_logs("'logs' must be a list")
    has_more = document.get("hasMore", False)
    if not isinstance(has_more, bool):
        raise _malformed_logs("'hasMore' must be a boolean")
    return LogPage(
        logs=[_log_entry(item, index) for index, item in enumerate(items)],
        has_more=has_more,
        next_start_time=_page_time(document, "nextStartTime"),
        next_end_time=_page_time(document, "nextEndTime"),
    )
