"""The task-socket protocol, worker side.

A task process talks to the platform (or the dev server) over HTTP/1.1 on a Unix
socket: ``GET /input``, ``POST /callback``, ``POST /register-tasks``,
``POST /run-subtask``, ``POST /get-subtask-result``. Keys are snake_case; inputs and
outputs travel as standard base64 of UTF-8 JSON.

This module builds those requests, parses the answers, and provides the flows
(generators of ``Send``/``Sleep`` effects, see :mod:`render_core.flows`) that add
the official worker's transient-error retries and subtask result polling that starts
at tens of milliseconds and backs off to a cap, ending with an error after the limit
instead of a silent ``None`` (G items 14, 18, 19).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, Final, TypeVar

from render_core.backoff import TASK_SOCKET_BACKOFF, Backoff, RandomSource
from render_core.effects import Flow, Send, Sleep
from render_core.errors import (
    ClientError,
    NetworkError,
    RateLimitError,
    RenderError,
    ServerError,
    TaskRunError,
    TimeoutError,
    UnexpectedResponseError,
    with_operation,
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
        init_fields(
            self,
            task_name=task_name,
            input=input,
            task_run_id=task_run_id,
            root_task_run_id=root_task_run_id,
            parent_task_run_id=parent_task_run_id,
            attempt=attempt,
        )


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
    """HTTP errors of the task socket, classified as the official SDKs do (D.8)."""
    message = response.body.decode("utf-8", errors="replace").strip()[:300]
    try:
        document = json.loads(response.body)
        if isinstance(document, dict):
            # D.8: the official SDKs show ``message``, else ``error``, else the raw text.
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


def _transient(error: RenderError) -> bool:
    # D.8: 5xx, 429, timeouts and connection errors are retried; other 4xx are final.
    return isinstance(error, ServerError | RateLimitError | TimeoutError | NetworkError)


def socket_call(
    op: SocketOperation,
    request: Request,
    parse: Callable[[Response], T],
    *,
    policy: Backoff = TASK_SOCKET_BACKOFF,
    rng: RandomSource | None = None,
    on_retry: Callable[[RenderError, float], None] | None = None,
) -> Flow[T]:
    """Send ``request`` with the official worker's transient-error retries.

    ``TASK_SOCKET_BACKOFF`` rides out about five minutes of server restarts. Every
    call that has side effects is safe to repeat: ``/run-subtask`` carries an
    idempotency key and servers treat ``/callback`` as idempotent.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            response = yield Send(request)
        except (NetworkError, TimeoutError) as exc:
            error: RenderError = with_operation(exc, op.name)
        else:
            if 200 <= response.status < 300:
                return parse(response)
            error = error_for_status(op, response)
        if not _transient(error) or attempt >= policy.max_attempts:
            raise error
        delay = policy.delay(attempt - 1, rng)
        if on_retry is not None:
            on_retry(error, delay)
        yield Sleep(delay)


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


# ------------------------------------------------------------------ server side
#
# The other end of the same socket: what a task-socket server (the dev server, a
# platform stand-in) parses and answers. The server reads whole
# request bodies and hands them here. Every parser returns a value or raises
# :class:`CallbackRequestError`, carrying the HTTP status and the message of the
# ``{"message": ...}`` body; for any input bytes nothing else escapes. Builders
# return the exact success bodies. Unknown keys are ignored (tolerant reader);
# ``NaN``/``Infinity``, which Python's ``json`` accepts and Go's rejects, are refused
# at the door rather than stored and failing later on the way out.

__all__ += [
    "SOCKET_ROUTES",
    "CallbackRequestError",
    "CallbackResult",
    "RegisteredRetry",
    "RegisteredTask",
    "SubtaskRequest",
    "TaskFailure",
    "build_error_response",
    "build_input_response",
    "build_run_subtask_response",
    "build_subtask_result_response",
    "match_route",
    "parse_callback_request",
    "parse_register_request",
    "parse_run_subtask_request",
    "parse_subtask_result_request",
]

# The five endpoints by path; the query string never takes part in routing (1.5.0
# sends ``GET /input?sdk_import_started_at=...``).
SOCKET_ROUTES: Final[dict[str, SocketOperation]] = {
    op.path: op
    for op in (GET_INPUT, POST_CALLBACK, REGISTER_TASKS, RUN_SUBTASK, GET_SUBTASK_RESULT)
}


