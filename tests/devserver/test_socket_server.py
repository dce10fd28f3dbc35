"""Tests for render_devserver.socket_server: the task socket over a real Unix socket.

The server hosts the core's :class:`~render_core.taskserver.TaskSocket`; a stub
handler behind it records calls, keeps a few runs and can fail or hold a subtask poll
on demand. Clients are our own h11
transports (both colours), the stdlib ``http.client`` the way the 1.x worker uses it,
the worker's own flows from ``render_core.callback``, and raw sockets for everything
a well-behaved client would never send.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import http.client
import json
import logging
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from typing import Any

import h11
import pytest

from render_core import callback, lifecycle
from render_core.backoff import Backoff
from render_core.callback import (
    build_callback_error,
    build_callback_success,
    build_get_subtask_result,
    build_register_tasks,
    build_run_subtask,
)
from render_core.effects import run_async
from render_core.errors import ClientError, NetworkError, TaskRunError
from render_core.http import Request, Response
from render_core.lifecycle import Run
from render_core.taskserver import (
    CallbackResult,
    RegisteredRetry,
    RegisteredTask,
    SubtaskRequest,
    TaskFailure,
    TaskSocket,
    TaskSocketError,
    build_input_response,
)
from render_devserver.socket_server import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY,
    TaskSocketServer,
)
from render_transports.h11_transport import AsyncUnixSocketTransport, UnixSocketTransport

UA = "render-sdk-python/0.0.0-test"
LOGGER = "render_devserver.socket_server"
# Generous for normal tests (a loaded CI machine must not trip it); the idle tests
# build their own server with 0.3 s.
IDLE = 5.0
SHORT_IDLE = 0.3
NO_RETRY = Backoff(base=0.01, factor=1.0, cap=0.01, max_attempts=1, jitter=False)
FAST_POLL = Backoff(base=0.01, factor=1.0, cap=0.01, max_attempts=1_000_000, jitter=False)


NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
OWN = "trn-1"
CHILD = "trn-child"


def running(run_id: str, input_data: list[Any], parent: Run | None = None) -> Run:
    new = lifecycle.new_run(
        run_id=run_id,
        task_id="add",
        task_name="add",
        input_data=input_data,
        now=NOW,
        policy=lifecycle.RetryPolicy(max_retries=0, wait_duration_ms=0),
        parent=parent,
    )
    return lifecycle.start_attempt(new, NOW)


OWN_RUN = running(OWN, [2, 3])
CHILD_RUNNING = running(CHILD, [4], parent=OWN_RUN)


def completed(output: list[Any]) -> Run:
    return lifecycle.complete(CHILD_RUNNING, output, NOW)


def failed(error: str) -> Run:
    return lifecycle.fail_attempt(CHILD_RUNNING, error, NOW)


# What GET /input answers for OWN_RUN, attempt 1.
INPUT_BODY = build_input_response("add", [2, 3], task_run_id=OWN, root_task_run_id=OWN, attempt=1)


class StubHandler:
    """The core's handler (both modes) and the host's ``wait_for_end``: records every
    call, keeps runs by id, can fail or wait on demand.

    Each held poll moves the child to the next of ``child_states`` (if any), as if it
    had progressed while the poll waited.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.runs: dict[str, Any] = {OWN: OWN_RUN, CHILD: CHILD_RUNNING}
        self.child_states: list[Run] = []
        self.run_id: Any = CHILD
        self.failures: dict[str, BaseException] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}
        self.cancelled: list[str] = []

    def gate(self, name: str) -> asyncio.Event:
        """Make calls of ``name`` (``wait_for_end``, the only coroutine) wait until the
        returned event is set."""
        self.gates[name] = asyncio.Event()
        self.entered[name] = asyncio.Event()
        return self.gates[name]

    def _enter(self, name: str, argument: Any) -> None:
        self.calls.append((name, argument))
        if name in self.entered:
            self.entered[name].set()
        if name in self.failures:
            raise self.failures[name]

    def actions(self) -> list[tuple[str, Any]]:
        """The calls other than run lookups."""
        return [call for call in self.calls if call[0] != "get_run"]

    def get_run(self, task_run_id: str) -> Run | None:
        self._enter("get_run", task_run_id)
        return self.runs.get(task_run_id)  # type: ignore[no-any-return]

    def register(self, tasks: list[RegisteredTask]) -> None:
        self._enter("register", tasks)

    def report(self, result: CallbackResult) -> None:
        self._enter("report", result)

    def start_subtask(self, parent: Run, request: SubtaskRequest) -> str | None:
        self._enter("start_subtask", request)
        return self.run_id  # type: ignore[no-any-return]

    async def wait_for_end(self, task_run_id: str) -> None:
        self.calls.append(("wait_for_end", task_run_id))
        if "wait_for_end" in self.entered:
            self.entered["wait_for_end"].set()
        if "wait_for_end" in self.gates:
            try:
                await self.gates["wait_for_end"].wait()
            except asyncio.CancelledError:
                self.cancelled.append("wait_for_end")
                raise
        if self.child_states:
            self.runs[task_run_id] = self.child_states.pop(0)


