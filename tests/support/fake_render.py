"""A loopback fake of Render's REST + SSE API, for the client test-suite.

Theory of operation
-------------------
:class:`FakeRender` stands in for the one part a test machine cannot have: Render's
cloud. It serves the workflow-task endpoints of the REST API, with the event-stream
framing and the error bodies Render uses, on ``127.0.0.1`` (port chosen by the kernel), from an
``aiohttp.web`` application running on its own event loop in a background thread, so
sync and async tests alike talk to it over real sockets.

What goes in: tasks registered with :meth:`FakeRender.add_task` (a Python callable that
computes the result) and HTTP requests from the client under test. What comes out:
exactly the documented shapes -- 202/200/204 success codes, camelCase JSON with every
required key (``attempt`` and ``startedAt`` on each attempt, ``parentTaskRunId`` ``""``
for roots, ``results`` ``[]`` unless completed, ``input``), ``task.completed`` SSE
events for terminal states only, and ``{"id": ..., "message": ...}`` JSON errors.

A run's life: ``pending`` when ``POST /v1/task-runs`` answers, ``running`` on the next
loop iteration, terminal ``duration`` seconds later (an ``asyncio`` timer; never when
``duration`` is ``math.inf``), or earlier by ``DELETE`` or :meth:`FakeRender.finish`.
The task function runs on the server loop when the run turns terminal, so keep it quick.
Every terminal transition takes the next value of one global event counter: that is the
SSE ``id:`` of the run's only event, forever (replays reuse it).

Fault switches (:meth:`FakeRender.fail_next`, :attr:`FakeRender.drop_stream_after`,
:attr:`FakeRender.stall_streams`, :attr:`FakeRender.garbage_before_events`,
:attr:`FakeRender.response_delay`) break the server on purpose; every request is
recorded in :attr:`FakeRender.requests` for assertions.

What it will never do: persist anything, run real worker processes, emit events for
non-terminal states, or answer with a status the spec does not document for success.

Choices where the spec leaves room (documented here so tests can rely on them):

- ``GET /v1/task-runs`` lists newest first; ``GET /v1/tasks`` lists in registration order.
  A cursor is the item's id; the next page holds the items after it in that order.
  ``limit`` defaults to 20, values above 100 are clamped to 100, anything not an integer
  >= 1 is a 400. An unknown cursor is a 400.
- Task references (``POST`` ``task``, ``taskSlug`` filters, ``GET /v1/tasks/{ref}``)
  accept ``<workflow>/<name>``, a bare ``<name>`` or the ``tsk-`` id; a ``:version``
  suffix is ignored. ``ownerId`` and ``workflowVersionId`` filters are accepted and ignored.
- ``idempotencyKey``: the same key with the same task and input answers 202 with the
  existing run (in its current state); the same key with a different task or input is a 409.
- ``drop_stream_after``: the handler closes the TCP transport after the N-th event has
  been written, without the terminating zero-length chunk, so a client sees an
  *incomplete* chunked body (``requests``: ``ChunkedEncodingError``; ``http.client``:
  ``IncompleteRead``), not a clean end of stream.
- ``garbage_before_events`` is written after the ``retry:`` line and before the replay.
- Injected faults are answered before authentication, as a proxy in front would.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict, CIMultiDictProxy

from render_core import codec, models
from render_core.backoff import Backoff

__all__ = ["FAST_RETRY", "FakeRender", "RecordedRequest"]

T = TypeVar("T")
Status = models.TaskRunStatus

EVENTS_PATH = "/v1/task-runs/events"
# What the Go dev server announces: the client's reconnect delay in ms.
SSE_RETRY_MS = 2000
# The documented default page size and Render's documented maximum.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# How long stop() lets in-flight handlers finish before aiohttp cancels them; streams
# are closed before that, so this only bounds slow (response_delay) handlers.
SHUTDOWN_TIMEOUT = 0.5
# Upper bound for a cross-thread call into the server loop; generous, it never waits
# on the network, only on the loop being free.
LOOP_CALL_TIMEOUT = 10.0
# For clients pointed at this fake: their retries, only faster. The same budget as
# the default (four attempts), with waits of 10 to 50 ms.
FAST_RETRY = Backoff(base=0.01, factor=2.0, cap=0.05, max_attempts=4)

_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
_id_counter = itertools.count(1)


def _new_id(prefix: str) -> str:
    """``prefix`` + 20 lowercase base32hex chars, like the xids Render uses.

    Seconds since the epoch in the top 32 of 100 bits and a process-wide counter in the
    rest: ids sort by creation time, and never repeat within a process.
    """
    seconds = int(time.time()) & 0xFFFF_FFFF
    value = seconds << 68 | (next(_id_counter) & ((1 << 68) - 1))
    chars = []
    for _ in range(20):
        chars.append(_BASE32HEX[value & 31])
        value >>= 5
    return prefix + "".join(reversed(chars))


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _dumps(value: Any) -> str:
    """Compact single-line JSON; NaN/Infinity refused (not JSON)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _json(status: int, value: Any) -> web.Response:
    return web.Response(status=status, body=_dumps(value).encode(), content_type="application/json")


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    response = _json(status, {"id": _new_id("err-"), "message": message})
    if headers:
        response.headers.update(headers)
    return response


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (arrival order in :attr:`FakeRender.requests`)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    """Every query pair in order, repeated keys included."""
    headers: CIMultiDictProxy[str]
    """Case-insensitive: ``headers["authorization"]`` works."""
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON (raises ``ValueError`` if it is not JSON)."""
        return json.loads(self.body)

    def query_values(self, name: str) -> list[str]:
        """All values of query parameter ``name``, in order."""
        return [value for key, value in self.query if key == name]


@dataclass
class _Task:
    id: str
    name: str
    created_at: _dt.datetime
    func: Callable[..., Any] | None
    duration: float

    def model(self, workflow_id: str) -> models.Task:
        return models.Task(
            id=self.id, name=self.name, created_at=self.created_at, workflow_id=workflow_id
        )


@dataclass(frozen=True)
class _Event:
    id: int
    frame: bytes
    """The complete SSE frame, blank line included."""


@dataclass
class _Run:
    id: str
    task: _Task
    input: list[Any] | dict[str, Any]
    func: Callable[..., Any] | None
    duration: float
    created_at: _dt.datetime
    status: models.TaskRunStatus = Status.PENDING
    started_at: _dt.datetime | None = None
    completed_at: _dt.datetime | None = None
    results: list[Any] = field(default_factory=list)
    error: str | None = None
    event: _Event | None = None
    timer: asyncio.TimerHandle | None = None

    def _attempt_fields(self) -> dict[str, Any]:
        return {
            "attempt": 0,
            "status": self.status,
            "enqueued_at": self.created_at,
            # Required by 1.x clients even before the attempt starts.
            "started_at": self.started_at or self.created_at,
            "completed_at": self.completed_at,
            "task_run_id": self.id,
        }

    def summary(self) -> models.TaskRun:
        return models.TaskRun(
            id=self.id,
            task_id=self.task.id,
            status=self.status,
            parent_task_run_id="",
            root_task_run_id=self.id,
            retries=0,
            attempts=[models.TaskAttempt(**self._attempt_fields())],
            started_at=self.started_at,
            completed_at=self.completed_at,
        )

    def details(self) -> models.TaskRunDetails:
        attempt = models.TaskAttemptDetails(
            **self._attempt_fields(),
            error=self.error,
            results=list(self.results) if self.status.is_success else None,
        )
        return models.TaskRunDetails(
            id=self.id,
            task_id=self.task.id,
            status=self.status,
            parent_task_run_id="",
            root_task_run_id=self.id,
            retries=0,
            attempts=[attempt],
            started_at=self.started_at,
            completed_at=self.completed_at,
            results=list(self.results),
            input_=self.input,
            error=self.error,
        )


@dataclass(eq=False)
class _Stream:
    run_ids: frozenset[str]
    queue: asyncio.Queue[_Event | None]
    transport: asyncio.BaseTransport | None


@dataclass
class _Fault:
    remaining: int
    status: int
    method: str | None
    path_prefix: str | None
    retry_after: str | None
    body: bytes | None
    content_type: str

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method.upper() == method.upper())
            and (self.path_prefix is None or path.startswith(self.path_prefix))
        )

    def response(self) -> web.Response:
        body = self.body
        if body is None:
            body = _dumps({"id": _new_id("err-"), "message": f"injected {self.status}"}).encode()
        headers = {"Content-Type": self.content_type}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        return web.Response(status=self.status, body=body, headers=headers)


class _BadQuery(Exception):
    """A query parameter is invalid; becomes a 400 naming it."""


class FakeRender:
    """Fake Render REST+SSE on 127.0.0.1, served by aiohttp.web in a background thread.

    The thread runs its own event loop, so sync and async tests can both use it over
    real loopback sockets. Use it as a context manager, or call :meth:`start` and
    :meth:`stop`. Public methods and attributes may be used from any thread.

    ``token``: when set, every request must carry ``Authorization: Bearer <token>``,
    else 401; when ``None`` the header is ignored (local-dev style).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        workflow: str = "my-workflow",
        ping_interval: float = 15.0,
    ) -> None:
        self.token = token
        self.workflow = workflow
        self.workflow_id = _new_id("wfl-")
        self.ping_interval = ping_interval

        self.drop_stream_after: int | None = None
        """Close each SSE connection abruptly once it has sent this many task events
        (replayed ones count): the transport is closed without the final chunk."""
        self.stall_streams: bool = False
        """New SSE connections send headers and then nothing at all (no retry, no pings)."""
        self.lenient_cursors: bool = False
        """Answer an unknown ``cursor`` with an empty page instead of a 400."""
        self.garbage_before_events: bytes | None = None
        """Raw bytes written into each new SSE stream after ``retry:``, before the replay."""
        self.response_delay: float = 0.0
        """Seconds to sleep before answering any non-SSE request."""
        self.honour_last_event_id: bool = True
        """With ``Last-Event-ID: n``, replay only runs whose terminal event id is > n."""

        self._lock = threading.RLock()
        self._tasks: dict[str, _Task] = {}  # by name, registration order
        self._runs: dict[str, _Run] = {}  # by id, creation order
        self._idempotency: dict[str, tuple[str, str]] = {}  # key -> (run id, fingerprint)
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._streams: set[_Stream] = set()
        self._stream_connections = 0
        self._event_ids = itertools.count(1)

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._stopped = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeRender:
        """Bind a free port on 127.0.0.1 and serve; returns ``self``.

        Raises ``RuntimeError`` if called twice.
        """
        if self._thread is not None:
            raise RuntimeError("a FakeRender can be started only once")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._serve, args=(loop,), name="fake-render")
        thread.daemon = True
        self._loop, self._thread = loop, thread
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._astart(), loop).result(LOOP_CALL_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close every connection (open SSE streams included) and join the thread.

        Idempotent; a no-op before :meth:`start`.
        """
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or self._stopped:
            return
        self._stopped = True
        try:
            if not loop.is_closed():
                asyncio.run_coroutine_threadsafe(self._astop(), loop).result(LOOP_CALL_TIMEOUT)
        finally:
            if not loop.is_closed():
                loop.call_soon_threadsafe(loop.stop)
            thread.join(LOOP_CALL_TIMEOUT)

    def __enter__(self) -> FakeRender:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash, no ``/v1``)."""
        if self._port is None:
            raise RuntimeError("FakeRender is not started")
        return f"http://127.0.0.1:{self._port}"

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
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

    async def _astart(self) -> None:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self._front(request, handler)

        app = web.Application(middlewares=[middleware])
        router = app.router
        router.add_post("/v1/task-runs", self._create_run)
        router.add_get("/v1/task-runs", self._list_runs)
        # Before the {run_id} route, which would otherwise take "events" as an id.
        router.add_get(EVENTS_PATH, self._events, allow_head=False)
        router.add_get("/v1/task-runs/{run_id}", self._get_run)
        router.add_delete("/v1/task-runs/{run_id}", self._cancel_run)
        router.add_get("/v1/tasks", self._list_tasks)
        router.add_get("/v1/tasks/{task_ref:.+}", self._get_task)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            # A client that goes away cancels its handler, so open_streams drops at once.
            handler_cancellation=True,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        address = runner.addresses[0]
        self._port = int(address[1])

    async def _astop(self) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.queue.put_nowait(None)
            if stream.transport is not None:
                stream.transport.close()
        with self._lock:
            for run in self._runs.values():
                if run.timer is not None:
                    run.timer.cancel()
                    run.timer = None
        if self._runner is not None:
            await self._runner.cleanup()

    def _on_loop(self, func: Callable[[], T]) -> T:
        """Run ``func`` on the server loop and return its result (or raise its error)."""
        loop = self._loop
        if loop is None or self._stopped or loop.is_closed():
            raise RuntimeError("FakeRender is not running")
        if self._thread is threading.current_thread():
            return func()

        async def call() -> T:
            return func()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(LOOP_CALL_TIMEOUT)

    # ------------------------------------------------------------------ test API

    def add_task(
        self, name: str, func: Callable[..., Any] | None = None, *, duration: float = 0.0
    ) -> str:
        """Register task ``<workflow>/<name>`` and return its ``tsk-`` id.

        ``func(*args)`` (array input) or ``func(**kwargs)`` (object input) computes the
        result when the run turns terminal (default: ``None``); if it raises, the run
        fails with ``error=str(exc)`` (or the exception's type name if that is empty).
        ``duration``: seconds from ``running`` to terminal; ``math.inf`` keeps the run
        running until :meth:`finish` or ``DELETE``. Registering a name again replaces
        its function and duration for new runs and keeps its id.
        """
        if not name or "/" in name or ":" in name:
            raise ValueError(f"invalid task name {name!r}")
        if not duration >= 0:
            raise ValueError(f"duration must be >= 0, got {duration!r}")
        with self._lock:
            existing = self._tasks.get(name)
            if existing is not None:
                existing.func, existing.duration = func, duration
                return existing.id
            task = _Task(_new_id("tsk-"), name, _now(), func, duration)
            self._tasks[name] = task
            return task.id

    def start_run(
        self,
        name: str,
        input_data: list[Any] | dict[str, Any] | None = None,
        *,
        run_id: str | None = None,
    ) -> str:
        """Start a run of task ``name`` as if POSTed, optionally with a chosen id.

        Lets the documents' samples that name a fixed id (``trn-abc123``) run as written.
        """
        task = self._resolve_task(name)
        if task is None:
            raise KeyError(f"unknown task {name!r}")
        run = _Run(
            id=run_id or _new_id("trn-"),
            task=task,
            input=[] if input_data is None else input_data,
            func=task.func,
            duration=task.duration,
            created_at=_now(),
        )
        with self._lock:
            if run.id in self._runs:
                raise ValueError(f"run {run.id} already exists")
            self._runs[run.id] = run
        self._on_loop(lambda: self._start_run(run))
        return run.id

    def run_ids(self) -> list[str]:
        """Ids of all runs, oldest first."""
        with self._lock:
            return list(self._runs)

    def run(self, run_id: str) -> dict[str, Any]:
        """The current ``TaskRunDetails`` JSON of a run; ``KeyError`` if unknown."""
        with self._lock:
            details = self._runs[run_id].details()
        result: dict[str, Any] = codec.unstructure(details)
        return result

    def finish(
        self,
        run_id: str,
        *,
        result: Any = ...,
        error: str | None = None,
        status: str | None = None,
    ) -> None:
        """Make a run terminal now and emit its event.

        ``status`` defaults to ``"failed"`` when ``error`` is given, else ``"completed"``.
        A successful run's results are ``[result]``, or what the task function computes
        when ``result`` is omitted (which may fail the run instead). ``error`` is kept on
        any status; a failed run without one gets ``"failed"``.

        Raises ``KeyError`` for an unknown run, ``ValueError`` for a run already terminal,
        a non-terminal ``status`` or a result that is not JSON, ``RuntimeError`` when the
        fake is not running.
        """
        if status is None:
            target = Status.FAILED if error is not None else Status.COMPLETED
        else:
            target = Status(status)
            if not target.is_known or not target.is_terminal:
                raise ValueError(f"finish() needs a terminal status, got {status!r}")
        if result is not ...:
            _dumps([result])  # refuse non-JSON results here, in the caller's thread

        def apply() -> None:
            with self._lock:
                run = self._runs[run_id]
                if run.status.is_terminal:
                    raise ValueError(f"task run {run_id} is already {run.status}")
                if target.is_success:
                    if result is ...:
                        outcome, results, outcome_error = self._compute(run)
                        if outcome.is_success:
                            outcome = target
                    else:
                        outcome, results, outcome_error = target, [result], None
                    self._finalize(run, outcome, results, error or outcome_error)
                elif target is Status.FAILED:
                    self._finalize(run, target, [], error or "failed")
                else:
                    self._finalize(run, target, [], error)

        self._on_loop(apply)

    def fail_next(
        self,
        count: int,
        status: int = 503,
        *,
        method: str | None = None,
        path_prefix: str | None = None,
        retry_after: str | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Answer the next ``count`` matching requests with ``status``.

        Matching: ``method`` (any if ``None``) and a path starting with ``path_prefix``
        (any if ``None``). The body defaults to ``{"id": ..., "message": "injected
        <status>"}``; pass ``body``/``content_type`` for a non-JSON error page.
        ``retry_after`` is sent verbatim as ``Retry-After``. Rules are tried in the
        order they were added; each counts down as it is used.
        """
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        fault = _Fault(count, status, method, path_prefix, retry_after, body, content_type)
        with self._lock:
            self._faults.append(fault)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def stream_connections(self) -> int:
        """How many SSE connections were opened in total."""
        with self._lock:
            return self._stream_connections

    @property
    def open_streams(self) -> int:
        """How many SSE connections are open now."""
        with self._lock:
            return len(self._streams)

    # ------------------------------------------------------------------ run lifecycle
    # Everything below runs on the server loop.

    def _start_run(self, run: _Run) -> None:
        with self._lock:
            if run.status is not Status.PENDING or self._loop is None:
                return
            run.status = Status.RUNNING
            run.started_at = _now()
            if math.isfinite(run.duration):
                run.timer = self._loop.call_later(run.duration, self._complete, run)

    def _complete(self, run: _Run) -> None:
        with self._lock:
            run.timer = None
            if not run.status.is_terminal:
                self._finalize(run, *self._compute(run))

    @staticmethod
    def _compute(run: _Run) -> tuple[models.TaskRunStatus, list[Any], str | None]:
        try:
            if run.func is None:
                value = None
            elif isinstance(run.input, dict):
                value = run.func(**run.input)
            else:
                value = run.func(*run.input)
            _dumps([value])
        except Exception as exc:
            return Status.FAILED, [], str(exc) or type(exc).__name__
        return Status.COMPLETED, [value], None

    def _finalize(
        self,
        run: _Run,
        status: models.TaskRunStatus,
        results: list[Any],
        error: str | None,
    ) -> None:
        """Make ``run`` terminal, give it the next event id and publish its event."""
        with self._lock:
            if run.timer is not None:
                run.timer.cancel()
                run.timer = None
            run.status, run.results, run.error = status, results, error
            run.completed_at = _now()
            event_id = next(self._event_ids)
            data = _dumps(codec.unstructure(run.details()))
            frame = f"id: {event_id}\nevent: task.completed\ndata: {data}\n\n".encode()
            run.event = _Event(event_id, frame)
            for stream in self._streams:
                if run.id in stream.run_ids:
                    stream.queue.put_nowait(run.event)

    def _resolve_task(self, ref: str) -> _Task | None:
        with self._lock:
            for task in self._tasks.values():
                if task.id == ref:
                    return task
            slug = ref.partition(":")[0]
            workflow, _, name = slug.rpartition("/")
            if workflow and workflow != self.workflow:
                return None
            return self._tasks.get(name)

    # ------------------------------------------------------------------ HTTP front

    async def _front(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record, delay, inject faults, authenticate, then route; errors become JSON."""
        try:
            body = await request.read()
            record = RecordedRequest(
                method=request.method,
                path=request.path,
                query=list(request.query.items()),
                headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                body=body,
            )
            with self._lock:
                self._requests.append(record)
            if request.path != EVENTS_PATH and self.response_delay > 0:
                await asyncio.sleep(self.response_delay)
            with self._lock:
                fault = next(
                    (f for f in self._faults if f.matches(request.method, request.path)), None
                )
                if fault is not None:
                    fault.remaining -= 1
            if fault is not None:
                return fault.response()
            if self.token is not None and (
                request.headers.get("Authorization") != f"Bearer {self.token}"
            ):
                return _error(401, "unauthorized: missing or invalid API key")
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            if isinstance(exc, web.HTTPMethodNotAllowed):
                return _error(
                    405,
                    f"method {request.method} not allowed on {request.path}",
                    {"Allow": exc.headers["Allow"]},
                )
            if exc.status == 404:
                return _error(404, f"not found: {request.method} {request.path}")
            return _error(exc.status, exc.reason)
        except _BadQuery as exc:
            return _error(400, str(exc))

    # ------------------------------------------------------------------ endpoints

    async def _create_run(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return _error(400, "request body is not valid JSON")
        if not isinstance(payload, dict):
            return _error(400, "request body must be a JSON object")
        slug = payload.get("task")
        if not isinstance(slug, str) or not slug:
            return _error(400, "task: a non-empty string (the task slug) is required")
        if "input" not in payload:
            return _error(400, "input: required (an array or an object of arguments)")
        input_ = payload["input"]
        if not isinstance(input_, (list, dict)):
            return _error(400, "input: must be an array or an object")
        key = payload.get("idempotencyKey")
        if key is not None and (not isinstance(key, str) or not key):
            return _error(400, "idempotencyKey: must be a non-empty string")
        task = self._resolve_task(slug)
        if task is None:
            return _error(404, f"task not found: {slug}")
        fingerprint = _dumps([task.id, input_])
        with self._lock:
            if key is not None and key in self._idempotency:
                run_id, used_for = self._idempotency[key]
                if used_for != fingerprint:
                    return _error(
                        409, f"idempotencyKey {key!r} was already used for a different request"
                    )
                return _json(202, codec.unstructure(self._runs[run_id].summary()))
            run = _Run(
                id=_new_id("trn-"),
                task=task,
                input=input_,
                func=task.func,
                duration=task.duration,
                created_at=_now(),
            )
            self._runs[run.id] = run
            if key is not None:
                self._idempotency[key] = (run.id, fingerprint)
            body = codec.unstructure(run.summary())
        asyncio.get_running_loop().call_soon(self._start_run, run)
        return _json(202, body)

    async def _get_run(self, request: web.Request) -> web.StreamResponse:
        run_id = request.match_info["run_id"]
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return _error(404, f"task run not found: {run_id}")
            return _json(200, codec.unstructure(run.details()))

    async def _cancel_run(self, request: web.Request) -> web.StreamResponse:
        run_id = request.match_info["run_id"]
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return _error(404, f"task run not found: {run_id}")
            if run.status.is_terminal:
                return _error(409, f"task run {run_id} is not active (status {run.status})")
            self._finalize(run, Status.CANCELED, [], None)
        return web.Response(status=204)

    async def _list_runs(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        limit = _limit(query.getall("limit", []))
        with self._lock:
            runs = _after_cursor(
                list(reversed(self._runs.values())), query.get("cursor"), self.lenient_cursors
            )
            slugs = query.getall("taskSlug", [])
            if slugs:
                task_ids = {t.id for t in map(self._resolve_task, slugs) if t is not None}
                runs = [r for r in runs if r.task.id in task_ids]
            roots = set(query.getall("rootTaskRunId", []))
            if roots:
                runs = [r for r in runs if r.id in roots]  # every run here is a root
            workflows = set(query.getall("workflowId", []))
            if workflows and self.workflow_id not in workflows:
                runs = []
            items = [
                {"taskRun": codec.unstructure(r.summary()), "cursor": r.id} for r in runs[:limit]
            ]
        return _json(200, items)

    async def _list_tasks(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        limit = _limit(query.getall("limit", []))
        with self._lock:
            tasks = _after_cursor(
                list(self._tasks.values()), query.get("cursor"), self.lenient_cursors
            )
            slugs = query.getall("taskSlug", [])
            if slugs:
                task_ids = {t.id for t in map(self._resolve_task, slugs) if t is not None}
                tasks = [t for t in tasks if t.id in task_ids]
            workflows = set(query.getall("workflowId", []))
            if workflows and self.workflow_id not in workflows:
                tasks = []
            items = [
                {"task": codec.unstructure(t.model(self.workflow_id)), "cursor": t.id}
                for t in tasks[:limit]
            ]
        return _json(200, items)

    async def _get_task(self, request: web.Request) -> web.StreamResponse:
        ref = request.match_info["task_ref"]
        task = self._resolve_task(ref)
        if task is None:
            return _error(404, f"task not found: {ref}")
        return _json(200, codec.unstructure(task.model(self.workflow_id)))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        run_ids = frozenset(_split_ids(request.query.getall("taskRunIds", [])))
        if not run_ids:
            return _error(400, "taskRunIds: at least one task run id is required")
        last_seen = _last_event_id(request) if self.honour_last_event_id else None
        stall = self.stall_streams
        stream = _Stream(run_ids, asyncio.Queue(), request.transport)
        with self._lock:
            # Replay and subscription under one lock: no event falls between the two.
            for event in sorted(
                (
                    run.event
                    for run_id in run_ids
                    if (run := self._runs.get(run_id)) is not None and run.event is not None
                ),
                key=lambda e: e.id,
            ):
                if last_seen is None or event.id > last_seen:
                    stream.queue.put_nowait(event)
            self._streams.add(stream)
            self._stream_connections += 1
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )
        getter: asyncio.Future[_Event | None] | None = None
        try:
            await response.prepare(request)
            if stall:
                while await stream.queue.get() is not None:
                    pass
                return response
            await response.write(f"retry: {SSE_RETRY_MS}\n\n".encode())
            if self.garbage_before_events:
                await response.write(self.garbage_before_events)
            sent = 0
            while True:
                drop_after = self.drop_stream_after
                if drop_after is not None and sent >= drop_after:
                    if request.transport is not None:
                        # Abrupt: no terminating chunk; what was written is still flushed.
                        request.transport.close()
                    break
                if getter is None:
                    # One getter kept across pings: a timed-out wait never loses an event.
                    getter = asyncio.ensure_future(stream.queue.get())
                done, _ = await asyncio.wait({getter}, timeout=self.ping_interval)
                if not done:
                    await response.write(b": ping\n\n")
                    continue
                item, getter = getter.result(), None
                if item is None:
                    break
                await response.write(item.frame)
                sent += 1
        except ConnectionError:
            pass  # the client went away; nothing left to tell it
        finally:
            if getter is not None:
                getter.cancel()
            with self._lock:
                self._streams.discard(stream)
        return response


def _split_ids(values: Iterable[str]) -> Iterator[str]:
    """``taskRunIds`` both repeated and comma-separated."""
    for value in values:
        for part in value.split(","):
            if part.strip():
                yield part.strip()


def _last_event_id(request: web.Request) -> int | None:
    text = request.headers.get("Last-Event-ID", "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _limit(values: list[str]) -> int:
    if not values:
        return DEFAULT_LIMIT
    text = values[0].strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise _BadQuery(f"limit: must be an integer from 1 to {MAX_LIMIT}, got {values[0]!r}")
    return min(int(text), MAX_LIMIT)


_Item = TypeVar("_Item", _Run, _Task)


def _after_cursor(items: list[_Item], cursor: str | None, lenient: bool = False) -> list[_Item]:
    """The items after the one whose id is ``cursor`` (all of them without a cursor).

    An unknown cursor is a 400, or an empty page when ``lenient``.
    """
    if cursor is None:
        return items
    for index, item in enumerate(items):
        if item.id == cursor:
            return items[index + 1 :]
    if lenient:
        return []
    raise _BadQuery(f"cursor: unknown cursor {cursor!r}")
