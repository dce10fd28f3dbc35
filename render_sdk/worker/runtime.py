"""``Workflows``: define tasks, and the worker that runs them over the task socket.

The platform (Render's cloud, or the dev server) starts the user's program with
``RENDER_SDK_MODE`` (``register`` or ``run``) and ``RENDER_SDK_SOCKET_PATH``.
``app.start()`` then either registers every task of the process
or runs exactly one attempt of one task: ``GET /input``, call the function,
``POST /callback``, exit (0 on success, 1 on failure).

Inside a running task, calling another task returns a :class:`TaskInstance` that
starts a subtask at once; ``await`` gives its result and ``asyncio.gather`` fans
out. Outside a running task, a task is just its function, which keeps task code
unit-testable. Sync task functions run in a worker thread so the event loop keeps
serving subtask polls. The protocol itself lives in :mod:`render_core.callback`
and :mod:`render_core.tasks`; this module only wires it to a socket.

Cold start matters (every attempt is a new process): nothing here imports an HTTP
client library; the socket transport is imported when ``start()`` runs.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import os
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
    cast,
    overload,
)

from render_core import callback
from render_core.config import user_agent
from render_core.convert import ConversionError, unstructure_any
from render_core.effects import Flow, run_async, run_sync
from render_core.errors import RenderError, TaskRunError
from render_core.tasks import (
    Options,
    Retry,
    TaskInputError,
    TaskRegistry,
    TaskSpec,
    bind_arguments,
    check_plan,
    check_retry,
    check_timeout,
    encode_result,
    registration_payload,
)
from render_sdk import _otel

if TYPE_CHECKING:
    import asyncio

    from render_core.http import Request
    from render_sdk.worker._metadata import TaskRunMetadata

__all__ = [
    "Options",
    "Retry",
    "TaskCallable",
    "TaskContext",
    "TaskDefinition",
    "TaskInstance",
    "TaskRegistry",
    "TaskRunMetadata",
    "WorkflowTaskContext",
    "Workflows",
    "start",
    "task",
]

# A task's own inputs (everything after a leading context) and its result.
P = ParamSpec("P")
R = TypeVar("R")

ENV_MODE = "RENDER_SDK_MODE"
ENV_SOCKET_PATH = "RENDER_SDK_SOCKET_PATH"
# Set by this SDK's dev server only: add input skeletons to the registration.
ENV_DEV_EXAMPLES = "RENDER_SDK_DEV_EXAMPLES"


class _ProcessState:
    """Once-per-process facts: the worker may start once, atexit is hooked once.

    ``apps`` holds every live ``Workflows`` object, so that ``start()`` can find the
    other copy of an app whose file was imported twice; ``auto_start`` the apps
    that asked to start at exit.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = False
        self.auto_start_registered = False
        self.apps: weakref.WeakSet[Workflows] = weakref.WeakSet()
        self.auto_start: list[Workflows] = []
        self.default_app: Workflows | None = None


_PROCESS = _ProcessState()

_RUNTIME: contextvars.ContextVar[_Runtime | None] = contextvars.ContextVar(
    "render_sdk_runtime", default=None
)


class TaskInstance(Generic[R]):
    """A subtask started from a running task; ``await`` it for the child's result.

    Raises :class:`~render_core.errors.TaskRunError` if the child fails.
    """

    def __init__(self, name: str, future: asyncio.Future[R]) -> None:
        self.name = name
        self._future = future

    def __await__(self) -> Generator[Any, None, R]:
        return self._future.__await__()

    def __repr__(self) -> str:
        state = "done" if self._future.done() else "running"
        return f"<TaskInstance {self.name!r} {state}>"