class CallbackRequestError(Exception):
    """A request the task-socket server refuses: answer ``status`` with ``{"message": ...}``.

    ``status`` is a 4xx: the official workers retry 5xx for about five minutes and
    give up at once on other 4xx, and a malformed request will not get
    better by repeating it. ``allow`` names the accepted method of a 405.
    """

    def __init__(self, status: int, message: str, *, allow: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.allow = allow

    def __repr__(self) -> str:
        return f"CallbackRequestError({self.status}, {self.message!r})"


def _bad(message: str) -> CallbackRequestError:
    return CallbackRequestError(400, message)


def match_route(method: str, target: str) -> SocketOperation:
    """The endpoint for a request line; the query (and an absolute-form origin) ignored.

    Raises :class:`CallbackRequestError`: 404 for an unknown path, 405 (with
    ``allow``) for a known path asked with another method.
    """
    path = target.partition("?")[0].partition("#")[0]
    scheme, sep, rest = path.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        path = "/" + rest.partition("/")[2]
    op = SOCKET_ROUTES.get(path)
    if op is None:
        raise CallbackRequestError(404, f"no task-socket endpoint at {path!r}")
    if method != op.method:
        raise CallbackRequestError(
            405, f"{op.path} takes {op.method}, not {method}", allow=op.method
        )
    return op


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_INFINITY = float("inf")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (_INFINITY, -_INFINITY):  # 1e400 parses as inf; no JSON writes it back
        raise ValueError(f"{text} is out of range")
    return value


def _loads(raw: bytes) -> Any:
    """Strict JSON: UTF-8 only, finite numbers only. Raises ValueError naming the problem."""
    try:
        return json.loads(
            raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float
        )
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _request_object(body: bytes, endpoint: str) -> dict[str, Any]:
    try:
        document = _loads(body)
    except ValueError as exc:
        raise _bad(f"the {endpoint} body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _bad(f"the {endpoint} body must be a JSON object, not {_kind(document)}")
    return document


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _decode_strict(data: object, where: str) -> Any:
    """The JSON value of a b64 field: :func:`decode_payload` with this side's strict
    JSON rules. The caller handles an absent field."""
    if not isinstance(data, str):
        raise _bad(f"{where} must be a base64 string, not {_kind(data)}")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad(f"{where} is not standard base64: {exc}") from None
    try:
        return _loads(raw)
    except ValueError as exc:
        raise _bad(f"{where} is not base64-encoded JSON: {exc}") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_count(document: dict[str, Any], key: str, where: str) -> int | None:
    value = document.get(key)
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        raise _bad(f"{where}.{key} must be a non-negative integer, not {value!r}")
    return int(value)


def _optional_text(document: dict[str, Any], key: str, where: str) -> str | None:
    """A string field; absent, null and ``""`` all read as None."""
    value = document.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(f"{where}.{key} must be a string, not {_kind(value)}")
    return value


class RegisteredRetry(Value):
    """``options.retry`` as registered; a field the worker left out stays None.

    ``factor`` is the wire name of ``Retry.backoff_scaling``. Which defaults fill the
    gaps is the scheduler's decision (the Go dev server assumes 2.0 for ``factor``,
    the Python SDK sends 1.5).
    """

    __slots__ = ("factor", "max_retries", "wait_duration_ms")
    max_retries: int | None
    wait_duration_ms: int | None
    factor: float | None

    def __init__(
        self,
        *,
        max_retries: int | None = None,
        wait_duration_ms: int | None = None,
        factor: float | None = None,
    ) -> None:
        init_fields(self, max_retries=max_retries, wait_duration_ms=wait_duration_ms, factor=factor)


class RegisteredTask(Value):
    """One task of a ``POST /register-tasks`` body.

    ``timeout_seconds`` and ``plan`` are None when not sent (0 and ``""`` count as
    not sent, as the official SDKs omit falsy values); ``parameters`` are the
    worker's ``TaskParameter`` objects as given, unknown keys included.
    """

    __slots__ = ("name", "parameters", "plan", "retry", "timeout_seconds")
    name: str
    retry: RegisteredRetry | None
    timeout_seconds: int | None
    plan: str | None
    parameters: list[dict[str, Any]]

    def __init__(
        self,
        *,
        name: str,
        retry: RegisteredRetry | None = None,
        timeout_seconds: int | None = None,
        plan: str | None = None,
        parameters: list[dict[str, Any]] | None = None,
    ) -> None:
        init_fields(
            self,
            name=name,
            retry=retry,
            timeout_seconds=timeout_seconds,
            plan=plan,
            parameters=[] if parameters is None else parameters,
        )

    def payload(self) -> dict[str, Any]:
        """The registration in its wire shape, with only the keys that are set."""
        options: dict[str, Any] = {}
        if self.retry is not None:
            options["retry"] = {
                key: value
                for key, value in (
                    ("max_retries", self.retry.max_retries),
                    ("wait_duration_ms", self.retry.wait_duration_ms),
                    ("factor", self.retry.factor),
                )
                if value is not None
            }
        if self.timeout_seconds is not None:
            options["timeout_seconds"] = self.timeout_seconds
        if self.plan is not None:
            options["plan"] = self.plan
        item: dict[str, Any] = {"name": self.name, "options": options}
        if self.parameters:
            item["parameters"] = self.parameters
        return item


def _registered_retry(value: object, where: str) -> RegisteredRetry | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(f"{where} must be an object, not {_kind(value)}")
    factor = value.get("factor")
    if factor is not None and (
        isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 0
    ):
        raise _bad(f"{where}.factor must be a non-negative number, not {factor!r}")
    return RegisteredRetry(
        max_retries=_optional_count(value, "max_retries", where),
        wait_duration_ms=_optional_count(value, "wait_duration_ms", where),
        factor=None if factor is None else float(factor),
    )


def _registered_parameters(value: object, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(f"{where} must be an array, not {_kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise _bad(f"{where}[{index}] must be an object, not {_kind(item)}")
        if not isinstance(item.get("name"), str) or not item["name"]:
            raise _bad(f"{where}[{index}].name must be a non-empty string")
    return value


def _registered_task(value: object, where: str) -> RegisteredTask:
    if not isinstance(value, dict):
        raise _bad(f"{where} must be an object, not {_kind(value)}")
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise _bad(f"{where}.name must be a non-empty string")
    options = value.get("options")
    if options is None:
        options = {}
    elif not isinstance(options, dict):
        raise _bad(f"{where}.options must be an object, not {_kind(options)}")
    timeout = options.get("timeout_seconds")
    if timeout is not None and (not _is_int(timeout) or timeout < 0):
        raise _bad(f"{where}.options.timeout_seconds must be a positive integer, not {timeout!r}")
    return RegisteredTask(
        name=name,
        retry=_registered_retry(options.get("retry"), f"{where}.options.retry"),
        timeout_seconds=timeout or None,
        plan=_optional_text(options, "plan", f"{where}.options"),
        parameters=_registered_parameters(value.get("parameters"), f"{where}.parameters"),
    )


def parse_register_request(body: bytes) -> list[RegisteredTask]:
    """A ``POST /register-tasks`` body: ``{"tasks": [Task, ...]}``, in registration order.

    Raises :class:`CallbackRequestError` (400) naming the first problem: not a JSON
    object, ``tasks`` not an array, a task without a name, an option of the wrong type
    or negative, or the same name twice (which options would win is anyone's guess).
    """
    document = _request_object(body, "register-tasks")
    items = document.get("tasks")
    if not isinstance(items, list):
        raise _bad(f"tasks must be an array, not {_kind(items)}")
    tasks: list[RegisteredTask] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        task = _registered_task(item, f"tasks[{index}]")
        if task.name in seen:
            raise _bad(f"tasks[{index}]: task {task.name!r} is registered twice")
        seen.add(task.name)
        tasks.append(task)
    return tasks


class TaskFailure(Value):
    """``{"error": {"details", "stack_trace"?}}`` of a callback; ``details`` may be ``""``
    (0.6.1 sends ``str(exc)``, empty for a message-less exception)."""

    __slots__ = ("details", "stack_trace")
    details: str
    stack_trace: str | None

    def __init__(self, *, details: str, stack_trace: str | None = None) -> None:
        init_fields(self, details=details, stack_trace=stack_trace)


class CallbackResult(Value):
    """A ``POST /callback``: exactly one of ``output`` (the decoded result array, as the
    worker sent it: ``[value]`` from this SDK, a list of return values from Go) and
    ``error``."""

    __slots__ = ("error", "output")
    output: list[Any] | None
    error: TaskFailure | None

    def __init__(
        self, *, output: list[Any] | None = None, error: TaskFailure | None = None
    ) -> None:
        init_fields(self, output=output, error=error)

    @property
    def succeeded(self) -> bool:
        return self.error is None


def parse_callback_request(body: bytes) -> CallbackResult:
    """A ``POST /callback`` body: ``{"complete": {"output": b64}}`` or
    ``{"error": {"details": str, "stack_trace": str?}}`` (null counts as absent).

    Raises :class:`CallbackRequestError` (400) for neither or both, a missing or
    non-array output, or details that are not a string.
    """
    document = _request_object(body, "callback")
    complete, error = document.get("complete"), document.get("error")
    if complete is None and error is None:
        raise _bad("a callback needs one of complete and error")
    if complete is not None and error is not None:
        raise _bad("a callback takes one of complete and error, not both")
    if error is not None:
        if not isinstance(error, dict):
            raise _bad(f"error must be an object, not {_kind(error)}")
        details = error.get("details")
        if not isinstance(details, str):
            raise _bad(f"error.details must be a string, not {_kind(details)}")
        return CallbackResult(
            error=TaskFailure(
                details=details, stack_trace=_optional_text(error, "stack_trace", "error")
            )
        )
    if not isinstance(complete, dict):
        raise _bad(f"complete must be an object, not {_kind(complete)}")
    raw = complete.get("output")
    if raw is None or raw == "":
        raise _bad("complete.output is required")
    output = _decode_strict(raw, "complete.output")
    if not isinstance(output, list):
        raise _bad(
            f"complete.output must encode a JSON array (the result array), not {_kind(output)}"
        )
    return CallbackResult(output=output)


class SubtaskRequest(Value):
    """A ``POST /run-subtask``: the child's registered name, its decoded input
    (``[]`` when none was sent), and the 1.x idempotency key and timestamp."""

    __slots__ = ("created_at", "idempotency_key", "input", "task_name")
    task_name: str
    input: list[Any] | dict[str, Any]
    idempotency_key: str | None
    created_at: str | None

    def __init__(
        self,
        *,
        task_name: str,
        input: list[Any] | dict[str, Any],
        idempotency_key: str | None = None,
        created_at: str | None = None,
    ) -> None:
        init_fields(
            self,
            task_name=task_name,
            input=input,
            idempotency_key=idempotency_key,
            created_at=created_at,
        )


def parse_run_subtask_request(body: bytes) -> SubtaskRequest:
    """A ``POST /run-subtask`` body.

    Raises :class:`CallbackRequestError` (400) for a missing ``task_name``, an input
    that is not b64 JSON or not an array/object, or a key/timestamp that is not a
    string. The official dev server crashed on a body without ``input`` (E.8); here it
    means no arguments.
    """
    document = _request_object(body, "run-subtask")
    task_name = document.get("task_name")
    if not isinstance(task_name, str) or not task_name:
        raise _bad("task_name must be a non-empty string")
    raw = document.get("input")
    value = [] if raw is None or raw == "" else _decode_strict(raw, "input")
    if not isinstance(value, list | dict):
        raise _bad(f"input must encode a JSON array or object, not {_kind(value)}")
    return SubtaskRequest(
        task_name=task_name,
        input=value,
        idempotency_key=_optional_text(document, "idempotency_key", "run-subtask"),
        created_at=_optional_text(document, "created_at", "run-subtask"),
    )


def parse_subtask_result_request(body: bytes) -> str:
    """The ``task_run_id`` of a ``POST /get-subtask-result`` body; raises
    :class:`CallbackRequestError` (400) when it is missing or not a string."""
    document = _request_object(body, "get-subtask-result")
    run_id = document.get("task_run_id")
    if not isinstance(run_id, str) or not run_id:
        raise _bad("task_run_id must be a non-empty string")
    return run_id


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


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
    return _dump(document)


def build_run_subtask_response(task_run_id: str) -> bytes:
    """The ``POST /run-subtask`` body: ``{"task_run_id": ...}``."""
    if not isinstance(task_run_id, str) or not task_run_id:
        raise ValueError(f"a task run id must be a non-empty string, got {task_run_id!r}")
    return _dump({"task_run_id": task_run_id})


def build_subtask_result_response(
    *, still_running: bool, output: Any | None = None, error: str | None = None
) -> bytes:
    """The ``POST /get-subtask-result`` body; ``still_running`` is always present.

    Finished with ``error`` -> ``{"error": {"details": error}}``; with ``output`` (the
    stored result array) -> ``{"complete": {"output": b64(output)}}``; with neither,
    the bare ``{"still_running": false}`` that the official SDK reports as "Unknown
    task status" (say why in ``error`` instead, e.g. for a canceled child). Raises
    ``ValueError`` for a still-running answer with a result, or both a result and an
    error.
    """
    document: dict[str, Any] = {"still_running": still_running}
    if still_running and (output is not None or error is not None):
        raise ValueError("a still-running subtask has no output or error yet")
    if output is not None and error is not None:
        raise ValueError("a subtask result has an output or an error, not both")
    if error is not None:
        document["error"] = {"details": error}
    elif output is not None:
        document["complete"] = {"output": encode_payload(output)}
    return _dump(document)


def build_error_response(message: str) -> bytes:
    """Every task-socket error body: ``{"message": ...}`` (read by 1.x, D.8)."""
    return _dump({"message": message})
