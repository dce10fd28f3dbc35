"""A loopback fake of the task-socket server, for worker and transport tests.

Theory of operation
-------------------
:class:`FakeTaskSocket` plays the part the platform (or ``render workflows dev``) plays
for a worker process: it listens on a Unix-domain socket and answers the five
task-socket endpoints over HTTP/1.1, one request per connection, always with
``Connection: close``. It is written on asyncio + h11 (the same library the SDK's own
transport uses, but on the server side), on its own event loop in a background
thread (:class:`BackgroundLoop`), so sync and async tests alike talk to it over a
real socket.

What goes in: the answers a test chooses (:meth:`FakeTaskSocket.serve_input`,
:attr:`FakeTaskSocket.subtask_handler`, :meth:`FakeTaskSocket.fail_next`) and requests
from the worker under test. What comes out: the documented shapes, snake_case JSON,
b64 payloads (standard alphabet, padded), empty 200 bodies for ``/callback`` and
``/register-tasks``, and ``{"message": ...}`` JSON for errors. Every request is
recorded, in arrival order, in :attr:`FakeTaskSocket.requests` -- injected failures
and rejected requests included.

Choices where the spec leaves room (tests may rely on them):

- The query string is ignored for routing (1.x sends ``GET /input?sdk_started_at=...``).
- ``GET /input`` before :meth:`serve_input` answers what the Go dev server answers in
  register mode: ``{"input": null, "task_name": ""}``.
- A sub-run "runs" for :attr:`subtask_polls` polls (the value when it was created):
  that many ``/get-subtask-result`` calls answer ``{"still_running": true}``; the next
  one calls :attr:`subtask_handler` once and completes (output
  ``b64(json.dumps([result]))``, always wrapped) or fails (``details =
  str(exc)``). Later polls repeat the same final answer.
- ``idempotency_key``: the same key answers the same ``task_run_id`` (whatever the
  task, input or ``created_at``) and starts nothing new.
- ``/callback`` accepts ``{"complete": {"output": str}}`` or ``{"error": {"details":
  str, ...}}`` (anything else is a 400); a second callback is accepted and recorded
  too, as the platform must (workers retry a callback they could not confirm).
- Unknown path -> 404, known path with the wrong method -> 405, a POST body that is
  not a JSON object -> 400; all with ``{"message": ...}``.
- Failures injected by :meth:`fail_next` are answered after the request was read
  whole, before routing; status ``0`` closes the connection without a byte.

What it will never do: run tasks in processes, keep a connection open for a second
request, or check authentication.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import http
import itertools
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import h11

__all__ = ["BackgroundLoop", "FakeTaskSocket", "SocketRequest", "SubtaskRun"]

T = TypeVar("T")

# Upper bound for a cross-thread call into the server loop; it never waits on a
# client, only on the loop being free.
LOOP_CALL_TIMEOUT = 10.0
# sun_path holds 108 bytes on Linux and 104 on macOS, NUL included; stay well under.
MAX_SOCKET_PATH = 100
# Requests are small JSON documents; this only stops a runaway client.
MAX_REQUEST_BODY = 64 * 1024 * 1024
_CHUNK = 64 * 1024
SOCKET_NAME = "task.sock"


def b64json(value: Any) -> str:
    """``b64(json.dumps(value))``: the payload encoding of the task socket."""
    return base64.b64encode(json.dumps(value).encode()).decode("ascii")


def unb64json(text: str | None) -> Any:
    """Inverse of :func:`b64json`; empty or missing -> ``[]``. Raises ValueError."""
    if not text:
        return []
    return json.loads(base64.b64decode(text, validate=True))


class BackgroundLoop:
    """An asyncio event loop running in a daemon thread; call coroutines into it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread. Raises RuntimeError if called twice."""
        if self._thread is not None:
            raise RuntimeError(f"{self._name} was already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._serve, args=(loop,), name=self._name, daemon=True)
        self._loop, self._thread = loop, thread
        thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = LOOP_CALL_TIMEOUT) -> T:
        """Run ``coro`` on the loop, wait for its result (or its exception)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            raise RuntimeError(f"{self._name} is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def stop(self) -> None:
        """Stop the loop, cancel what is left on it, close it and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(loop.stop)
        thread.join(LOOP_CALL_TIMEOUT)

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


@dataclass(frozen=True)
class SocketRequest:
    """One request as the fake received it (arrival order in :attr:`FakeTaskSocket.requests`)."""

    method: str
    path: str
    """The target without its query string."""
    query: tuple[tuple[str, str], ...]
    """Every query pair in order, repeated keys included."""
    headers: tuple[tuple[str, str], ...]
    """As sent: original spelling and order."""
    body: bytes
    target: str
    """The request target exactly as sent (path and query)."""
    received_at: float = dataclasses.field(default_factory=time.monotonic)
    """``time.monotonic()`` when the request was complete."""

    def json(self) -> Any:
        """The body decoded as JSON (raises ``ValueError`` if it is not JSON)."""
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def query_values(self, name: str) -> list[str]:
        """All values of query parameter ``name``, in order."""
        return [value for key, value in self.query if key == name]


@dataclass
class SubtaskRun:
    """A sub-run started by ``POST /run-subtask`` (see :attr:`FakeTaskSocket.subtasks`)."""

    id: str
    task_name: str
    input: Any
    """The decoded input (``[]`` when none was sent)."""
    idempotency_key: str | None
    created_at: str | None
    polls_left: int
    polls: int = 0
    """How many times ``/get-subtask-result`` asked about this run."""
    final: dict[str, Any] | None = None
    """The final ``SubtaskResultResponse`` once the run finished."""


SubtaskHandler = Callable[[str, Any], Any]


@dataclass
class _Fault:
    remaining: int
    status: int
    path: str | None
    body: bytes


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes = b""
    content_type: str | None = None


def _json_answer(status: int, value: Any) -> _Answer:
    return _Answer(status, json.dumps(value).encode(), "application/json")


def _message(status: int, message: str) -> _Answer:
    return _json_answer(status, {"message": message})


class _BadRequest(Exception):
    """A request body the endpoint refuses; becomes a 400 with this message."""


def _identity(task_name: str, value: Any) -> Any:
    return value


class FakeTaskSocket:
    """Fake task-socket server on a Unix socket, served by asyncio + h11 in a background thread.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Public methods
    and attributes may be used from any thread. ``directory``: where to create the
    fresh (mode 0700) directory that holds the socket; default ``/tmp``, to keep the
    path under the ``sun_path`` limit.
    """

    def __init__(self, directory: str | None = None) -> None:
        self._parent = directory
        self.subtask_handler: SubtaskHandler | None = None
        """``handler(task_name, decoded_input) -> result``; None returns the input unchanged."""
        self.subtask_polls = 2
        """How many polls a new sub-run answers ``still_running`` before finishing."""

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[SocketRequest] = []
        self._callbacks: list[dict[str, Any]] = []
        self._registrations: list[dict[str, Any]] = []
        self._faults: list[_Fault] = []
        self._subtasks: dict[str, SubtaskRun] = {}
        self._by_key: dict[str, str] = {}
        self._input: dict[str, Any] = {"input": None, "task_name": ""}
        self._run_numbers = itertools.count(1)

        self._loop = BackgroundLoop("fake-task-socket")
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()  # touched on the loop only
        self._directory: str | None = None
        self._path: str | None = None
        self._started = self._stopped = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeTaskSocket:
        """Create the socket and serve; returns ``self``. Raises RuntimeError if called twice."""
        if self._started:
            raise RuntimeError("a FakeTaskSocket can be started only once")
        self._started = True
        parent = self._parent
        if parent is None and os.path.isdir("/tmp"):
            parent = "/tmp"
        self._directory = tempfile.mkdtemp(prefix="rts-", dir=parent)
        path = os.path.join(self._directory, SOCKET_NAME)
        try:
            if len(os.fsencode(path)) >= MAX_SOCKET_PATH:
                raise ValueError(f"socket path too long for sun_path: {path!r}")
            self._path = path
            self._loop.start()
            self._loop.run(self._astart())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close the server and every connection, join the thread, remove the socket
        file and its directory. Idempotent."""
        if self._stopped or not self._started:
            return
        self._stopped = True
        try:
            if self._server is not None:
                with contextlib.suppress(RuntimeError):
                    self._loop.run(self._astop())
        finally:
            self._loop.stop()
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)

    def __enter__(self) -> FakeTaskSocket:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def path(self) -> str:
        """The socket's filesystem path (what ``RENDER_SDK_SOCKET_PATH`` should say)."""
        if self._path is None:
            raise RuntimeError("FakeTaskSocket is not started")
        return self._path

    async def _astart(self) -> None:
        self._server = await asyncio.start_unix_server(self._handle, path=self.path)

    async def _astop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        # From 3.12 wait_closed() also waits for open connections, closed just above.
        await asyncio.wait_for(self._server.wait_closed(), LOOP_CALL_TIMEOUT / 2)

    # ------------------------------------------------------------------ test API

    def serve_input(self, task_name: str, input_value: Any, **extra: Any) -> None:
        """Answer ``GET /input`` with ``task_name`` and ``b64(json.dumps(input_value))``.

        ``extra`` keys are sent as well (``task_run_id=...``, ``root_task_run_id=...``).
        """
        with self._lock:
            self._input = {"task_name": task_name, "input": b64json(input_value), **extra}

    def fail_next(
        self, count: int, status: int = 503, *, path: str | None = None, body: bytes = b""
    ) -> None:
        """Answer the next ``count`` requests (to ``path`` only, if given) with ``status``.

        ``body`` is sent as is (``Content-Type: application/json`` when non-empty).
        ``status`` 0 closes the connection after reading the request, without answering.
        Faults queue up: the oldest one that matches a request answers it.
        """
        if count < 0 or not (status == 0 or 200 <= status <= 599):
            raise ValueError(f"bad fault: count={count!r}, status={status!r}")
        with self._lock:
            self._faults.append(_Fault(count, status, path, body))

    @property
    def requests(self) -> list[SocketRequest]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """The accepted ``/callback`` bodies, decoded, in arrival order."""
        with self._lock:
            return list(self._callbacks)

    @property
    def registrations(self) -> list[dict[str, Any]]:
        """The accepted ``/register-tasks`` bodies, decoded, in arrival order."""
        with self._lock:
            return list(self._registrations)

    @property
    def subtasks(self) -> list[SubtaskRun]:
        """Snapshots of every sub-run, in creation order."""
        with self._lock:
            return [dataclasses.replace(run) for run in self._subtasks.values()]

    def wait_for_callback(self, timeout: float = 10.0, *, count: int = 1) -> dict[str, Any]:
        """Block until ``count`` callbacks arrived; return the ``count``-th (the first by
        default). Raises the builtin ``TimeoutError`` after ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._callbacks) >= count, timeout):
                raise TimeoutError(f"no callback #{count} within {timeout} s")
            return self._callbacks[count - 1]

    # ------------------------------------------------------------------ wire

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._serve_connection(reader, writer)
        except (OSError, h11.LocalProtocolError):
            pass  # the client went away; nothing to answer
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            received = await _read_request(conn, reader)
        except h11.RemoteProtocolError as exc:
            refusal = _message(exc.error_status_hint, f"bad request: {exc}")
            writer.write(_encode(conn, refusal))
            await writer.drain()
            return
        if received is None:
            return  # closed before sending a request
        head, body = received
        target = head.target.decode("latin-1")
        path, _, query = target.partition("?")
        request = SocketRequest(
            method=head.method.decode("ascii"),
            path=path,
            query=tuple(urllib.parse.parse_qsl(query, keep_blank_values=True)),
            headers=tuple(
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in head.headers.raw_items()
            ),
            body=body,
            target=target,
        )
        with self._changed:
            self._requests.append(request)
            answer = self._answer(request)
            self._changed.notify_all()
        if answer is None:
            return
        writer.write(_encode(conn, answer))
        await writer.drain()

    # ------------------------------------------------------------------ routing
    # Runs on the loop thread with the lock held: no await, so requests never interleave.

    def _answer(self, request: SocketRequest) -> _Answer | None:
        fault = next(
            (f for f in self._faults if f.remaining > 0 and f.path in (None, request.path)),
            None,
        )
        if fault is not None:
            fault.remaining -= 1
            if fault.status == 0:
                return None
            return _Answer(fault.status, fault.body, "application/json" if fault.body else None)

        routes: dict[str, tuple[str, Callable[[Any], _Answer]]] = {
            "/input": ("GET", self._get_input),
            "/callback": ("POST", self._post_callback),
            "/register-tasks": ("POST", self._register_tasks),
            "/run-subtask": ("POST", self._run_subtask),
            "/get-subtask-result": ("POST", self._get_subtask_result),
        }
        route = routes.get(request.path)
        if route is None:
            return _message(404, f"no route for {request.path}")
        method, handler = route
        if request.method != method:
            return _message(405, f"{request.path} takes {method}, not {request.method}")
        payload: Any = None
        try:
            if method == "POST":
                try:
                    payload = request.json()
                except ValueError as exc:
                    raise _BadRequest(f"the body is not JSON: {exc}") from exc
                if not isinstance(payload, dict):
                    raise _BadRequest("the body must be a JSON object")
            return handler(payload)
        except _BadRequest as exc:
            return _message(400, str(exc))

    def _get_input(self, payload: Any) -> _Answer:
        return _json_answer(200, self._input)

    def _post_callback(self, payload: dict[str, Any]) -> _Answer:
        complete, error = payload.get("complete"), payload.get("error")
        if (complete is None) == (error is None):
            raise _BadRequest("exactly one of complete and error is required")
        if complete is not None and not (
            isinstance(complete, dict) and isinstance(complete.get("output"), str)
        ):
            raise _BadRequest("complete.output must be a string")
        if error is not None and not (
            isinstance(error, dict) and isinstance(error.get("details"), str)
        ):
            raise _BadRequest("error.details must be a string")
        self._callbacks.append(payload)
        return _Answer(200)

    def _register_tasks(self, payload: dict[str, Any]) -> _Answer:
        if not isinstance(payload.get("tasks"), list):
            raise _BadRequest("tasks must be a list")
        self._registrations.append(payload)
        return _Answer(200)

    def _run_subtask(self, payload: dict[str, Any]) -> _Answer:
        task_name = payload.get("task_name")
        if not isinstance(task_name, str) or not task_name:
            raise _BadRequest("task_name must be a non-empty string")
        key = payload.get("idempotency_key")
        if key is not None and key in self._by_key:
            return _json_answer(200, {"task_run_id": self._by_key[key]})
        raw_input = payload.get("input")
        if raw_input is not None and not isinstance(raw_input, str):
            raise _BadRequest("input must be a base64 string")
        try:
            value = unb64json(raw_input)
        except (ValueError, binascii.Error) as exc:
            raise _BadRequest(f"input is not base64 JSON: {exc}") from exc
        run = SubtaskRun(
            id=f"trn-sub-{next(self._run_numbers)}",
            task_name=task_name,
            input=value,
            idempotency_key=key,
            created_at=payload.get("created_at"),
            polls_left=max(0, self.subtask_polls),
        )
        self._subtasks[run.id] = run
        if key is not None:
            self._by_key[key] = run.id
        return _json_answer(200, {"task_run_id": run.id})

    def _get_subtask_result(self, payload: dict[str, Any]) -> _Answer:
        run_id = payload.get("task_run_id")
        if not isinstance(run_id, str):
            raise _BadRequest("task_run_id must be a string")
        run = self._subtasks.get(run_id)
        if run is None:
            return _message(404, f"task run {run_id} not found")
        run.polls += 1
        if run.final is None and run.polls_left > 0:
            run.polls_left -= 1
            return _json_answer(200, {"still_running": True})
        if run.final is None:
            run.final = self._finish(run)
        return _json_answer(200, run.final)

    def _finish(self, run: SubtaskRun) -> dict[str, Any]:
        handler = self.subtask_handler or _identity
        try:
            output = b64json([handler(run.task_name, run.input)])
        except Exception as exc:  # the child task failed; its message is the result
            return {"still_running": False, "error": {"details": str(exc)}}
        return {"still_running": False, "complete": {"output": output}}


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request, bytes] | None:
    """One whole request from the connection, or None if it closed before one began."""
    head: h11.Request | None = None
    body: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(_CHUNK))
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_REQUEST_BODY:
                raise h11.RemoteProtocolError("request body too large", error_status_hint=413)
            body.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return head, b"".join(body)
        else:  # ConnectionClosed before a request
            return None


def _encode(conn: h11.Connection, answer: _Answer) -> bytes:
    try:
        reason = http.HTTPStatus(answer.status).phrase
    except ValueError:
        reason = ""
    headers = [("Content-Length", str(len(answer.body))), ("Connection", "close")]
    if answer.content_type is not None:
        headers.insert(0, ("Content-Type", answer.content_type))
    parts = [conn.send(h11.Response(status_code=answer.status, headers=headers, reason=reason))]
    if answer.body:
        parts.append(conn.send(h11.Data(data=answer.body)))
    parts.append(conn.send(h11.EndOfMessage()))
    return b"".join(part for part in parts if part)