class TaskDefinition(Generic[P, R]):
    """What ``@app.task`` returns: a registered task.

    ``name`` is the registered name, ``func`` the undecorated function and
    ``options`` the :class:`~render_core.tasks.Options` it registers. Calling it
    inside a running task starts a subtask (``await square(3)``); outside one it is
    a plain call of ``func`` with exactly the arguments given, which keeps task
    code unit-testable. ``ctx.run(definition, ...)`` is the 1.x way to start it.
    """

    def __init__(self, spec: TaskSpec, workflow_slug: str | None = None) -> None:
        functools.update_wrapper(self, spec.func)
        self.spec = spec
        self.workflow_slug = workflow_slug
        """The slug of the workflow that runs it, from ``Workflows(slug=...)``: what
        ``render.workflows.run(definition, ...)`` starts."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def func(self) -> Callable[..., Any]:
        """The undecorated function."""
        return self.spec.func

    @property
    def options(self) -> Options:
        return self.spec.options

    @property
    def definition(self) -> TaskSpec:
        """The registered record (name, function, options, parameters)."""
        return self.spec

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        runtime = _RUNTIME.get()
        if runtime is None:
            return self.spec.func(*args, **kwargs)
        return runtime.start_subtask(self.spec, args, kwargs)

    def __repr__(self) -> str:
        return f"TaskDefinition(name={self.spec.name!r})"


# The 0.6 SDK's name for what ``@app.task`` returns.
TaskCallable = TaskDefinition


class TaskContext(Protocol):
    """What a task's context parameter receives (a :class:`typing.Protocol`).

    A task takes a context when its first parameter is annotated ``TaskContext``,
    or is unannotated and named ``ctx`` or ``context``; the context is never one
    of the task's registered inputs. Being a protocol, any object with these two
    members can stand in for it in a unit test.
    """

    @property
    def metadata(self) -> TaskRunMetadata:
        """The current run's ids."""
        ...

    def run(self, task: TaskDefinition[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Start ``task`` as a subtask; ``await`` it for the child's result.

        Inputs are positional or named, never both (``ValueError`` before anything
        is sent). A failed child raises :class:`~render_core.errors.TaskRunError`.
        """
        ...


class WorkflowTaskContext:
    """The :class:`TaskContext` the worker hands to a running task.

    Besides ``metadata`` and ``run``, ``task_run_id`` and ``attempt`` describe the
    current run when the server sends them. ``run`` also takes a task's name.
    """

    def __init__(
        self,
        runtime: _Runtime,
        metadata: TaskRunMetadata | None = None,
        attempt: int | None = None,
        *,
        ids: tuple[str | None, str | None, str | None] = (None, None, None),
    ) -> None:
        self._runtime = runtime
        self._metadata = metadata
        self._ids = ids  # run, root, parent: the metadata, made on first use
        self.attempt = attempt

    @property
    def metadata(self) -> TaskRunMetadata:
        if self._metadata is None:
            from render_sdk.worker._metadata import TaskRunMetadata

            run_id, root_id, parent_id = self._ids
            self._metadata = TaskRunMetadata(
                task_run_id=run_id, root_task_run_id=root_id, parent_task_run_id=parent_id
            )
        return self._metadata

    @property
    def task_run_id(self) -> str | None:
        return self._metadata.task_run_id if self._metadata is not None else self._ids[0]

    def run(
        self, task: TaskDefinition[P, R] | str, /, *args: Any, **kwargs: Any
    ) -> TaskInstance[R]:
        return self._runtime.start_subtask(
            task if isinstance(task, str) else task.spec, args, kwargs
        )

    def __repr__(self) -> str:
        return f"<WorkflowTaskContext {self.task_run_id or '(no run id)'}>"


class _TaskDecorator(Protocol):
    """What ``@app.task(...)`` with options returns."""

    @overload
    def __call__(
        self, func: Callable[Concatenate[TaskContext, P], Awaitable[R]], /
    ) -> TaskDefinition[P, R]: ...

    @overload
    def __call__(
        self, func: Callable[Concatenate[TaskContext, P], R], /
    ) -> TaskDefinition[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, Awaitable[R]], /) -> TaskDefinition[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> TaskDefinition[P, R]: ...


def _origin(depth: int) -> tuple[str, int, str] | None:
    """Where a ``Workflows(...)`` call was written: file, line and module name."""
    try:
        frame = sys._getframe(depth + 1)
    except ValueError:  # pragma: no cover - there is always a caller
        return None
    filename = os.path.realpath(frame.f_code.co_filename)
    return (filename, frame.f_lineno, str(frame.f_globals.get("__name__", "")))


class Workflows:
    """A set of task definitions with shared defaults; each object has its own registry.

    ``default_retry`` (a :class:`Retry` or a dict), ``default_timeout`` (seconds,
    30..86400) and ``default_plan`` apply to tasks registered on this object that do
    not set their own; nothing is registered for options left unset (the platform's
    defaults apply). ``auto_start=True`` runs :meth:`start` when the interpreter
    exits, but only when ``RENDER_SDK_MODE`` and ``RENDER_SDK_SOCKET_PATH`` are set.
    ``slug`` names the workflow service that runs these tasks, so that clients can
    start them by definition: ``render.workflows.run(task, ...)``.

    Two objects may each define a task of the same name. One object defining a name
    twice with different functions is an error.
    """

    def __init__(
        self,
        *,
        default_retry: Retry | Mapping[str, Any] | None = None,
        default_timeout: int | None = None,
        default_plan: str | None = None,
        auto_start: bool = False,
        slug: str | None = None,
    ) -> None:
        if slug is not None and (not isinstance(slug, str) or not slug or "/" in slug):
            raise ValueError(f"Workflows(slug=...) must be a workflow slug, got {slug!r}")
        self.slug = slug
        self.default_retry = check_retry(default_retry, "Workflows(default_retry=...)")
        self.default_timeout = check_timeout(default_timeout, "Workflows(default_timeout=...)")
        self.default_plan = check_plan(default_plan, "Workflows(default_plan=...)")
        self._tasks = TaskRegistry()
        self._origin = _origin(1)
        _PROCESS.apps.add(self)
        if auto_start:
            _register_auto_start(self)

    @property
    def tasks(self) -> dict[str, TaskSpec]:
        """The tasks registered on this object, by name."""
        return {definition.name: definition for definition in self._tasks}

    def __repr__(self) -> str:
        return f"Workflows(tasks={len(self._tasks)})"

    # A coroutine function also matches the sync forms (with R the coroutine), so
    # the async overloads come first; the context forms before the plain ones.
    @overload
    def task(
        self, func: Callable[Concatenate[TaskContext, P], Awaitable[R]], /
    ) -> TaskDefinition[P, R]: ...

    @overload
    def task(self, func: Callable[Concatenate[TaskContext, P], R], /) -> TaskDefinition[P, R]: ...

    @overload
    def task(self, func: Callable[P, Awaitable[R]], /) -> TaskDefinition[P, R]: ...

    @overload
    def task(self, func: Callable[P, R], /) -> TaskDefinition[P, R]: ...

    @overload
    def task(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        retry: Retry | Mapping[str, Any] | None = None,
        timeout_seconds: int | None = None,
        timeout: int | None = None,
        plan: str | None = None,
        options: Options | None = None,
    ) -> _TaskDecorator: ...

    def task(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        retry: Retry | Mapping[str, Any] | None = None,
        timeout_seconds: int | None = None,
        timeout: int | None = None,
        plan: str | None = None,
        options: Options | None = None,
    ) -> Any:
        """Register a function as a task: ``@app.task``, ``@app.task()`` or with options.

        Options come as keywords (``retry``, ``timeout_seconds`` or the older
        ``timeout``, ``plan``) or grouped as ``options=Options(...)``, not both.
        Raises ``TypeError``/``ValueError`` naming the task for a bad option.
        """
        if timeout is not None and timeout_seconds is not None:
            raise TypeError("pass timeout_seconds= or timeout= (the same option), not both")
        if options is not None:
            if not isinstance(options, Options):
                raise TypeError(f"options must be an Options(...), got {type(options).__name__}")
            if any(value is not None for value in (retry, timeout_seconds, timeout, plan)):
                raise TypeError(
                    "pass options=Options(...) or the separate retry/timeout_seconds/plan "
                    "keywords, not both"
                )

        def decorate(function: Callable[..., Any]) -> TaskDefinition[Any, Any]:
            label = f"task {name or getattr(function, '__name__', function)!r}"
            if options is not None:
                given = options
            else:
                given = Options(
                    retry=check_retry(retry, label),
                    timeout_seconds=check_timeout(
                        timeout_seconds if timeout_seconds is not None else timeout, label
                    ),
                    plan=check_plan(plan, label),
                )
            effective = Options(
                retry=given.retry or self.default_retry,
                timeout_seconds=given.timeout_seconds or self.default_timeout,
                plan=given.plan or self.default_plan,
            )
            spec = TaskSpec.from_function(function, name=name, options=effective)
            return TaskDefinition(self._tasks.add(spec), self.slug)

        if func is not None:
            if not callable(func):
                raise TypeError(f"@app.task needs a function, got {type(func).__name__}")
            return decorate(func)
        return decorate

    @classmethod
    def from_workflows(
        cls,
        *apps: Workflows,
        default_retry: Retry | Mapping[str, Any] | None = None,
        default_timeout: int | None = None,
        default_plan: str | None = None,
    ) -> Workflows:
        """One object holding the tasks of ``apps``.

        Two of the apps defining a task of the same name is a ``ValueError``. The
        defaults given here apply only to tasks registered on the new object.
        """
        combined = cls(
            default_retry=default_retry, default_timeout=default_timeout, default_plan=default_plan
        )
        combined._origin = None  # built here, not written in a user's file
        for app in apps:
            if not isinstance(app, Workflows):
                raise TypeError(f"from_workflows takes Workflows objects, got {type(app).__name__}")
            for definition in app._tasks:
                existing = combined._tasks.get(definition.name)
                if existing is definition:
                    continue  # the same app (or a combination of it) passed twice
                if existing is not None:
                    raise ValueError(
                        f"two of the combined workflows define a task named {definition.name!r}"
                    )
                combined._tasks.add(definition)
        return combined

    def start(self) -> None:
        """Register or run, as ``RENDER_SDK_MODE`` says (see the module docstring).

        The worker serves this object's tasks, and those of its other copy when
        the file that created it was imported twice (as ``__main__`` and by name).
        Raises ``ValueError`` when the environment variables are missing or the mode
        is unknown. In run mode a failed task exits the process with status 1 after
        its error was reported.
        """
        code = _start_once(os.environ, lambda: _serving([self]))
        if code:
            raise SystemExit(code)

    def _twins(self) -> list[Workflows]:
        """Other copies of this object: created at the same place in another module."""
        origin = self._origin
        if origin is None:
            return []
        return [
            app
            for app in list(_PROCESS.apps)
            if app is not self
            and app._origin is not None
            and app._origin[:2] == origin[:2]
            and app._origin[2] != origin[2]
        ]


def _serving(apps: Iterable[Workflows]) -> TaskRegistry:
    """The tasks a worker started for ``apps`` serves.

    Each app with its twins (the same file imported twice defines the same tasks
    twice; a name defined differently by the two copies is a ``ValueError``), then
    the tasks of the deprecated module-level :func:`task` whose names are free.
    """
    registry = TaskRegistry()
    for app in apps:
        for member in (app, *app._twins()):
            for spec in member._tasks:
                try:
                    registry.add(spec)
                except ValueError:
                    raise ValueError(
                        f"task {spec.name!r} is defined twice, differently, by the "
                        "workflows being started"
                    ) from None
    if _PROCESS.default_app is not None:
        for spec in _PROCESS.default_app._tasks:
            if spec.name not in registry:
                registry.add(spec)
    return registry


def _default_app() -> Workflows:
    """The app behind the deprecated module-level ``task`` decorator and ``start()``."""
    with _PROCESS.lock:
        if _PROCESS.default_app is None:
            app = Workflows()
            app._origin = None
            _PROCESS.default_app = app
        return _PROCESS.default_app


@overload
def task(func: Callable[Concatenate[TaskContext, P], Awaitable[R]], /) -> TaskDefinition[P, R]: ...


@overload
def task(func: Callable[Concatenate[TaskContext, P], R], /) -> TaskDefinition[P, R]: ...


@overload
def task(func: Callable[P, Awaitable[R]], /) -> TaskDefinition[P, R]: ...


@overload
def task(func: Callable[P, R], /) -> TaskDefinition[P, R]: ...


@overload
def task(
    func: None = None, /, *, name: str | None = None, options: Options | None = None
) -> _TaskDecorator: ...


def task(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    options: Options | None = None,
) -> Any:
    """Deprecated: register a task on the process's default app (use ``@app.task``)."""
    app = _default_app()
    if func is None:
        return app.task(name=name, options=options)
    return app.task(name=name, options=options)(func)


def start() -> None:
    """Deprecated: start the worker for the module-level :func:`task` tasks (use
    ``app.start()``)."""
    _default_app().start()


# ---------------------------------------------------------------------------
# Process lifecycle


def _register_auto_start(app: Workflows) -> None:
    with _PROCESS.lock:
        _PROCESS.auto_start.append(app)
        if not _PROCESS.auto_start_registered:
            atexit.register(_auto_start)
            _PROCESS.auto_start_registered = True


def _auto_start() -> None:
    if not (os.environ.get(ENV_MODE) and os.environ.get(ENV_SOCKET_PATH)):
        return
    code = _start_once(os.environ, lambda: _serving(_PROCESS.auto_start))
    if code:
        # atexit cannot change the exit status with SystemExit; leave hard.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _start_once(env: Mapping[str, str], tasks: Callable[[], TaskRegistry]) -> int:
    mode = env.get(ENV_MODE, "")
    path = env.get(ENV_SOCKET_PATH, "")
    if not mode:
        raise ValueError(
            f"{ENV_MODE} is not set: this program is started by Render or the dev server"
        )
    if mode not in ("register", "run"):
        raise ValueError(f"Unknown mode: {mode!r} ({ENV_MODE} must be 'register' or 'run')")
    if not path:
        raise ValueError(f"{ENV_SOCKET_PATH} is not set")
    registry = tasks()
    with _PROCESS.lock:
        if _PROCESS.started:
            return 0  # once per process, never twice
        _PROCESS.started = True
    code = _main(mode, path, registry)
    if mode == "register" and not code:
        # The dev server may keep this process warm and fork it per attempt
        # (render_sdk.worker.template); serve() returns True only in such a child.
        from render_core.template import ENV_TEMPLATE_FD

        if env.get(ENV_TEMPLATE_FD):
            from render_sdk.worker import template

            for definition in registry:
                definition.conversion.prepare()  # once here, not in every child
            if template.serve(env):
                code = _main("run", os.environ.get(ENV_SOCKET_PATH, ""), registry)
                template.attempt_finished(code)
    return code


def _main(mode: str, path: str, registry: TaskRegistry) -> int:
    """Register, or run one attempt: without an event loop unless the task is async.

    Registering and running a sync task need no loop (and no ``asyncio`` import, a
    good part of a cold start); an async task runs on one.
    """
    from render_transports.h11_transport import UnixSocketTransport

    runtime = _Runtime(UnixSocketTransport(path), registry)
    try:
        if mode == "register":
            examples = os.environ.get(ENV_DEV_EXAMPLES) == "1"
            payload = registration_payload(registry, examples=examples)
            runtime.drive_sync(callback.register_tasks(payload, runtime.user_agent))
            return 0
        task_input = _handed_input() or runtime.drive_sync(callback.get_input(runtime.user_agent))
        definition = registry.get(task_input.task_name)
        if definition is None or not definition.is_async:
            return runtime.run_one_sync(task_input)
        import asyncio

        return asyncio.run(_main_async(path, task_input, registry))
    finally:
        _otel.flush()


def _handed_input() -> callback.TaskInput | None:
    """The input a forked attempt was handed with its fork request (the answer its
    ``GET /input`` would get), so that it need not ask; None in any other process."""
    template = sys.modules.get("render_sdk.worker.template")
    body = None if template is None else template.handed_input()
    if body is None:
        return None
    from render_core.http import Response

    response = Response(status=200, headers={"Content-Type": "application/json"}, body=body)
    return callback.parse_input(response)


async def _main_async(path: str, task_input: callback.TaskInput, registry: TaskRegistry) -> int:
    from render_transports.h11_transport import AsyncUnixSocketTransport

    transport = AsyncUnixSocketTransport(path)
    try:
        return await _Runtime(transport, registry).run_one(task_input)
    finally:
        _otel.flush()
        await transport.aclose()


async def _in_thread(func: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
    """``func(*args, **kwargs)`` in a new thread, with this context.

    Not ``asyncio.to_thread``: its executor cannot start from an ``atexit`` hook,
    which is where ``auto_start=True`` runs the worker.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        try:
            result = context.run(func, *args, **kwargs)
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=target, name="render-sdk-task", daemon=True).start()
    return await future


class _Call:
    """The one step of an attempt a driver performs: call the task's function."""

    __slots__ = ("args", "definition", "kwargs")

    def __init__(self, definition: TaskSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.definition = definition
        self.args = args
        self.kwargs = kwargs


def _describe(exc: BaseException) -> str:
    message = str(exc)
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


class _Runtime:
    """The state of one task process: its socket and the subtasks it started."""

    def __init__(self, transport: Any, registry: TaskRegistry) -> None:
        self._transport = transport
        self._registry = registry  # the tasks an attempt may run
        self.user_agent = user_agent()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def drive(self, flow: Flow[R]) -> R:
        import asyncio

        return await run_async(flow, self._transport.send, asyncio.sleep)

    def drive_sync(self, flow: Flow[R]) -> R:
        import time

        return run_sync(flow, self._transport.send, time.sleep)

    def _attempt(
        self, task_input: callback.TaskInput
    ) -> Generator[_Call, Any, tuple[Request, int]]:
        """One attempt as steps: yields the task call once, returns ``(callback, exit code)``.

        Written once for both drivers: :meth:`run_one_sync` calls the function in
        this thread, :meth:`run_one` awaits it (a sync one in a worker thread).
        """
        definition = self._registry.get(task_input.task_name)
        if definition is None:
            known = ", ".join(self._registry.names()) or "none"
            details = f"Task '{task_input.task_name}' not found (registered tasks: {known})"
            return self._failure(details, None), 1
        ids = (task_input.task_run_id, task_input.root_task_run_id, task_input.parent_task_run_id)
        context = WorkflowTaskContext(self, attempt=task_input.attempt, ids=ids)
        span = _otel.attempt_started(task_input, definition.name)
        token = _RUNTIME.set(self)
        try:
            args, kwargs = bind_arguments(definition, task_input.input, context=context)
            result = yield _Call(definition, args, kwargs)
            output = encode_result(result, definition.name, definition.conversion)
        except TaskInputError as exc:
            span.failed(exc)
            return self._failure(str(exc), None), 1
        except Exception as exc:
            span.failed(exc)
            import traceback

            trace = "".join(traceback.format_exception(exc))
            sys.stderr.write(trace)
            return self._failure(_describe(exc), trace), 1
        finally:
            _RUNTIME.reset(token)
            span.end()
        return callback.build_callback_success(output, self.user_agent), 0

    def _failure(self, details: str, trace: str | None) -> Request:
        return callback.build_callback_error(details, trace, self.user_agent)

    def run_one_sync(self, task_input: callback.TaskInput) -> int:
        """Run a sync task (or report a missing one) in this thread, with no event loop."""
        steps = self._attempt(task_input)
        try:
            call = next(steps)
            while True:
                try:
                    result = call.definition.func(*call.args, **call.kwargs)
                except BaseException as exc:
                    call = steps.throw(exc)
                else:
                    call = steps.send(result)
        except StopIteration as stop:
            request, code = cast("tuple[Request, int]", stop.value)
        self.drive_sync(callback.post_callback(request))
        return code

    async def run_one(self, task_input: callback.TaskInput | None = None) -> int:
        """Run one attempt on the running loop (``GET /input`` first unless given)."""
        import asyncio

        self._loop = asyncio.get_running_loop()
        if task_input is None:
            task_input = await self.drive(callback.get_input(self.user_agent))
        steps = self._attempt(task_input)
        try:
            call = next(steps)
            while True:
                try:
                    if call.definition.is_async:
                        result = await call.definition.func(*call.args, **call.kwargs)
                    else:
                        # In a thread, so the loop keeps serving the subtasks' polls.
                        result = await _in_thread(call.definition.func, call.args, call.kwargs)
                except BaseException as exc:
                    call = steps.throw(exc)
                else:
                    call = steps.send(result)
        except StopIteration as stop:
            request, code = cast("tuple[Request, int]", stop.value)
        await self.drive(callback.post_callback(request))
        return code

    def start_subtask(
        self, task: TaskSpec | str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> TaskInstance[Any]:
        """Start ``task`` (a definition, or only a name) as a child of this run.

        Arguments are written by the child's annotations when the definition is known
        (a dataclass as an object...), and its result is read back by its return
        annotation. Raises before anything is sent: ``RuntimeError`` from a sync task,
        ``ValueError`` for mixed positional and named inputs, ``TypeError`` for inputs
        that are not JSON or do not fit.
        """
        spec = task if isinstance(task, TaskSpec) else None
        name = task.name if isinstance(task, TaskSpec) else task
        # Looked up, not imported: without asyncio loaded no loop can be running.
        asyncio_module = sys.modules.get("asyncio")
        loop: asyncio.AbstractEventLoop | None = None
        if asyncio_module is not None:
            with contextlib.suppress(RuntimeError):
                loop = asyncio_module.get_running_loop()
        if loop is None or loop is not self._loop:
            raise RuntimeError(
                f"task {name!r} was called as a subtask from a synchronous task; "
                "subtasks can only be called (and awaited) from async tasks"
            )
        if args and kwargs:
            raise ValueError(
                f"subtask {name!r}: pass arguments either positionally or by name, not both"
            )
        try:
            if spec is not None and spec.conversion.enabled:
                input_data: Any = spec.conversion.unstructure_input(args, kwargs)
            else:
                input_data = (
                    {k: unstructure_any(v) for k, v in kwargs.items()}
                    if kwargs
                    else [unstructure_any(v) for v in args]
                )
            callback.encode_payload(input_data)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"subtask {name!r}: arguments must be JSON-serialisable: {exc}"
            ) from None
        future = loop.create_task(self._subtask(name, input_data, spec))
        return TaskInstance(name, future)

    async def _subtask(self, name: str, input_data: Any, spec: TaskSpec | None) -> Any:
        import datetime as _dt
        import uuid

        key = uuid.uuid4().hex
        created_at = _dt.datetime.now(_dt.timezone.utc).isoformat()
        call = _otel.subtask_call(name)
        run_id = await self.drive(
            callback.run_subtask(
                name,
                input_data,
                idempotency_key=key,
                created_at=created_at,
                user_agent=self.user_agent,
            )
        )
        call.started(run_id)
        wait = self.drive(callback.wait_for_subtask(run_id, self.user_agent, task_name=name))
        value = await call.finished(wait)
        if spec is None:
            return value
        try:
            return spec.conversion.structure_result(value)
        except ConversionError as exc:
            raise TaskRunError(
                f"subtask {name!r} returned a result that does not fit its annotation: {exc}",
                task_run_id=run_id,
            ) from None


def run_entry_point(target: str, argv0: str = "render-workflows") -> int:
    """``render-workflows module:attr``: import ``module`` and call ``attr.start()``."""
    # Split on the last colon, as the official console script does.
    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        sys.stderr.write(f"usage: {argv0} MODULE:APP (for example main:app)\n")
        return 2
    import importlib

    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        sys.stderr.write(f"{argv0}: cannot import {module_name!r}: {exc}\n")
        return 1
    app = getattr(module, attr, None)
    if app is None or not callable(getattr(app, "start", None)):
        sys.stderr.write(f"{argv0}: {module_name}.{attr} is not an object with a start() method\n")
        return 1
    try:
        app.start()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except (ValueError, RenderError) as exc:
        sys.stderr.write(f"{argv0}: {exc}\n")
        return 1
    return 0


def __getattr__(name: str) -> Any:
    # ``TaskRunMetadata`` is defined in a module of its own, imported on first use
    # (see render_sdk.worker._metadata).
    if name == "TaskRunMetadata":
        from render_sdk.worker._metadata import TaskRunMetadata

        return TaskRunMetadata
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