def serve(path: str, handler: StubHandler, **options: Any) -> TaskSocketServer:
    """A server for attempt 1 of OWN_RUN."""
    protocol = TaskSocket.for_attempt(handler, OWN, 1)
    return TaskSocketServer(path, protocol, wait_for_end=handler.wait_for_end, **options)


@pytest.fixture
def socket_dir() -> Iterator[str]:
    # Short, under /tmp: sun_path holds about 100 bytes.
    directory = tempfile.mkdtemp(prefix="tss-", dir="/tmp")
    os.chmod(directory, 0o700)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def handler() -> StubHandler:
    return StubHandler()


@pytest.fixture
async def server(socket_dir: str, handler: StubHandler) -> AsyncIterator[TaskSocketServer]:
    async with serve(os.path.join(socket_dir, "task.sock"), handler, idle_timeout=IDLE) as served:
        yield served


@pytest.fixture
async def registrar(socket_dir: str, handler: StubHandler) -> AsyncIterator[TaskSocketServer]:
    """A server for the register-mode process."""
    protocol = TaskSocket.for_registration(handler)
    async with TaskSocketServer(os.path.join(socket_dir, "reg.sock"), protocol) as served:
        yield served


@pytest.fixture
async def impatient(socket_dir: str, handler: StubHandler) -> AsyncIterator[TaskSocketServer]:
    async with serve(
        os.path.join(socket_dir, "short.sock"), handler, idle_timeout=SHORT_IDLE
    ) as served:
        yield served


async def call(
    server: TaskSocketServer,
    method: str,
    target: str,
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (),
) -> Response:
    transport = AsyncUnixSocketTransport(server.path, timeout=10)
    request = Request(method=method, url="http://localhost" + target, headers=headers, body=body)
    return await transport.send(request)


def message_of(response: Response) -> str:
    assert response.header("content-type") == "application/json"
    document = json.loads(response.body)
    assert list(document) == ["message"]
    assert isinstance(document["message"], str)
    return document["message"]


class RawClient:
    """A raw connection: write any bytes, read answers with an h11 client parser."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, path: str) -> RawClient:
        reader, writer = await asyncio.open_unix_connection(path)
        return cls(reader, writer)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(
        self, method: bytes = b"GET", timeout: float = 10.0
    ) -> tuple[h11.Response, bytes]:
        """The next answer on the connection (``method`` is the request it answers)."""
        conn = self.conn
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        if conn.our_state is h11.IDLE:
            # Tell the parser which request this answers; the bytes went out raw.
            conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
            conn.send(h11.EndOfMessage())
        head: h11.Response | None = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await asyncio.wait_for(self.reader.read(65536), timeout))
            elif isinstance(event, h11.InformationalResponse):
                return event, b""  # type: ignore[return-value]
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return head, body
            else:
                raise AssertionError(f"unexpected {event!r}")

    async def at_eof(self, timeout: float = 10.0) -> bool:
        """Whether the server closed the connection (waiting up to ``timeout``)."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except ConnectionResetError:
            return True
        return data == b"" and not self.conn.trailing_data[0]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def raw(path: str) -> AsyncIterator[RawClient]:
    client = await RawClient.open(path)
    try:
        yield client
    finally:
        await client.close()


async def exchange(path: str, data: bytes, timeout: float = 10.0) -> bytes:
    """Write ``data``, then read everything until the server closes."""
    async with raw(path) as client:
        await client.write(data)
        chunks = []
        while chunk := await asyncio.wait_for(client.reader.read(65536), timeout):
            chunks.append(chunk)
        return b"".join(chunks)


def header(head: h11.Response, name: bytes) -> bytes | None:
    return next((value for key, value in head.headers if key == name.lower()), None)


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


async def until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


GET_INPUT_RAW = b"GET /input HTTP/1.1\r\nHost: localhost\r\n\r\n"
POLL = b'{"task_run_id":"trn-child"}'


# ---------------------------------------------------------------- endpoints


async def test_get_input_ignores_the_query(server: TaskSocketServer, handler: StubHandler) -> None:
    response = await call(server, "GET", "/input?sdk_import_started_at=1.5&sdk_started_at=2.5")
    assert response.status == 200
    assert response.body == INPUT_BODY
    assert response.header("content-type") == "application/json"
    assert response.header("content-length") == str(len(INPUT_BODY))
    assert handler.calls == [("get_run", OWN)]
    task_input = callback.parse_input(response)
    assert (task_input.task_name, task_input.input, task_input.task_run_id) == (
        "add",
        [2, 3],
        "trn-1",
    )


async def test_register_mode_input_says_there_is_no_task(registrar: TaskSocketServer) -> None:
    response = await call(registrar, "GET", "/input")
    assert (response.status, response.body) == (200, b'{"task_name":"","input":null}')


