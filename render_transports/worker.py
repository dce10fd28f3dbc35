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
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from render_core import callback
from render_core.config import user_agent
from render_core.effects import Flow, run_async, run_sync
from render_core.errors import RenderError
from render_core.tasks import (
    Retry,
    TaskDefinition,
    TaskInputError,
    TaskOptions,
    TaskRegistry,
    bind_arguments,
    check_plan,
    check_retry,
    check_timeout,
    encode_result,
    registration_payload,
)

if TYPE_CHECKING:
    import asyncio

    from render_core.http import Request

__all__ = ["Retry", "TaskCallable", "TaskContext", "TaskInstance", "Workflows"]

R = TypeVar("R")

ENV_MODE = "RENDER_SDK_MODE"
ENV_SOCKET_PATH = "RENDER_SDK_SOCKET_PATH"

# Every task registered in this process, by any Workflows object: the worker that
# starts sees all of them (a module imported twice creates two apps).
_PROCESS_TASKS = TaskRegistry()


class _ProcessState:
    """Once-per-process facts: the worker may start once, atexit is hooked once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = False
        self.auto_start_registered = False


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


class TaskCallable(Generic[R]):
    """What ``@app.task`` returns: the function, which starts a subtask inside a run."""

    def __init__(self, definition: TaskDefinition) -> None:
        self.definition = definition
        functools.update_wrapper(self, definition.func)

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def func(self) -> Callable[..., Any]:
        """The undecorated function (the newer SDKs' ``TaskDefinition.func``)."""
        return self.definition.func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        runtime = _RUNTIME.get()
        if runtime is None:
            return self.definition.func(*args, **kwargs)
        return runtime.start_subtask(self.definition.name, args, kwargs)

    def __repr__(self) -> str:
        return f"<task {self.definition.name!r}>"


class TaskContext:
    """Passed to a task whose first parameter is annotated ``TaskContext``.

    ``await ctx.run(other_task, *args)`` starts a subtask, as newer official SDKs
    do; ``task_run_id`` and ``attempt`` describe the current run when the server
    sends them.
    """

    def __init__(self, runtime: _Runtime, task_run_id: str | None, attempt: int | None) -> None:
        self._runtime = runtime
        self.task_run_id = task_run_id
        self.attempt = attempt

    def run(self, task: TaskCallable[Any] | str, *args: Any, **kwargs: Any) -> TaskInstance[Any]:
        name = task if isinstance(task, str) else task.name
        return self._runtime.start_subtask(name, args, kwargs)


class Workflows:
    """A set of task definitions with shared defaults.

    ``default_retry``, ``default_timeout`` (seconds, 30..86400) and
    ``default_plan`` apply to tasks registered on this object that do not set
    their own; nothing is registered for options left unset (the platform's
    defaults apply). ``auto_start=True`` runs :meth:`start` when the interpreter
    exits, but only when ``RENDER_SDK_MODE`` and ``RENDER_SDK_SOCKET_PATH`` are set.
    """

    def __init__(
        self,
        *,
        default_retry: Retry | None = None,
        default_timeout: int | None = None,
        default_plan: str | None = None,
        auto_start: bool = False,
    ) -> None:
        self.default_retry = check_retry(default_retry, "Workflows(default_retry=...)")
        self.default_timeout = check_timeout(default_timeout, "Workflows(default_timeout=...)")
        self.default_plan = check_plan(default_plan, "Workflows(default_plan=...)")
        self._tasks = TaskRegistry()
        if auto_start:
            _register_auto_start()

    @property
    def tasks(self) -> dict[str, TaskDefinition]:
        """The tasks registered on this object, by name."""
        return {definition.name: definition for definition in self._tasks}

    @overload
    def task(self, func: Callable[..., R], /) -> TaskCallable[R]: ...

    @overload
    def task(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout_seconds: int | None = None,
        timeout: int | None = None,
        plan: str | None = None,
    ) -> Callable[[Callable[..., R]], TaskCallable[R]]: ...

    def task(
        self,
        func: Callable[..., R] | None = None,
        /,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout_seconds: int | None = None,
        timeout: int | None = None,
        plan: str | None = None,
    ) -> TaskCallable[R] | Callable[[Callable[..., R]], TaskCallable[R]]:
        """Register a function as a task: ``@app.task``, ``@app.task()`` or with options."""
        if timeout is not None and timeout_seconds is not None:
            raise TypeError("pass timeout_seconds= or timeout= (the same option), not both")

        def decorate(function: Callable[..., R]) -> TaskCallable[R]:
            label = f"task {name or getattr(function, '__name__', function)!r}"
            options = TaskOptions(
                retry=check_retry(retry, label) or self.default_retry,
                timeout_seconds=check_timeout(
                    timeout_seconds if timeout_seconds is not None else timeout, label
                )
                or self.default_timeout,
                plan=check_plan(plan, label) or self.default_plan,
            )
            definition = TaskDefinition.from_function(function, name=name, options=options)
            definition = _PROCESS_TASKS.add(definition)
            self._tasks.add(definition)
            return TaskCallable(definition)

        if func is not None:
            if not callable(func):
                raise TypeError(f"@app.task needs a function, got {type(func).__name__}")
            return decorate(func)
        return decorate

    @classmethod
    def from_workflows(
        cls,
        *apps: Workflows,
        default_retry: Retry | None = None,
        default_timeout: int | None = None,
        default_plan: str | None = None,
    ) -> Workflows:
        """One object holding the tasks of ``apps``; a name defined differently twice is an error.

        The defaults given here apply only to tasks registered on the new object.
        """
        combined = cls(
            default_retry=default_retry, default_timeout=default_timeout, default_plan=default_plan
        )
        for app in apps:
            if not isinstance(app, Workflows):
                raise TypeError(f"from_workflows takes Workflows objects, got {type(app).__name__}")
            for definition in app._tasks:
                try:
                    combined._tasks.add(definition)
                except ValueError:
                    raise ValueError(
                        f"two of the combined workflows define a task named {definition.name!r}"
                    ) from None
        return combined

    def start(self) -> None:
        """Register or run, as ``RENDER_SDK_MODE`` says (see the module docstring).

        Raises ``ValueError`` when the environment variables are missing or the mode
        is unknown. In run mode a failed task exits the process with status 1 after
        its error was reported.
        """
        for definition in self._tasks:
            _PROCESS_TASKS.add(definition)
        code = _start_once(os.environ)
        if code:
            raise SystemExit(code)


# ---------------------------------------------------------------------------
# Process lifecycle


def _register_auto_start() -> None:
    with _PROCESS.lock:
        if not _PROCESS.auto_start_registered:
            atexit.register(_auto_start)
            _PROCESS.auto_start_registered = True


def _auto_start() -> None:
    if not (os.environ.get(ENV_MODE) and os.environ.get(ENV_SOCKET_PATH)):
        return
    code = _start_once(os.environ)
    if code:
        # atexit cannot change the exit status with SystemExit; leave hard.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _start_once(env: Mapping[str, str]) -> int:
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
    with _PROCESS.lock:
        if _PROCESS.started:
            return 0  # once per process, never twice
        _PROCESS.started = True
    code = _main(mode, path)
    if mode == "register" and not code:
        # The dev server may keep this process warm and fork it per attempt
        # (render_transports.template); serve() returns True only in such a child.
        from render_core.template import ENV_TEMPLATE_FD

        if env.get(ENV_TEMPLATE_FD):
            from render_transports import template

            if template.serve(env):
                code = _main("run", os.environ.get(ENV_SOCKET_PATH, ""))
    return code


def _main(mode: str, path: str) -> int:
    """Register, or run one attempt: without an event loop unless the task is async.

    Registering and running a sync task need no loop (and no ``asyncio`` import, a
    good part of a cold start); an async task runs on one.
    """
    from render_transports.h11_transport import UnixSocketTransport

    runtime = _Runtime(UnixSocketTransport(path))
    if mode == "register":
        payload = registration_payload(_PROCESS_TASKS)
        runtime.drive_sync(callback.register_tasks(payload, runtime.user_agent))
        return 0
    task_input = runtime.drive_sync(callback.get_input(runtime.user_agent))
    definition = runtime._registry.get(task_input.task_name)
    if definition is None or not definition.is_async:
        return runtime.run_one_sync(task_input)
    import asyncio

    return asyncio.run(_main_async(path, task_input))


async def _main_async(path: str, task_input: callback.TaskInput) -> int:
    from render_transports.h11_transport import AsyncUnixSocketTransport

    transport = AsyncUnixSocketTransport(path)
    try:
        return await _Runtime(transport).run_one(task_input)
    finally:
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

    def __init__(
        self, definition: TaskDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.definition = definition
        self.args = args
        self.kwargs = kwargs


def _describe(exc: BaseException) -> str:
    message = str(exc)
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


class _Runtime:
    """The state of one task process: its socket and the subtasks it started."""

    def __init__(self, transport: Any, registry: TaskRegistry | None = None) -> None:
        self._transport = transport
        # The tasks an attempt may run: every task of the process, unless the
        # in-process runner (render_transports.inprocess) hands in one app's.
        self._registry = _PROCESS_TASKS if registry is None else registry
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
        context = TaskContext(self, task_input.task_run_id, task_input.attempt)
        token = _RUNTIME.set(self)
        try:
            args, kwargs = bind_arguments(definition, task_input.input, context=context)
            result = yield _Call(definition, args, kwargs)
            output = encode_result(result, definition.name)
        except TaskInputError as exc:
            return self._failure(str(exc), None), 1
        except Exception as exc:
            import traceback

            trace = "".join(traceback.format_exception(exc))
            sys.stderr.write(trace)
            return self._failure(_describe(exc), trace), 1
        finally:
            _RUNTIME.reset(token)
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
            request, code = stop.value
        self.drive_sync(callback.post_callback(request))
        return code  # type: ignore[no-any-return]

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
            request, code = stop.value
        await self.drive(callback.post_callback(request))
        return code  # type: ignore[no-any-return]

    def start_subtask(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> TaskInstance[Any]:
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
        input_data: Any = dict(kwargs) if kwargs else list(args)
        try:
            callback.encode_payload(input_data)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"subtask {name!r}: arguments must be JSON-serialisable: {exc}"
            ) from None
        future = loop.create_task(self._subtask(name, input_data))
        return TaskInstance(name, future)

    async def _subtask(self, name: str, input_data: Any) -> Any:
        import datetime as _dt
        import uuid

        key = uuid.uuid4().hex
        created_at = _dt.datetime.now(_dt.timezone.utc).isoformat()
        run_id = await self.drive(
            callback.run_subtask(
                name,
                input_data,
                idempotency_key=key,
                created_at=created_at,
                user_agent=self.user_agent,
            )
        )
        return await self.drive(callback.wait_for_subtask(run_id, self.user_agent, task_name=name))


def run_entry_point(target: str, argv0: str = "render-workflows") -> int:
    """``render-workflows module:attr``: import ``module`` and call ``attr.start()``."""
    module_name, _, attr = target.partition(":")
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
