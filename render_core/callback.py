"""The task socket, the worker's half: what a task process sends, and how it reads the answers.

A task process talks to the platform (or the dev server) over HTTP/1.1 on a Unix
socket: ``GET /input``, ``POST /callback``, ``POST /register-tasks``,
``POST /run-subtask``, ``POST /get-subtask-result``. Keys are snake_case; inputs and
outputs travel as standard base64 of UTF-8 JSON (``docs/wire-protocol.md#task-socket``).

This module names those endpoints (:class:`SocketOperation`) and the payload
encoding (:func:`encode_payload`, :func:`decode_payload`), builds the worker's
requests, parses the answers, and provides the flows (generators of ``Send``/``Sleep``
effects, see :mod:`render_core.effects`) a worker runs. Each call goes through the
SDK's one retry loop with the task-socket column of the retry table
(:data:`render_core.backoff.TASK_SOCKET`), which retries transient errors as the
official worker does; a subtask's result is polled from tens of milliseconds,
backing off to a cap, and ends with an error after the limit instead of the
official worker's silent ``None``.

The server's half, which parses these requests and answers them, is
:mod:`render_core.taskserver`. It takes the endpoints and the payload encoding from
here, so the two halves cannot disagree on a path or an encoding.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, Final, TypeVar

from render_core.backoff import TASK_SOCKET, TASK_SOCKET_BACKOFF, Backoff, RandomSource
from render_core.effects import Flow, Sleep, send_with_retries
from render_core.errors import (
    ClientError,
    RateLimitError,
    RenderError,
    ServerError,
    TaskRunError,
    TimeoutError,
    UnexpectedResponseError,
)
from render_core.http import Request, Response
from render_core.values import Value, init_fields

__all__ = [
    "GET_INPUT",
    "GET_SUBTASK_RESULT",
    "POLL_BACKOFF",
    "POST_CALLBACK",
    "REGISTER_TASKS",
    "RUN_SUBTASK",
    "SUBTASK_WAIT_LIMIT",
    "SocketOperation",
    "SubtaskOutcome",
    "TaskInput",
    "build_callback_error",
    "build_callback_success",
    "build_get_input",
    "build_get_subtask_result",
    "build_input_response",
    "build_register_tasks",
    "build_run_subtask",
    "decode_payload",
    "encode_payload",
    "error_for_status",
    "get_input",
    "post_callback",
    "register_tasks",
    "run_subtask",
    "parse_input",
    "parse_run_subtask",
    "parse_subtask_result",
    "socket_call",
    "unwrap_output",
    "wait_for_subtask",
]

T = TypeVar("T")

# The host part is ignored by task-socket servers; only the path routes.
_BASE = "http://localhost"

# Subtask results: first poll after 20 ms, growing by half each time up to 1 s.
# A quick child is seen within tens of milliseconds; a long one costs one request
# a second, like the official SDK's fixed interval, instead of 1 s for every child.
POLL_BACKOFF = Backoff(base=0.02, factor=1.5, cap=1.0, max_attempts=1_000_000, jitter=False)
# The official SDK's limit (24 h), after which it returned None; we raise.
SUBTASK_WAIT_LIMIT = 24 * 3600.0


class SocketOperation(Value):
    """One task-socket endpoint; ``name`` labels errors as the official SDKs do."""

    __slots__ = ("method", "name", "path")
    name: str
    method: str
    path: str

    def __init__(self, name: str, method: str, path: str) -> None:
        init_fields(self, name=name, method=method, path=path)


GET_INPUT: Final = SocketOperation("get input", "GET", "/input")
POST_CALLBACK: Final = SocketOperation("post callback", "POST", "/callback")
REGISTER_TASKS: Final = SocketOperation("register tasks", "POST", "/register-tasks")
RUN_SUBTASK: Final = SocketOperation("run subtask", "POST", "/run-subtask")
GET_SUBTASK_RESULT: Final = SocketOperation("get task result", "POST", "/get-subtask-result")


def encode_payload(value: Any) -> str:
    """Standard base64 of compact JSON text.

    ASCII JSON (non-ASCII as ``\\u`` escapes), as the official SDKs send: a string
    holding a lone surrogate encodes too. Raises ``ValueError`` for NaN/Infinity and
    ``TypeError`` for a value JSON cannot represent.
    """
    text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_payload(data: object, what: str) -> Any:
    """The JSON value inside a base64 field; ``None``/``""`` reads as no value (None)."""
    if data is None or data == "":
        return None
    if not isinstance(data, str):
        raise ValueError(f"{what} must be a base64 string, got {type(data).__name__}")
    try:
        raw = base64.b64decode(data, validate=True)
        return json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{what} is not base64-encoded JSON: {exc}") from None


def _request(op: SocketOperation, user_agent: str, body: Any = None) -> Request:
    headers = [("User-Agent", user_agent), ("Accept", "application/json")]
    data = b""
    if body is not None:
        headers.append(("Content-Type", "application/json"))
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    return Request(method=op.method, url=_BASE + op.path, headers=headers, body=data)


def build_get_input(user_agent: str) -> Request:
    return _request(GET_INPUT, user_agent)


def build_register_tasks(payload: dict[str, Any], user_agent: str) -> Request:
    """``payload`` is :func:`render_core.tasks.registration_payload`'s result."""
    return _request(REGISTER_TASKS, user_agent, payload)


