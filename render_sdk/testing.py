"""Test helpers: a dev server per test module, and tasks run in process.

Two ways to test a workflow (the user guide's "Testing" page has worked examples):

- ``dev_server(...)`` / ``async_dev_server(...)`` start the local dev server on a free
  port of 127.0.0.1 with a temporary SQLite database, for a ``"module:app"`` target
  or a start command; every attempt runs in its own process, as on Render. The
  object they give has ready clients (``.client``, ``.client_async``) and is torn
  down on exit. The pytest plugin (``render_dev_server``, ``render_client`` and
  ``render_client_async`` fixtures, ``@pytest.mark.render_workflows(...)``) is built
  on them.
- :func:`run_local` / :func:`run_local_async` / :class:`LocalRunner` run a task and
  its subtasks in this process, with arguments and results through JSON as on the
  wire: fast enough for unit tests.

Nothing here is imported by ``import render_sdk``; the dev server and the HTTP
clients are imported when a server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

from render_sdk.worker.inprocess import LocalRun, LocalRunner, run_local, run_local_async

if TYPE_CHECKING:
    from render_devserver.server import DevServer
    from render_sdk.client.clients import Render, RenderAsync

__all__ = [
    "DevServerHarness",
    "LocalRun",
    "LocalRunner",
    "async_dev_server",
    "command_for",
    "dev_server",
    "run_local",
    "run_local_async",
]

Target: TypeAlias = "str | Sequence[str]"


def command_for(target: Target) -> list[str]:
    """The start command for ``"module:app"`` or a command list.

    ``"pkg.module:app"`` runs ``python -m render_sdk.cli pkg.module:app`` (what the
    ``render-workflows pkg.module:app`` console script does) with this interpreter. In
    a command list, a leading ``python`` or ``python3`` becomes this interpreter too, so
    task processes see the packages the tests see.
    """
    if isinstance(target, str):
        module, sep, attr = target.partition(":")
        if not sep or not module or not attr or any(c.isspace() for c in target):
            raise ValueError(
                f"expected 'module:app' (for example 'myproject.workflows:app') or a "
                f"command list (for example ['python', 'main.py']), got {target!r}"
            )
        return [sys.executable, "-m", "render_sdk.cli", target]
    command = [str(part) for part in target]
    if not command:
        raise ValueError("the start command is empty")
    if command[0] in ("python", "python3"):
        command[0] = sys.executable
    return command


def _task_env(
    env: Mapping[str, str] | None, cwd: str, pythonpath: Sequence[str], inherit_env: bool
) -> dict[str, str]:
    """This process's environment without ``RENDER_*`` (credentials, worker mode),
    then ``env``; ``cwd`` and ``pythonpath`` go first on ``PYTHONPATH``."""
    result = (
        {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")} if inherit_env else {}
    )
    result.update(env or {})
    paths = [cwd, *(os.path.abspath(p) for p in pythonpath)]
    if result.get("PYTHONPATH"):
        paths.append(result["PYTHONPATH"])
    result["PYTHONPATH"] = os.pathsep.join(paths)
    return result


class DevServerHarness:
    """A dev server for tests: ``with dev_server(...) as server:`` (from sync code) or
    ``async with`` it; ``dev_server`` and ``async_dev_server`` are this class.

    ``target`` is ``"module:app"`` or a start command (see :func:`command_for`), run
    in ``cwd`` (default: the current directory), which is also put first on the task
    processes' ``PYTHONPATH``, followed by ``pythonpath``. The task processes get this
    process's environment without ``RENDER_*`` variables (``inherit_env=False``: none
    of it), plus ``env``. The database is a temporary SQLite file unless ``db`` names
    one (``":memory:"`` works). ``timeout_scale`` shrinks task timeouts (0.02 makes a
    30 s timeout last 0.6 s). ``workflow_slug`` defaults to the name of ``cwd``.

    Either way the server runs on its own event loop in a background thread, so the
    blocking ``client`` works in async tests too and the server outlives any test's
    event loop. On exit the clients are closed, the task processes stopped and the
    temporary database removed.

    Attributes once started: ``url``; ``workflow_slug``; ``tasks`` (registered task
    names); ``client`` (a :class:`~render_sdk.Render` on the server); ``client_async``
    (a :class:`~render_sdk.RenderAsync`, only inside ``async with``; elsewhere make one
    with :meth:`async_client`); ``server`` (the underlying
    :class:`~render_devserver.server.DevServer`).
    """

    def __init__(
        self,
        target: Target,
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        pythonpath: Sequence[str | os.PathLike[str]] = (),
        concurrency: int | None = None,
        workflow_slug: str | None = None,
        db: str | None = None,
        timeout_scale: float = 1.0,
    ) -> None:
        self.command = command_for(target)
        self.cwd = os.path.abspath(cwd if cwd is not None else os.getcwd())
        self.env = _task_env(env, self.cwd, [os.fspath(p) for p in pythonpath], inherit_env)
        self.concurrency = concurrency
        self._workflow_slug = workflow_slug
        self._db = db
        self.timeout_scale = timeout_scale
        self._logs: list[tuple[str, str]] = []
        self._logs_lock = threading.Lock()
        self._stack: contextlib.ExitStack | None = None
        self._server: DevServer | None = None
        self._client: Render | None = None
        self._client_async: RenderAsync | None = None

    # -- what a test uses -----------------------------------------------------------

    @property
    def server(self) -> DevServer:
        if self._server is None:
            raise RuntimeError("the dev server is not running (use `with dev_server(...)`)")
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def workflow_slug(self) -> str:
        return self.server.workflow_slug

    @property
    def tasks(self) -> list[str]:
        """The names of the registered tasks, in registration order."""
        scheduler = self.server.scheduler
        return [] if scheduler is None else [task.name for task in scheduler.tasks]

    @property
    def client(self) -> Render:
        if self._client is None:
            raise RuntimeError("the dev server is not running (use `with dev_server(...)`)")
        return self._client

    @property
    def client_async(self) -> RenderAsync:
        if self._client_async is None:
            raise RuntimeError(
                "client_async exists inside `async with async_dev_server(...)`; elsewhere "
                "use `async with server.async_client() as client`"
            )
        return self._client_async

    def async_client(self) -> RenderAsync:
        """A new :class:`~render_sdk.RenderAsync` on this server; close it (``async with``)
        on the event loop that uses it."""
        from render_sdk.client.clients import RenderAsync

        return RenderAsync(base_url=self.url, env={})

    def task_id(self, name: str) -> str:
        """``"slug/name"``, the identifier clients start a task with."""
        return f"{self.workflow_slug}/{name}"

    @property
    def logs(self) -> list[tuple[str, str]]:
        """Every captured output line so far, as ``(task_run_id, line)``; the
        registration process's lines have an empty run id."""
        with self._logs_lock:
            return list(self._logs)

    def output(self, task_run_id: str) -> list[str]:
        """The output lines (stdout and stderr) of one run's attempts so far."""
        return [line for run_id, line in self.logs if run_id == task_run_id]

    def _log(self, run_id: str, line: str) -> None:
        with self._logs_lock:
            self._logs.append((run_id, line))

    # -- starting and stopping ----------------------------------------------------------

    def start(self) -> DevServerHarness:
        """Start the server (blocking until its tasks are registered); see :meth:`stop`."""
        if self._stack is not None:
            raise RuntimeError("this dev server is already running")
        from render_devserver.server import DevServer
        from render_sdk.client.clients import Render

        stack = contextlib.ExitStack()
        try:
            directory = tempfile.mkdtemp(prefix="render-test-")
            stack.callback(shutil.rmtree, directory, ignore_errors=True)
            server = DevServer(
                self.command,
                host="127.0.0.1",
                port=0,
                db=self._db if self._db is not None else os.path.join(directory, "dev.sqlite3"),
                concurrency=self.concurrency,
                cwd=self.cwd,
                env=self.env,
                workflow_slug=self._workflow_slug,
                log_sink=self._log,
                timeout_scale=self.timeout_scale,
            )
            self._server = stack.enter_context(server.run_in_thread())
            self._client = stack.enter_context(Render(base_url=server.url, env={}))
        except BaseException:
            self._server = self._client = None
            stack.close()
            raise
        self._stack = stack
        return self

    def stop(self) -> None:
        """Close the client, stop the server and its processes, remove the database."""
        stack, self._stack = self._stack, None
        try:
            if stack is not None:
                stack.close()
        finally:
            self._server = self._client = None

    def __enter__(self) -> DevServerHarness:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> DevServerHarness:
        await asyncio.to_thread(self.start)
        self._client_async = self.async_client()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client, self._client_async = self._client_async, None
        try:
            if client is not None:
                await client.aclose()
        finally:
            await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        state = self.url if self._server is not None else "stopped"
        return f"<DevServerHarness {' '.join(self.command)!r} {state}>"


dev_server = DevServerHarness
"""``with dev_server(target, **options) as server:`` (or ``async with``): a
:class:`DevServerHarness`, under the name that reads right in a ``with`` statement."""

async_dev_server = dev_server
"""``dev_server`` under the name that reads right in ``async with
async_dev_server(...) as server:``, which also provides ``server.client_async``."""
