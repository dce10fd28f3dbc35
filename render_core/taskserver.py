"""The task socket, server side: one request in, one answer out, no I/O.

A task process talks to its platform (Render, the dev server, the in-process
runner) over HTTP/1.1 on a Unix socket; :mod:`render_core.callback` is the worker's
half. This module is the platform's half, written once for every host (see
``docs/wire-protocol.md#task-socket``).

Theory of operation
-------------------
A host reads a whole request and hands its method, target and body to
:meth:`TaskSocket.respond`, which answers with an :class:`Answer` (status, headers,
body bytes) for the host to write back. The host never routes, parses or builds a
body. What only the host knows (its runs, how it starts a child, what it does with a
report) it tells through a small handler that deals in values, never bytes:
:class:`RegistrationHandler` for the process that registers the tasks,
:class:`AttemptHandler` for the process of one attempt of one run.

What goes in: requests from any worker, well-formed or not. What comes out:

- routing on method and path only (``GET /input?sdk_started_at=...`` is ``/input``);
  404 for an unknown path, 405 with ``Allow`` for the wrong method;
- 200 with exactly the documented body: JSON for ``/input``, ``/run-subtask`` and
  ``/get-subtask-result``, an empty body for ``/callback`` and ``/register-tasks``;
- a 4xx ``{"message": ...}`` for every request the server refuses
  (:class:`TaskSocketError`): 400 a body that is not the documented JSON, 409 a
  request this process may not make (a registration from an attempt, a subtask from
  the register-mode process, a subtask of a run that is no longer running), 404 an
  unknown task or run. Permanent problems are 4xx so a worker fails at once instead of
  retrying for five minutes;
- ``POST /get-subtask-result`` for a child of this attempt answers a
  :class:`SubtaskPoll` instead: the host may wait for the child to end (the dev server
  holds the poll up to a bound, the in-process runner until the end), then asks
  :meth:`TaskSocket.answer_poll` for the answer. Nothing here waits.

The first report of an attempt and the first registration win; repeats (a worker
retrying when an answer was lost) are acknowledged and not passed on. The mapping
from a child run's status to the subtask result, and the step from a report to the
run lifecycle (:func:`apply_report`), live here too, so every host answers the same.

What it will never do: block, read the clock, catch a handler's own bug (an exception
other than :class:`TaskSocketError` propagates: the host decides whether that is a
500), or deduplicate subtask starts (the host knows its runs and their idempotency
keys).

Below :class:`TaskSocket` are the parts it is made of, public for hosts and tests:
request parsers (``parse_*_request``: a value, or :class:`TaskSocketError`; for any
input bytes nothing else escapes) and response builders (``build_*_response``: the
exact success bodies). Unknown keys are ignored (tolerant reader); ``NaN`` and
``Infinity``, which Python's ``json`` accepts and Go's rejects, are refused at the
door rather than stored and failing later on the way out.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
from collections.abc import Callable
from typing import Any, Final, Protocol

from render_core import lifecycle
from render_core.callback import (
    GET_INPUT,
    GET_SUBTASK_RESULT,
    POST_CALLBACK,
    REGISTER_TASKS,
    RUN_SUBTASK,
    SocketOperation,
    build_input_response,
    encode_payload,
)
from render_core.lifecycle import Run
from render_core.models import TaskRunStatus
from render_core.values import Value, init_fields

__all__ = [
    "DEFAULT_MAX_BODY",
    "SOCKET_ROUTES",
    "Answer",
    "AttemptHandler",
    "CallbackResult",
    "RegisteredRetry",
    "RegisteredTask",
    "RegistrationHandler",
    "SubtaskPoll",
    "SubtaskRequest",
    "TaskFailure",
    "TaskSocket",
    "TaskSocketError",
    "apply_report",
    "body_too_large",
    "build_error_response",
    "build_input_response",
    "build_run_subtask_response",
    "build_subtask_result_response",
    "error_answer",
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


class TaskSocketError(Exception):
    """A request the task-socket server refuses: answer ``status`` with ``{"message": ...}``.

    Raised by the request parsers (400), by routing (404, and 405 with ``allow``, the
    method the path takes), by the server for a request its process may not make
    (409), and by a host's handler for what only the host knows (a 404 for an unknown
    run). Permanent problems are 4xx: the official workers retry 5xx for about five
    minutes and give up at once on other 4xx, and a malformed request does not get
    better by repeating it. ``status`` must be 400..599.
    """

    def __init__(self, status: int, message: str, *, allow: str | None = None) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"a task-socket error status must be 400..599, got {status!r}")
        super().__init__(message)
        self.status = status
        self.message = message
        self.allow = allow

    def __repr__(self) -> str:
        return f"TaskSocketError({self.status}, {self.message!r})"


def _bad(message: str) -> TaskSocketError:
    return TaskSocketError(400, message)


def match_route(method: str, target: str) -> SocketOperation:
    """The endpoint for a request line; the query (and an absolute-form origin) ignored.

    Raises :class:`TaskSocketError`: 404 for an unknown path, 405 (with
    ``allow``) for a known path asked with another method.
    """
    path = target.partition("?")[0].partition("#")[0]
    scheme, sep, rest = path.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        path = "/" + rest.partition("/")[2]
    op = SOCKET_ROUTES.get(path)
    if op is None:
        raise TaskSocketError(404, f"no task-socket endpoint at {path!r}")
    if method != op.method:
        raise TaskSocketError(405, f"{op.path} takes {op.method}, not {method}", allow=op.method)
    return op


# ------------------------------------------------------------------ the server

# The largest request is a /callback carrying a result (base64, so 4/3 of the JSON).
# 32 MiB leaves room for any result the platform would keep (results are stored and
# served back to every reader of the run) while bounding what one misbehaving
# process can make its host buffer. The worker's own transport accepts up to 64 MiB
# per answer, so whatever is accepted here can be sent back to a parent.
DEFAULT_MAX_BODY = 32 * 1024 * 1024


class Answer(Value):
    """What to write back: ``status``, ``headers`` and ``body`` bytes.

    ``headers`` are ``Content-Type: application/json`` when there is a body,
    ``Content-Length`` always, and ``Allow`` on a 405; the host adds only what its own
    framing needs (``Connection: close``).
    """

    __slots__ = ("body", "headers", "status")
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def __init__(self, status: int, body: bytes = b"", *, allow: str | None = None) -> None:
        headers = [("Content-Type", "application/json")] if body else []
        headers.append(("Content-Length", str(len(body))))
        if allow:
            headers.append(("Allow", allow))
        init_fields(self, status=status, headers=tuple(headers), body=body)


def error_answer(status: int, message: str, *, allow: str | None = None) -> Answer:
    """A refusal: ``status`` with ``{"message": message}`` (``Allow`` for a 405).

    Hosts use it for what they refuse before a request reaches :meth:`TaskSocket.respond`
    (a body over their limit, malformed HTTP) and for a handler's bug (500).
    """
    return Answer(status, build_error_response(message), allow=allow)


def body_too_large(limit: int, *, declared: int | None = None) -> Answer:
    """The 413 for a body over ``limit`` bytes (``declared``: what its
    ``Content-Length`` said, for a host that refuses before reading)."""
    what = "the body is larger" if declared is None else f"the body declares {declared} bytes"
    return error_answer(413, f"{what} than the {limit}-byte limit")


class SubtaskPoll(Value):
    """``POST /get-subtask-result`` for ``task_run_id``, a child of this attempt's run.

    The host may wait for the child to end, for as long as it chooses (not at all is
    fine), then calls :meth:`TaskSocket.answer_poll`, which answers from the child's
    status at that moment: its result, or "still running".
    """

    __slots__ = ("task_run_id",)
    task_run_id: str

    def __init__(self, task_run_id: str) -> None:
        init_fields(self, task_run_id=task_run_id)


class RegistrationHandler(Protocol):
    """The host of the register-mode process."""

    def register(self, tasks: list[RegisteredTask]) -> None:
        """The tasks the process registered, once (repeats are not passed on)."""
        ...


class AttemptHandler(Protocol):
    """The host of one attempt's process: its runs, as values.

    Methods may raise :class:`TaskSocketError` for a refusal only the host can make;
    anything else is the host's bug and propagates out of :meth:`TaskSocket.respond`.
    """

    def get_run(self, task_run_id: str) -> Run | None:
        """The run with this id as it is now (this attempt's own, a child, the root);
        None if there is none."""
        ...

    def report(self, result: CallbackResult) -> None:
        """The attempt's report, once: the first ``POST /callback`` (repeats are
        acknowledged and not passed on). :func:`apply_report` is the lifecycle step."""
        ...

    def start_subtask(self, parent: Run, request: SubtaskRequest) -> str | None:
        """Start a child of ``parent`` (or find the one already started with
        ``request.idempotency_key``); its run id, or None when no task has the name.

        Called only once the server's checks passed: ``parent`` is running and so is
        its root.
        """
        ...


# Why a process in the other mode may not make a request.
_NOT_A_REGISTRATION = "this process was started to run a task, not to register tasks"
_NOT_AN_ATTEMPT = {
    POST_CALLBACK: "this process was started to register tasks, not to run one",
    RUN_SUBTASK: "subtasks can only be started from a running task",
    GET_SUBTASK_RESULT: "subtasks can only be awaited from a running task",
}


class TaskSocket:
    """The server of one task process's socket; build it with :meth:`for_registration`
    or :meth:`for_attempt`.

    ``registered`` and ``reported`` hold the first registration and the first report
    (None before). A body over ``max_body_bytes`` is refused with 413 (a host that
    streams should refuse it before reading, with :func:`body_too_large`). Not
    thread-safe: one host, one event loop.
    """

    def __init__(
        self,
        *,
        registration: RegistrationHandler | None = None,
        attempt: AttemptHandler | None = None,
        task_run_id: str = "",
        attempt_number: int | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
    ) -> None:
        if (registration is None) == (attempt is None):
            raise ValueError("a task socket serves a registration or an attempt, not both")
        if attempt is not None and not task_run_id:
            raise ValueError("an attempt's task socket needs the attempt's task run id")
        self._registration = registration
        self._attempt = attempt
        self.task_run_id = task_run_id
        self.attempt_number = attempt_number
        self.max_body_bytes = max_body_bytes
        self.registered: list[RegisteredTask] | None = None
        self.reported: CallbackResult | None = None
        self._routes: dict[SocketOperation, Callable[[bytes], Answer | SubtaskPoll]] = {
            GET_INPUT: self._get_input,
            POST_CALLBACK: self._post_callback,
            REGISTER_TASKS: self._register_tasks,
            RUN_SUBTASK: self._run_subtask,
            GET_SUBTASK_RESULT: self._get_subtask_result,
        }

    @classmethod
    def for_registration(
        cls, handler: RegistrationHandler, *, max_body_bytes: int = DEFAULT_MAX_BODY
    ) -> TaskSocket:
        """The socket of a register-mode process: ``GET /input`` answers "no task"
        (``{"task_name": "", "input": null}``), ``POST /register-tasks`` is accepted,
        the rest is refused with 409."""
        return cls(registration=handler, max_body_bytes=max_body_bytes)

    @classmethod
    def for_attempt(
        cls,
        handler: AttemptHandler,
        task_run_id: str,
        attempt_number: int,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY,
    ) -> TaskSocket:
        """The socket of attempt ``attempt_number`` of run ``task_run_id``."""
        return cls(
            attempt=handler,
            task_run_id=task_run_id,
            attempt_number=attempt_number,
            max_body_bytes=max_body_bytes,
        )

    def respond(self, method: str, target: str, body: bytes) -> Answer | SubtaskPoll:
        """The answer to one whole request, or the poll a host may hold.

        A refusal is an :class:`Answer` like any other; only a handler's own bug (an
        exception other than :class:`TaskSocketError`) is raised.
        """
        if len(body) > self.max_body_bytes:
            return body_too_large(self.max_body_bytes)
        try:
            return self._routes[match_route(method, target)](body)
        except TaskSocketError as exc:
            return error_answer(exc.status, exc.message, allow=exc.allow)

    def answer_poll(self, poll: SubtaskPoll) -> Answer:
        """The answer to a held :class:`SubtaskPoll`: the child's result if it has
        ended, else ``{"still_running": true}``; a 404 if the child is gone."""
        assert self._attempt is not None, "only an attempt's socket asks for polls"
        child = self._attempt.get_run(poll.task_run_id)
        if child is None:
            return error_answer(404, f"task run not found: {poll.task_run_id}")
        return Answer(200, _subtask_result(child))

    # -- the endpoints --------------------------------------------------------------

    def _attempt_handler(self, op: SocketOperation) -> AttemptHandler:
        if self._attempt is None:
            raise TaskSocketError(409, _NOT_AN_ATTEMPT[op])
        return self._attempt

    def _own_run(self, handler: AttemptHandler) -> Run:
        run = handler.get_run(self.task_run_id)
        if run is None:
            raise TaskSocketError(404, f"task run not found: {self.task_run_id}")
        return run

    def _get_input(self, body: bytes) -> Answer:
        if self._attempt is None:
            return Answer(200, build_input_response("", None))  # no task to run
        run = self._own_run(self._attempt)
        return Answer(
            200,
            build_input_response(
                run.task_name,
                run.input,
                task_run_id=run.id,
                root_task_run_id=run.root_id or run.id,
                parent_task_run_id=run.parent_id or None,
                attempt=self.attempt_number,
            ),
        )

    def _register_tasks(self, body: bytes) -> Answer:
        tasks = parse_register_request(body)
        if self._registration is None:
            raise TaskSocketError(409, _NOT_A_REGISTRATION)
        if self.registered is None:
            self.registered = tasks
            self._registration.register(tasks)
        return Answer(200)

    def _post_callback(self, body: bytes) -> Answer:
        result = parse_callback_request(body)
        handler = self._attempt_handler(POST_CALLBACK)
        if self.reported is None:
            self.reported = result
            handler.report(result)
        return Answer(200)

    def _run_subtask(self, body: bytes) -> Answer:
        request = parse_run_subtask_request(body)
        handler = self._attempt_handler(RUN_SUBTASK)
        parent = handler.get_run(self.task_run_id)
        if parent is None or parent.status is not TaskRunStatus.RUNNING:
            raise TaskSocketError(409, f"task run {self.task_run_id} is not running")
        root = parent if parent.root_id in ("", parent.id) else handler.get_run(parent.root_id)
        if root is not None and root.is_terminal:
            raise TaskSocketError(409, f"root task run {root.id} is not active")
        child_id = handler.start_subtask(parent, request)
        if child_id is None:
            raise TaskSocketError(404, f"task not found: {request.task_name}")
        return Answer(200, build_run_subtask_response(child_id))

    def _get_subtask_result(self, body: bytes) -> Answer | SubtaskPoll:
        run_id = parse_subtask_result_request(body)
        handler = self._attempt_handler(GET_SUBTASK_RESULT)
        child = handler.get_run(run_id)
        if child is None or child.parent_id != self.task_run_id:
            # Each attempt's socket answers for its own subtasks only.
            raise TaskSocketError(404, f"no subtask {run_id} of task run {self.task_run_id}")
        return SubtaskPoll(run_id)


def _subtask_result(child: Run) -> bytes:
    """A child's status as a ``/get-subtask-result`` body."""
    if child.status is TaskRunStatus.COMPLETED:
        return build_subtask_result_response(still_running=False, output=child.results)
    if child.status is TaskRunStatus.FAILED:
        return build_subtask_result_response(
            still_running=False, error=child.error or "the subtask failed"
        )
    if child.status is TaskRunStatus.CANCELED:
        return build_subtask_result_response(still_running=False, error="the subtask was canceled")
    return build_subtask_result_response(still_running=True)