def build_callback_success(result_json: bytes, user_agent: str) -> Request:
    """``{"complete": {"output": b64([result])}}``; ``result_json`` from ``tasks.encode_result``."""
    output = base64.b64encode(result_json).decode("ascii")
    return _request(POST_CALLBACK, user_agent, {"complete": {"output": output}})


def build_callback_error(details: str, stack_trace: str | None, user_agent: str) -> Request:
    error: dict[str, Any] = {"details": details or "the task failed without a message"}
    if stack_trace:
        error["stack_trace"] = stack_trace
    return _request(POST_CALLBACK, user_agent, {"error": error})


def build_run_subtask(
    task_name: str, input_data: Any, *, idempotency_key: str, created_at: str, user_agent: str
) -> Request:
    """``POST /run-subtask`` with the key and timestamp fixed for every retry of the call."""
    body = {
        "task_name": task_name,
        "input": encode_payload([] if input_data is None else input_data),
        "idempotency_key": idempotency_key,
        "created_at": created_at,
    }
    return _request(RUN_SUBTASK, user_agent, body)


def build_get_subtask_result(task_run_id: str, user_agent: str) -> Request:
    return _request(GET_SUBTASK_RESULT, user_agent, {"task_run_id": task_run_id})


class TaskInput(Value):
    """What ``GET /input`` says to run (the ids are sent by newer servers only)."""

    __slots__ = (
        "attempt",
        "input",
        "parent_task_run_id",
        "root_task_run_id",
        "task_name",
        "task_run_id",
    )
    task_name: str
    input: Any
    task_run_id: str | None
    root_task_run_id: str | None
    parent_task_run_id: str | None
    attempt: int | None

    def __init__(
        self,
        task_name: str,
        input: Any,
        *,
        task_run_id: str | None = None,
        root_task_run_id: str | None = None,
        parent_task_run_id: str | None = None,
        attempt: int | None = None,
    ) -> None:
        init_fields(self, task_name=task_name, input=input, attempt=attempt)
        init_fields(self, task_run_id=task_run_id, root_task_run_id=root_task_run_id)
        init_fields(self, parent_task_run_id=parent_task_run_id)