async def test_register_tasks_answers_an_empty_200_and_passes_the_first_on(
    registrar: TaskSocketServer, handler: StubHandler
) -> None:
    payload = {
        "tasks": [
            {
                "name": "add",
                "options": {"retry": {"max_retries": 3, "wait_duration_ms": 10, "factor": 1.5}},
            },
            {"name": "noop", "options": {}},
        ]
    }
    request = build_register_tasks(payload, UA)
    for _ in range(2):
        response = await call(registrar, "POST", "/register-tasks", request.body, request.headers)
        assert (response.status, response.body) == (200, b"")
        assert response.header("content-length") == "0"
        assert response.header("content-type") is None
    assert handler.calls == [
        (
            "register",
            [
                RegisteredTask(
                    name="add",
                    retry=RegisteredRetry(max_retries=3, wait_duration_ms=10, factor=1.5),
                ),
                RegisteredTask(name="noop"),
            ],
        )
    ]


async def test_callbacks_answer_an_empty_200_every_time(
    server: TaskSocketServer, handler: StubHandler
) -> None:
    success = build_callback_success(b"[5]", UA)
    failure = build_callback_error("boom", None, UA)
    for request in (success, success, failure):
        response = await call(server, "POST", "/callback", request.body, request.headers)
        assert (response.status, response.body) == (200, b"")
        assert response.header("content-length") == "0"
    # The first report wins; repeats (retried POSTs) are acknowledged, not passed on.
    assert handler.calls == [("report", CallbackResult(output=[5]))]


async def test_run_subtask_answers_the_run_id(
    server: TaskSocketServer, handler: StubHandler
) -> None:
    request = build_run_subtask(
        "square",
        [4],
        idempotency_key="key-1",
        created_at="2026-01-01T00:00:00+00:00",
        user_agent=UA,
    )
    response = await call(server, "POST", "/run-subtask", request.body, request.headers)
    assert (response.status, response.body) == (200, b'{"task_run_id":"trn-child"}')
    assert response.header("content-type") == "application/json"
    assert handler.actions() == [
        (
            "start_subtask",
            SubtaskRequest(
                task_name="square",
                input=[4],
                idempotency_key="key-1",
                created_at="2026-01-01T00:00:00+00:00",
            ),
        )
    ]


async def test_get_subtask_result_waits_then_answers_the_childs_state(
    server: TaskSocketServer, handler: StubHandler
) -> None:
    handler.child_states = [completed([7])]
    request = build_get_subtask_result(CHILD, UA)
    response = await call(server, "POST", "/get-subtask-result?x=1", request.body)
    assert response.status == 200
    assert response.body == b'{"still_running":false,"complete":{"output":"Wzdd"}}'
    assert handler.calls == [("get_run", CHILD), ("wait_for_end", CHILD), ("get_run", CHILD)]


async def test_without_wait_for_end_a_poll_is_answered_at_once(
    socket_dir: str, handler: StubHandler
) -> None:
    protocol = TaskSocket.for_attempt(handler, OWN, 1)
    async with TaskSocketServer(os.path.join(socket_dir, "t.sock"), protocol) as server:
        response = await call(server, "POST", "/get-subtask-result", b'{"task_run_id":"trn-child"}')
    assert (response.status, response.body) == (200, b'{"still_running":true}')


async def test_sync_transport(server: TaskSocketServer, handler: StubHandler) -> None:
    transport = UnixSocketTransport(server.path, timeout=10)
    request = Request(method="GET", url="http://localhost/input")
    response = await asyncio.to_thread(transport.send, request)
    assert (response.status, response.body) == (200, INPUT_BODY)