def apply_report(run: Run, result: CallbackResult, now: _dt.datetime) -> Run:
    """``run`` after its running attempt reported ``result``: completed with the
    reported output, or the attempt failed (the lifecycle decides whether a retry
    follows). Raises :class:`~render_core.lifecycle.LifecycleError` if ``run`` is not
    running."""
    if result.error is not None:
        return lifecycle.fail_attempt(run, result.error.details or "the task failed", now)
    return lifecycle.complete(run, [] if result.output is None else result.output, now)


# ------------------------------------------------------------------ requests and answers


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
    """The JSON value of a b64 field: :func:`render_core.callback.decode_payload` with strict
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

    Raises :class:`TaskSocketError` (400) naming the first problem: not a JSON
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

    Raises :class:`TaskSocketError` (400) for neither or both, a missing or
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

    Raises :class:`TaskSocketError` (400) for a missing ``task_name``, an input
    that is not b64 JSON or not an array/object, or a key/timestamp that is not a
    string. A body without ``input`` means no arguments (the official Go dev server
    crashed on one).
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
    :class:`TaskSocketError` (400) when it is missing or not a string."""
    document = _request_object(body, "get-subtask-result")
    run_id = document.get("task_run_id")
    if not isinstance(run_id, str) or not run_id:
        raise _bad("task_run_id must be a non-empty string")
    return run_id


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


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
    """Every task-socket error body: ``{"message": ...}`` (the 1.x worker shows ``message``
    in its error)."""
    return _dump({"message": message})