def _json_object(op: SocketOperation, response: Response) -> dict[str, Any]:
    try:
        document = json.loads(response.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UnexpectedResponseError(
            f"the task socket answered with non-JSON: {response.body[:200]!r}", operation=op.name
        ) from None
    if not isinstance(document, dict):
        raise UnexpectedResponseError(
            "the task socket answered with JSON that is not an object", operation=op.name
        )
    return document


def _optional_str(document: dict[str, Any], key: str) -> str | None:
    value = document.get(key)
    return value if isinstance(value, str) and value else None


def build_input_response(
    task_name: str,
    input_value: Any,
    *,
    task_run_id: str | None = None,
    root_task_run_id: str | None = None,
    parent_task_run_id: str | None = None,
    attempt: int | None = None,
) -> bytes:
    """The ``GET /input`` body: ``{"task_name", "input": b64}`` and the ids given.

    ``input_value`` None sends ``"input": null``, which every worker reads as no
    arguments (the register-mode answer is ``build_input_response("", None)``).
    The ids and ``attempt`` are extensions 1.5.0 reads and older workers ignore.
    Raises ``ValueError``/``TypeError`` for input JSON cannot carry.
    """
    document: dict[str, Any] = {
        "task_name": task_name,
        "input": None if input_value is None else encode_payload(input_value),
    }
    for key, value in (
        ("task_run_id", task_run_id),
        ("root_task_run_id", root_task_run_id),
        ("parent_task_run_id", parent_task_run_id),
        ("attempt", attempt),
    ):
        if value is not None:
            document[key] = value
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def parse_input(response: Response) -> TaskInput:
    document = _json_object(GET_INPUT, response)
    name = document.get("task_name")
    if not isinstance(name, str) or not name:
        raise UnexpectedResponseError(
            "no task name in the input (is this process in register mode?)",
            operation=GET_INPUT.name,
        )
    try:
        value = decode_payload(document.get("input"), "the run's input")
    except ValueError as exc:
        raise UnexpectedResponseError(str(exc), operation=GET_INPUT.name) from None
    attempt = document.get("attempt")
    return TaskInput(
        task_name=name,
        input=[] if value is None else value,
        task_run_id=_optional_str(document, "task_run_id"),
        root_task_run_id=_optional_str(document, "root_task_run_id"),
        parent_task_run_id=_optional_str(document, "parent_task_run_id"),
        attempt=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
    )


def parse_run_subtask(response: Response) -> str:
    document = _json_object(RUN_SUBTASK, response)
    run_id = document.get("task_run_id")
    if not isinstance(run_id, str) or not run_id:
        raise UnexpectedResponseError("no task_run_id in the answer", operation=RUN_SUBTASK.name)
    return run_id


class SubtaskOutcome(Value):
    """One poll's answer: still running, or finished with a value or an error."""

    __slots__ = ("error", "still_running", "value")
    still_running: bool
    value: Any
    error: str | None

    def __init__(self, still_running: bool, value: Any = None, error: str | None = None) -> None:
        init_fields(self, still_running=still_running, value=value, error=error)


def unwrap_output(output: object) -> Any:
    """A child's result: exactly one level of the ``[value]`` wrapping removed.

    Workers of this SDK always send ``[value]``. Arrays of another length (from
    other SDKs) are returned whole; no output reads as None.
    """
    value = decode_payload(output, "the subtask's output")
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def parse_subtask_result(response: Response) -> SubtaskOutcome:
    document = _json_object(GET_SUBTASK_RESULT, response)
    if document.get("still_running") is True:
        return SubtaskOutcome(still_running=True)
    error = document.get("error")
    if isinstance(error, dict):
        details = error.get("details")
        return SubtaskOutcome(
            still_running=False,
            error=details if isinstance(details, str) and details else "the subtask failed",
        )
    complete = document.get("complete")
    if isinstance(complete, dict):
        try:
            value = unwrap_output(complete.get("output"))
        except ValueError as exc:
            raise UnexpectedResponseError(str(exc), operation=GET_SUBTASK_RESULT.name) from None
        return SubtaskOutcome(still_running=False, value=value)
    # Neither: the dev server's answer for a canceled child.
    return SubtaskOutcome(still_running=False, error="the subtask was canceled")


def error_for_status(op: SocketOperation, response: Response) -> RenderError:
    """HTTP errors of the task socket, classified as the official SDKs classify them."""
    message = response.body.decode("utf-8", errors="replace").strip()[:300]
    try:
        document = json.loads(response.body)
        if isinstance(document, dict):
            # The official SDKs show ``message``, else ``error``, else the raw text.
            for key in ("message", "error"):
                if isinstance(document.get(key), str) and document[key]:
                    message = document[key]
                    break
    except (ValueError, UnicodeDecodeError):
        pass
    message = message or f"HTTP {response.status}"
    if response.status == 429:
        return RateLimitError(message, operation=op.name, status=429)
    if 400 <= response.status < 500:
        return ClientError(message, operation=op.name, status=response.status)
    if response.status >= 500:
        return ServerError(message, operation=op.name, status=response.status)
    return UnexpectedResponseError(
        f"unexpected status {response.status}", operation=op.name, status=response.status
    )


def socket_call(
    op: SocketOperation,
    request: Request,
    parse: Callable[[Response], T],
    *,
    policy: Backoff = TASK_SOCKET_BACKOFF,
    rng: RandomSource | None = None,
) -> Flow[T]:
    """Send ``request`` with the official worker's transient-error retries.

    What is retried is the task-socket column of the table in
    :mod:`render_core.backoff` (5xx, 429, timeouts and connection errors; other
    4xx are final), and ``TASK_SOCKET_BACKOFF`` rides out about five minutes of
    server restarts. Every call that has side effects is safe to repeat:
    ``/run-subtask`` carries an idempotency key and servers treat ``/callback`` as
    idempotent.
    """

    def error_for(response: Response) -> RenderError | None:
        return None if 200 <= response.status < 300 else error_for_status(op, response)

    response = yield from send_with_retries(
        request, op.name, error_for, TASK_SOCKET, policy=policy, rng=rng
    )
    return parse(response)


def _ignore_body(_: Response) -> None:
    return None


def get_input(user_agent: str, **kwargs: Any) -> Flow[TaskInput]:
    return socket_call(GET_INPUT, build_get_input(user_agent), parse_input, **kwargs)


def register_tasks(payload: dict[str, Any], user_agent: str, **kwargs: Any) -> Flow[None]:
    request = build_register_tasks(payload, user_agent)
    return socket_call(REGISTER_TASKS, request, _ignore_body, **kwargs)


def post_callback(request: Request, **kwargs: Any) -> Flow[None]:
    return socket_call(POST_CALLBACK, request, _ignore_body, **kwargs)


def wait_for_subtask(
    task_run_id: str,
    user_agent: str,
    *,
    poll: Backoff = POLL_BACKOFF,
    limit: float = SUBTASK_WAIT_LIMIT,
    task_name: str | None = None,
    **kwargs: Any,
) -> Flow[Any]:
    """Poll a child until it finishes; its value, or :class:`TaskRunError`.

    The first poll goes out at once; later ones follow ``poll`` (20 ms growing to
    1 s). Waiting longer than ``limit`` seconds in total raises our
    :class:`TimeoutError` (the official SDK returned None). A failed child raises
    ``TaskRunError("Subtask failed: <details>")``, the message the official SDK uses.
    """
    request = build_get_subtask_result(task_run_id, user_agent)
    waited = 0.0
    polls = 0
    while True:
        outcome = yield from socket_call(
            GET_SUBTASK_RESULT, request, parse_subtask_result, **kwargs
        )
        if not outcome.still_running:
            if outcome.error is not None:
                raise TaskRunError(f"Subtask failed: {outcome.error}", task_run_id=task_run_id)
            return outcome.value
        delay = poll.delay(polls)
        polls += 1
        if waited + delay > limit:
            label = f"subtask {task_name!r} ({task_run_id})" if task_name else task_run_id
            raise TimeoutError(
                f"{label} did not finish within {limit:g} s", operation=GET_SUBTASK_RESULT.name
            )
        waited += delay
        yield Sleep(delay)


def run_subtask(
    task_name: str,
    input_data: Any,
    *,
    idempotency_key: str,
    created_at: str,
    user_agent: str,
    **kwargs: Any,
) -> Flow[str]:
    """Start a child run; its id. Retries reuse the same idempotency key."""
    request = build_run_subtask(
        task_name,
        input_data,
        idempotency_key=idempotency_key,
        created_at=created_at,
        user_agent=user_agent,
    )
    return socket_call(RUN_SUBTASK, request, parse_run_subtask, **kwargs)