class _UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` dialling a Unix socket: how the official 1.x worker connects."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def _official_style_call(path: str, method: str, target: str, body: Any) -> tuple[int, bytes]:
    connection = _UnixHTTPConnection(path)
    try:
        headers = {"Connection": "close", "User-Agent": UA, "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        connection.request(method, target, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


async def test_official_1x_style_client(server: TaskSocketServer, handler: StubHandler) -> None:
    status, body = await asyncio.to_thread(
        _official_style_call, server.path, "GET", "/input?sdk_started_at=1", None
    )
    assert (status, body) == (200, INPUT_BODY)
    status, body = await asyncio.to_thread(
        _official_style_call, server.path, "POST", "/callback", {"error": {"details": ""}}
    )
    assert (status, body) == (200, b"")
    status, body = await asyncio.to_thread(
        _official_style_call, server.path, "POST", "/run-subtask", {"task_name": "t"}
    )
    assert (status, json.loads(body)) == (200, {"task_run_id": "trn-child"})
    assert handler.actions() == [
        ("report", CallbackResult(error=TaskFailure(details=""))),
        ("start_subtask", SubtaskRequest(task_name="t", input=[])),
    ]


async def test_worker_flows_against_the_server(
    server: TaskSocketServer, handler: StubHandler
) -> None:
    transport = AsyncUnixSocketTransport(server.path, timeout=10)
    task_input = await run_async(callback.get_input(UA), transport.send, asyncio.sleep)
    assert task_input.input == [2, 3]
    run_id = await run_async(
        callback.run_subtask(
            "square",
            [3],
            idempotency_key="k",
            created_at="2026-01-01T00:00:00+00:00",
            user_agent=UA,
        ),
        transport.send,
        asyncio.sleep,
    )
    handler.child_states = [CHILD_RUNNING, CHILD_RUNNING, completed([9])]
    value = await run_async(
        callback.wait_for_subtask(run_id, UA, poll=FAST_POLL), transport.send, asyncio.sleep
    )
    assert value == 9
    assert [name for name, _ in handler.actions()].count("wait_for_end") == 3
    handler.runs[CHILD] = failed("boom")
    with pytest.raises(TaskRunError, match="Subtask failed: boom"):
        await run_async(
            callback.wait_for_subtask(run_id, UA, poll=FAST_POLL), transport.send, asyncio.sleep
        )
    await run_async(
        callback.post_callback(build_callback_success(b"[81]", UA)), transport.send, asyncio.sleep
    )
    assert handler.calls[-1] == ("report", CallbackResult(output=[81]))


async def test_a_permanent_handler_error_is_not_retried_by_the_worker(
    server: TaskSocketServer, handler: StubHandler
) -> None:
    # An unknown task is a permanent 404, so the worker fails at once, not after
    # retrying for five minutes.
    handler.run_id = None
    transport = AsyncUnixSocketTransport(server.path, timeout=10)
    flow = callback.run_subtask(
        "nope", [], idempotency_key="k", created_at="2026-01-01T00:00:00+00:00", user_agent=UA
    )
    with pytest.raises(ClientError, match="task not found: nope") as info:
        await run_async(flow, transport.send, asyncio.sleep)
    assert info.value.status == 404
    assert [name for name, _ in handler.actions()] == ["start_subtask"]


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("target", ["/", "/inputs", "/input/", "/v1/task-runs", "/callback/x"])
async def test_unknown_path_is_404(
    server: TaskSocketServer, handler: StubHandler, target: str
) -> None:
    response = await call(server, "GET", target)
    assert response.status == 404
    assert "no task-socket endpoint" in message_of(response)
    assert handler.calls == []


@pytest.mark.parametrize(
    ("method", "target", "allow"),
    [
        ("POST", "/input", "GET"),
        ("GET", "/callback", "POST"),
        ("PUT", "/register-tasks", "POST"),
        ("DELETE", "/run-subtask?x=1", "POST"),
        ("GET", "/get-subtask-result", "POST"),
    ],
)
async def test_wrong_method_is_405_with_allow(
    server: TaskSocketServer, handler: StubHandler, method: str, target: str, allow: str
) -> None:
    response = await call(server, method, target, b"{}")
    assert response.status == 405
    assert response.header("allow") == allow
    assert message_of(response).endswith(f"takes {allow}, not {method}")
    assert handler.calls == []


async def test_head_is_405_without_a_body(server: TaskSocketServer) -> None:
    async with raw(server.path) as client:
        await client.write(b"HEAD /input HTTP/1.1\r\nHost: x\r\n\r\n" + GET_INPUT_RAW)
        head, body = await client.response(b"HEAD")
        assert (head.status_code, body) == (405, b"")
        assert header(head, b"allow") == b"GET"
        assert int(header(head, b"content-length") or 0) > 0  # what a GET would get
        head, body = await client.response()  # the connection is still in sync
        assert head.status_code == 200
        await client.write(b"HEAD /input HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n")
        assert (await client.response(b"HEAD"))[0].status_code == 405
        head, body = await client.response()  # a refusal after a HEAD has its body
        assert head.status_code == 400
        assert b"malformed HTTP request" in body


@pytest.mark.parametrize(
    ("target", "body", "fragment"),
    [
        ("/callback", b"", "the callback body is not JSON"),
        ("/callback", b"{}", "a callback needs one of complete and error"),
        ("/register-tasks", b"[]", "must be a JSON object, not an array"),
        ("/register-tasks", b'{"tasks": [{"name": ""}]}', "tasks[0].name"),
        ("/run-subtask", b'{"task_name": "t", "input": "!!"}', "input is not standard base64"),
        ("/run-subtask", b'{"input": "W10="}', "task_name must be a non-empty string"),
        ("/get-subtask-result", b"{\xff}", "not JSON"),
        ("/get-subtask-result", b'{"task_run_id": 5}', "task_run_id"),
    ],
)
async def test_bad_bodies_are_400_with_a_message(
    server: TaskSocketServer, handler: StubHandler, target: str, body: bytes, fragment: str
) -> None:
    response = await call(server, "POST", target, body)
    assert response.status == 400
    assert fragment in message_of(response)
    assert handler.calls == []


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "task run not found: trn-x"),
        (409, "root task run trn-0 is not active"),
        (400, "this process was started to register tasks"),
        (503, "shutting down"),
        (499, "a status without a reason phrase"),
    ],
)
async def test_handler_errors_become_their_status(
    server: TaskSocketServer, handler: StubHandler, status: int, message: str
) -> None:
    handler.failures["get_run"] = TaskSocketError(status, message)
    response = await call(server, "POST", "/get-subtask-result", b'{"task_run_id": "trn-x"}')
    assert response.status == status
    assert message_of(response) == message


ATTEMPT_REFUSALS = [
    ("/register-tasks", b'{"tasks": []}', 409, "started to run a task"),
    ("/get-subtask-result", b'{"task_run_id": "trn-1"}', 404, "no subtask trn-1"),
    ("/get-subtask-result", b'{"task_run_id": "nope"}', 404, "no subtask nope"),
]


@pytest.mark.parametrize("case", ATTEMPT_REFUSALS, ids=lambda case: case[3])
async def test_the_core_refuses_what_an_attempt_may_not_ask(
    server: TaskSocketServer, handler: StubHandler, case: tuple[str, bytes, int, str]
) -> None:
    target, body, status, fragment = case
    response = await call(server, "POST", target, body)
    assert response.status == status
    assert fragment in message_of(response)
    assert "wait_for_end" not in [name for name, _ in handler.calls]


async def test_a_handler_bug_is_a_logged_500_and_the_server_goes_on(
    server: TaskSocketServer, handler: StubHandler, caplog: pytest.LogCaptureFixture
) -> None:
    handler.failures["get_run"] = ZeroDivisionError("division by zero")
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        response = await call(server, "GET", "/input")
    assert response.status == 500
    assert "handler failed" in message_of(response)
    [record] = errors_logged(caplog)
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError
    assert "GET /input" in record.getMessage()
    del handler.failures["get_run"]
    assert (await call(server, "GET", "/input")).status == 200


WRONG_ANSWERS = [
    ("own run", OWN, "not a run", "GET", "/input", b""),
    ("child", CHILD, "not a run", "POST", "/get-subtask-result", b'{"task_run_id":"trn-child"}'),
    ("run_id", None, "", "POST", "/run-subtask", b'{"task_name":"t"}'),
    ("run_id", None, 5, "POST", "/run-subtask", b'{"task_name":"t"}'),
]


@pytest.mark.parametrize("case", WRONG_ANSWERS, ids=lambda case: f"{case[0]}={case[2]!r}")
async def test_a_handler_answer_of_the_wrong_type_is_a_500(
    server: TaskSocketServer,
    handler: StubHandler,
    caplog: pytest.LogCaptureFixture,
    case: tuple[str, str | None, Any, str, str, bytes],
) -> None:
    _, run_id, value, method, target, body = case
    if run_id is None:
        handler.run_id = value
    else:
        handler.runs[run_id] = value
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        response = await call(server, method, target, body)
    assert response.status == 500
    assert len(errors_logged(caplog)) == 1


# ---------------------------------------------------------------- body limit


@pytest.fixture
async def small(socket_dir: str, handler: StubHandler) -> AsyncIterator[TaskSocketServer]:
    async with serve(
        os.path.join(socket_dir, "small.sock"), handler, max_body_bytes=1024, idle_timeout=IDLE
    ) as served:
        yield served


async def test_a_body_at_the_limit_is_read(small: TaskSocketServer, handler: StubHandler) -> None:
    body = json.dumps({"task_run_id": CHILD, "padding": "x" * 980}).encode().ljust(1024)
    assert len(body) == 1024
    response = await call(small, "POST", "/get-subtask-result", body)
    assert (response.status, response.body) == (200, b'{"still_running":true}')


@pytest.mark.parametrize("size", [1025, 8 * 1024 * 1024])
async def test_a_declared_body_over_the_limit_is_413(
    small: TaskSocketServer, handler: StubHandler, size: int
) -> None:
    # Our transport writes the whole request before reading: the server must drain
    # it (8 MiB is far more than the socket buffers) for the answer to arrive.
    response = await call(small, "POST", "/callback", b" " * size)
    assert response.status == 413
    assert message_of(response) == f"the body declares {size} bytes than the 1024-byte limit"
    assert response.header("connection") == "close"
    assert handler.calls == []
    assert (await call(small, "GET", "/input")).status == 200


async def test_a_chunked_body_over_the_limit_is_413(
    small: TaskSocketServer, handler: StubHandler
) -> None:
    chunk = b"x" * 600
    request = (
        b"POST /callback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"258\r\n" + chunk + b"\r\n") * 2
        + b"0\r\n\r\n"
    )
    async with raw(small.path) as client:
        await client.write(request)
        head, body = await client.response(b"POST")
        assert head.status_code == 413
        assert b"the body is larger than the 1024-byte limit" in body
        assert await client.at_eof()
    assert handler.calls == []


async def test_expect_100_continue(small: TaskSocketServer, handler: StubHandler) -> None:
    body = b'{"task_run_id": "trn-child"}'
    async with raw(small.path) as client:
        await client.write(
            b"POST /get-subtask-result HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        head, _ = await client.response(b"POST")
        assert head.status_code == 100
        await client.write(body)
        head, _ = await client.response(b"POST")
        assert head.status_code == 200
    assert handler.actions() == [("wait_for_end", CHILD)]


async def test_expect_100_continue_over_the_limit_is_refused_at_once(
    small: TaskSocketServer, handler: StubHandler
) -> None:
    async with raw(small.path) as client:
        await client.write(
            b"POST /callback HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 5000\r\n\r\n"
        )
        head, _ = await client.response(b"POST")  # no body was sent, no 100 came first
        assert head.status_code == 413
        assert await client.at_eof()
    assert handler.calls == []


def test_constructor_checks_its_limits(socket_dir: str, handler: StubHandler) -> None:
    path = os.path.join(socket_dir, "x.sock")
    with pytest.raises(ValueError, match="max_body_bytes"):
        serve(path, handler, max_body_bytes=-1)
    for idle in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="idle_timeout"):
            serve(path, handler, idle_timeout=idle)
    server = serve(path, handler)
    assert (server.max_body_bytes, server.idle_timeout) == (DEFAULT_MAX_BODY, DEFAULT_IDLE_TIMEOUT)
    assert DEFAULT_MAX_BODY == 32 * 1024 * 1024
    assert server.path == path
    assert server.requests_served == 0


# ---------------------------------------------------------------- HTTP/1.1


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET /input HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET /input HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n", 400),
        (b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST /callback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET /input HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431),
    ],
)
async def test_malformed_http_is_refused_and_closed(
    server: TaskSocketServer, handler: StubHandler, request_bytes: bytes, status: int
) -> None:
    answer = await exchange(server.path, request_bytes)
    assert answer.startswith(b"HTTP/1.1 %d " % status)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    assert json.loads(body)["message"].startswith("malformed HTTP request: ")
    assert handler.calls == []
    assert (await call(server, "GET", "/input")).status == 200


async def test_keep_alive_serves_many_requests_on_one_connection(
    server: TaskSocketServer, handler: StubHandler
) -> None:
    async with raw(server.path) as client:
        for _ in range(20):
            await client.write(GET_INPUT_RAW)
            head, body = await client.response()
            assert (head.status_code, body) == (200, INPUT_BODY)
            assert header(head, b"connection") is None
        # Refusals that read the whole request keep the connection too.
        await client.write(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await client.response())[0].status_code == 404
        await client.write(
            b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" + GET_INPUT_RAW
        )
        assert (await client.response(b"POST"))[0].status_code == 400
        assert (await client.response())[0].status_code == 200
    assert server.requests_served == 23


async def test_pipelined_requests_are_answered_in_order(
    server: TaskSocketServer, handler: StubHandler
) -> None:
    handler.child_states = [CHILD_RUNNING, failed("boom")]
    poll = b'{"task_run_id":"trn-child"}'
    request = b"POST /get-subtask-result HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        len(poll),
        poll,
    )
    async with raw(server.path) as client:
        await client.write(request * 2 + GET_INPUT_RAW)
        assert (await client.response(b"POST"))[1] == b'{"still_running":true}'
        assert b"boom" in (await client.response(b"POST"))[1]
        assert (await client.response())[1] == INPUT_BODY


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /input HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /input HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n",
        b"GET /input HTTP/1.0\r\n\r\n",
    ],
)
async def test_connection_close_is_honoured(
    server: TaskSocketServer, handler: StubHandler, request_bytes: bytes
) -> None:
    async with raw(server.path) as client:
        await client.write(request_bytes)
        head, body = await client.response()
        assert (head.status_code, body) == (200, INPUT_BODY)
        assert header(head, b"connection") == b"close"
        assert await client.at_eof()


async def test_many_sequential_requests(server: TaskSocketServer, handler: StubHandler) -> None:
    request = build_get_subtask_result("trn-child", UA)
    for _ in range(200):
        response = await call(server, "POST", "/get-subtask-result", request.body)
        assert response.status == 200
    assert server.requests_served == 200
    assert len(handler.actions()) == 200


async def test_concurrent_requests_run_their_handlers_concurrently(
    server: TaskSocketServer, handler: StubHandler
) -> None:
    gate = handler.gate("wait_for_end")
    waiting = asyncio.ensure_future(call(server, "POST", "/get-subtask-result", POLL))
    await asyncio.wait_for(handler.entered["wait_for_end"].wait(), 10)
    results = await asyncio.gather(
        *(call(server, "POST", "/callback", b'{"error":{"details":"x"}}') for _ in range(10))
    )
    assert [response.status for response in results] == [200] * 10
    assert not waiting.done()
    gate.set()
    assert (await waiting).status == 200


# ---------------------------------------------------------------- misbehaving clients


async def test_a_silent_client_blocks_no_one_and_is_dropped(
    impatient: TaskSocketServer, handler: StubHandler
) -> None:
    async with raw(impatient.path) as silent:
        started = time.monotonic()
        for _ in range(5):
            response = await call(impatient, "GET", "/input")
            assert response.status == 200
        assert await silent.at_eof(timeout=10)
        elapsed = time.monotonic() - started
        assert SHORT_IDLE * 0.9 <= elapsed < 5
        # Nothing was sent, so nothing is answered: the connection just ends.
        assert silent.conn.trailing_data == (b"", False)
    assert impatient.requests_served == 5


async def test_an_idle_keep_alive_connection_is_closed_quietly(
    impatient: TaskSocketServer, handler: StubHandler
) -> None:
    async with raw(impatient.path) as client:
        await client.write(GET_INPUT_RAW)
        assert (await client.response())[0].status_code == 200
        assert await client.at_eof(timeout=10)


@pytest.mark.parametrize(
    "partial",
    [
        b"GET /input HTTP/1.1\r\n",
        b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
    ],
)
async def test_an_unfinished_request_gets_a_408(
    impatient: TaskSocketServer, handler: StubHandler, partial: bytes
) -> None:
    started = time.monotonic()
    answer = await exchange(impatient.path, partial)
    assert SHORT_IDLE * 0.9 <= time.monotonic() - started < 5
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive within 0.3 s" in answer
    assert handler.calls == []


async def test_a_trickling_client_is_dropped_on_time(
    impatient: TaskSocketServer, handler: StubHandler
) -> None:
    # Each byte comes well within the idle timeout; the request as a whole does not.
    async with raw(impatient.path) as client:
        started = time.monotonic()
        answer = asyncio.ensure_future(client.response())
        for byte in b"GET /input HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow\r\n":
            if answer.done():
                break
            with contextlib.suppress(ConnectionError):
                await client.write(bytes([byte]))
            await asyncio.sleep(0.05)
        head, _ = await answer
        assert head.status_code == 408
        assert time.monotonic() - started < 2.5
    assert handler.calls == []


async def test_a_client_that_does_not_read_its_answer_is_dropped(
    impatient: TaskSocketServer, handler: StubHandler, caplog: pytest.LogCaptureFixture
) -> None:
    handler.runs[OWN] = running(OWN, ["x" * 12_000_000])  # 16 MB of base64
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    async with raw(impatient.path) as client:
        await client.write(GET_INPUT_RAW)
        await until(lambda: handler.calls != [])
        await asyncio.sleep(SHORT_IDLE * 3)
        received = 0
        with contextlib.suppress(ConnectionResetError):
            while chunk := await asyncio.wait_for(client.reader.read(1 << 20), 10):
                received += len(chunk)
        assert received < 16_000_000
    assert impatient.requests_served == 0
    assert (await call(impatient, "GET", "/input?again")).status == 200
    assert any("did not read its answer" in record.getMessage() for record in caplog.records)


async def test_a_client_leaving_mid_request_affects_no_one(
    server: TaskSocketServer, handler: StubHandler, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        async with raw(server.path) as leaving:
            await leaving.write(
                b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"
            )
            assert (await call(server, "GET", "/input")).status == 200
            leaving.writer.transport.abort()
        async with raw(server.path) as leaving:
            await leaving.write(b"GET /inp")
        assert (await call(server, "GET", "/input")).status == 200
    assert errors_logged(caplog) == []
    assert handler.calls == [("get_run", OWN), ("get_run", OWN)]


async def test_a_client_leaving_while_its_handler_runs_affects_no_one(
    server: TaskSocketServer, handler: StubHandler, caplog: pytest.LogCaptureFixture
) -> None:
    gate = handler.gate("wait_for_end")
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        async with raw(server.path) as leaving:
            await leaving.write(
                b"POST /get-subtask-result HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                % (len(POLL), POLL)
            )
            await asyncio.wait_for(handler.entered["wait_for_end"].wait(), 10)
            leaving.writer.transport.abort()
        await asyncio.sleep(0.05)
        gate.set()
        assert (await call(server, "GET", "/input")).status == 200
    assert errors_logged(caplog) == []


_OUT_OF_DESCRIPTORS = """
import asyncio, os, resource, sys

from render_core.taskserver import TaskSocket
from render_devserver.socket_server import TaskSocketServer


class Handler:
    def register(self, tasks):
        pass


async def main(path):
    server = TaskSocketServer(path, TaskSocket.for_registration(Handler()))
    await server.start()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no new descriptor
    print("ready", flush=True)
    await asyncio.sleep(0.5)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    while server.requests_served == 0:
        await asyncio.sleep(0.01)
    await server.close()


asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux descriptor rules")
async def test_accepting_pauses_when_out_of_descriptors(socket_dir: str) -> None:
    path = os.path.join(socket_dir, "fd.sock")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _OUT_OF_DESCRIPTORS,
        path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        assert await asyncio.wait_for(process.stdout.readline(), 20) == b"ready\n"
        transport = AsyncUnixSocketTransport(path, timeout=15)
        started = time.monotonic()
        response = await transport.send(Request(method="GET", url="http://localhost/input"))
        assert response.status == 200
        assert time.monotonic() - started >= 0.4  # served once descriptors were back
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"accept failed: [Errno 24]" in stderr


# ---------------------------------------------------------------- lifecycle


async def test_socket_is_private_and_removed_on_close(
    socket_dir: str, handler: StubHandler
) -> None:
    path = os.path.join(socket_dir, "task.sock")
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        server = serve(path, handler)
        await server.start()
    finally:
        os.umask(old_umask)
    info = os.lstat(path)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.getuid()
    assert (await call(server, "GET", "/input")).status == 200
    await server.close()
    assert not os.path.exists(path)
    await server.close()  # idempotent
    with pytest.raises(NetworkError):
        await call(server, "GET", "/input")


async def test_close_before_start_and_start_after_close(
    socket_dir: str, handler: StubHandler
) -> None:
    path = os.path.join(socket_dir, "never.sock")
    server = serve(path, handler)
    await server.close()
    with pytest.raises(RuntimeError, match="only once"):
        await server.start()
    assert not os.path.exists(path)


async def test_start_twice_is_refused(server: TaskSocketServer) -> None:
    with pytest.raises(RuntimeError, match="only once"):
        await server.start()


async def test_concurrent_closes_all_wait_for_the_end(server: TaskSocketServer) -> None:
    await asyncio.gather(server.close(), server.close(), server.close())
    assert not os.path.exists(server.path)


async def test_close_drops_open_connections_and_cancels_handlers(
    server: TaskSocketServer, handler: StubHandler
) -> None:
    handler.gate("wait_for_end")
    async with raw(server.path) as idle:
        waiting = asyncio.ensure_future(call(server, "POST", "/get-subtask-result", POLL))
        await asyncio.wait_for(handler.entered["wait_for_end"].wait(), 10)
        await asyncio.wait_for(server.close(), 5)
        assert handler.cancelled == ["wait_for_end"]
        with pytest.raises(NetworkError):
            await waiting
        assert await idle.at_eof(timeout=5)
    assert not os.path.exists(server.path)


async def test_close_right_after_connections_arrive_leaks_nothing(
    server: TaskSocketServer,
) -> None:
    # Some of these are accepted but not yet served when close() runs.
    clients = [await RawClient.open(server.path) for _ in range(20)]
    try:
        await server.close()
        for client in clients:
            assert await client.at_eof(timeout=5)
    finally:
        for client in clients:
            await client.close()
    gc.collect()  # an unclosed transport would warn here (warnings are errors)


@pytest.mark.parametrize("kind", ["file", "directory", "symlink"])
async def test_start_refuses_a_path_that_is_not_a_socket(
    socket_dir: str, handler: StubHandler, kind: str
) -> None:
    path = os.path.join(socket_dir, "task.sock")
    target = os.path.join(socket_dir, "precious")
    with open(target, "w") as file:
        file.write("keep me")
    if kind == "file":
        os.rename(target, path)
    elif kind == "directory":
        os.mkdir(path)
    else:
        os.symlink(target, path)
    server = serve(path, handler)
    with pytest.raises(FileExistsError, match="not a socket"):
        await server.start()
    await server.close()
    assert os.path.lexists(path)  # left as it was
    if kind != "directory":
        with open(path) as file:
            assert file.read() == "keep me"


async def test_start_replaces_a_stale_socket(socket_dir: str, handler: StubHandler) -> None:
    path = os.path.join(socket_dir, "task.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(path)  # bound, never listening: what a killed server leaves behind
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    async with serve(path, handler) as server:
        assert (await call(server, "GET", "/input")).status == 200
    assert not os.path.exists(path)


async def test_start_refuses_a_socket_another_server_listens_on(
    server: TaskSocketServer, handler: StubHandler
) -> None:
    second = serve(server.path, StubHandler())
    with pytest.raises(OSError, match="already listening") as info:
        await second.start()
    assert info.value.errno == errno.EADDRINUSE
    await second.close()  # must not remove the first server's socket
    assert (await call(server, "GET", "/input")).status == 200
    assert handler.calls == [("get_run", OWN)]


async def test_start_refuses_a_socket_whose_listener_is_swamped(
    socket_dir: str, handler: StubHandler
) -> None:
    # A full backlog: connecting would block, which still means someone listens.
    path = os.path.join(socket_dir, "task.sock")
    server = serve(path, handler)
    clients: list[socket.socket] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as busy:
        busy.bind(path)
        busy.listen(0)
        try:
            with contextlib.suppress(BlockingIOError):
                while len(clients) < 100:
                    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    clients.append(client)
                    client.setblocking(False)
                    client.connect(path)
            assert len(clients) < 100
            with pytest.raises(OSError, match="already listening"):
                await server.start()
        finally:
            for client in clients:
                client.close()
    await server.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)  # not ours to remove


async def test_close_leaves_a_replacement_socket_alone(
    socket_dir: str, handler: StubHandler
) -> None:
    path = os.path.join(socket_dir, "task.sock")
    first = serve(path, handler)
    await first.start()
    os.unlink(path)  # someone else took the path over meanwhile
    async with serve(path, handler) as second:
        await first.close()
        assert os.path.exists(path)
        assert (await call(second, "GET", "/input")).status == 200


async def test_start_fails_cleanly_when_bind_fails(socket_dir: str, handler: StubHandler) -> None:
    missing = os.path.join(socket_dir, "no-such-dir", "task.sock")
    server = serve(missing, handler)
    with pytest.raises(FileNotFoundError):
        await server.start()
    too_long = os.path.join(socket_dir, "x" * 200)
    server = serve(too_long, handler)
    with pytest.raises(OSError, match="too long"):
        await server.start()
    assert os.listdir(socket_dir) == []
