"""The dev server as one object: HTTP API + scheduler + store, started and stopped together.

Use it from the command line (``render-workflows dev -- python main.py``) or in
process::

    async with DevServer(["python", "main.py"], port=0, db=":memory:") as server:
        print(server.url)

or from synchronous code (tests, scripts) with :meth:`DevServer.run_in_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from aiohttp import web

from render_core.config import ENV_ALLOW_INSECURE_HTTP, ENV_API_KEY, is_loopback_host
from render_devserver.api import DEFAULT_PING_INTERVAL, AppRunner, EventHub, build_app
from render_devserver.scheduler import Scheduler
from render_devserver.security import RequestPolicy
from render_devserver.store import Store

__all__ = ["DEFAULT_DB", "DEFAULT_PORT", "DevServer", "PortInUse", "default_workflow_slug"]

DEFAULT_PORT = 8120
DEFAULT_DB = os.path.join(".render", "dev.sqlite3")


_SKIP_DIRS = frozenset({".git", ".render", "__pycache__", ".venv", "venv", ".nox", "node_modules"})


def _snapshot(root: str) -> dict[str, float]:
    """Modification times of the project's Python files (skipping caches and venvs)."""
    times: dict[str, float] = {}
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    times[path] = os.stat(path).st_mtime
    return times


class PortInUse(OSError):
    """The port is taken (another dev server, most likely)."""


def default_workflow_slug(directory: str) -> str:
    """A slug from the project directory's name (``My Project`` -> ``my-project``)."""
    name = os.path.basename(os.path.abspath(directory)).lower()
    slug = re.sub(r"[^a-z0-9]+", "-", name).strip("-")
    return slug or "workflow"


class DevServer:
    """A local Render Workflows server for ``command`` (the program calling ``app.start()``)."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        db: str | None = None,
        concurrency: int | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        workflow_slug: str | None = None,
        ping_interval: float = DEFAULT_PING_INTERVAL,
        log_sink: Callable[[str, str], None] | None = None,
        timeout_scale: float = 1.0,
        reload: bool = False,
        reload_interval: float = 1.0,
        auth_token: str | None = None,
        allowed_hosts: Sequence[str] = (),
        fork: bool | None = None,
    ) -> None:
        self.command = list(command)
        # Host names accepted besides loopback ones (``--allowed-host``); checked now,
        # so that a typo fails before anything starts.
        self.policy = RequestPolicy(allowed_hosts, bind_host=host, port=port)
        # Warm templates: True/False forces them on/off; None follows RENDER_DEV_NO_FORK.
        self.fork = fork
        # When set, every data route needs ``Authorization: Bearer <auth_token>``.
        self.auth_token = auth_token or None
        self.timeout_scale = timeout_scale
        self.reload = reload
        self.reload_interval = reload_interval
        self._watcher: asyncio.Task[None] | None = None
        self.host = host
        self.port = port
        self.cwd = os.path.abspath(cwd or os.getcwd())
        self.db = db if db is not None else os.path.join(self.cwd, DEFAULT_DB)
        self.concurrency = concurrency
        self.env = env
        self.workflow_slug = workflow_slug or default_workflow_slug(self.cwd)
        self.ping_interval = ping_interval
        self.log_sink = log_sink
        self.store: Store | None = None
        self.scheduler: Scheduler | None = None
        self._hub = EventHub()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def app(self) -> web.Application | None:
        """The aiohttp application while the server runs (its routes, for instance)."""
        return None if self._runner is None else self._runner.app

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _task_env(self) -> Mapping[str, str] | None:
        """The task processes' environment: with a token, they get it as their API key."""
        if self.auth_token is None:
            return self.env
        env = dict(os.environ if self.env is None else self.env)
        env[ENV_API_KEY] = self.auth_token
        if not is_loopback_host(self._task_host()):
            # The token travels from the task to this server, on this machine's network.
            env[ENV_ALLOW_INSECURE_HTTP] = "1"
        return env

    def _task_host(self) -> str:
        """How task processes reach the API: over loopback when bound to every address."""
        return "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host

    async def start(self) -> DevServer:
        self.store = Store(self.db)
        self.scheduler = Scheduler(
            self.store,
            command=self.command,
            cwd=self.cwd,
            env=self._task_env(),
            concurrency=self.concurrency,
            publish=self._hub.publish,
            log_sink=self.log_sink,
            timeout_scale=self.timeout_scale,
            fork=self.fork,
        )
        app = build_app(
            self.scheduler,
            self._hub,
            workflow_slug=self.workflow_slug,
            ping_interval=self.ping_interval,
            auth_token=self.auth_token,
            policy=self.policy,
        )
        # A handler is cancelled when its client goes: an event stream whose client left
        # must not hold its subscription (and a task) until its next ping.
        self._runner = AppRunner(
            app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self.store.close()
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    exc.errno,
                    f"port {self.port} on {self.host} is in use; stop the other server or "
                    "pass --port",
                ) from None
            raise
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self.policy.port = self.port
        host = self._task_host()
        host = f"[{host}]" if ":" in host else host
        self.scheduler.server_url = f"http://{host}:{self.port}"
        try:
            await self.scheduler.start()
        except BaseException:
            await self.stop()
            raise
        if self.reload:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        return self

    async def _watch(self) -> None:
        """Re-register when a ``.py`` file of the project changes (``--reload``)."""
        assert self.scheduler is not None
        seen = _snapshot(self.cwd)
        while True:
            await asyncio.sleep(self.reload_interval)
            current = _snapshot(self.cwd)
            if current == seen:
                continue
            seen = current
            try:
                tasks = await self.scheduler.register()
            except Exception as exc:  # a broken edit must not stop the server
                self._say(f"reload: registration failed, keeping the previous tasks: {exc}")
            else:
                self._say("reload: registered " + ", ".join(task.name for task in tasks))

    def _say(self, message: str) -> None:
        if self.log_sink is not None:
            self.log_sink("", message)

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self.scheduler is not None:
            await self.scheduler.stop()
        self._hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.store is not None:
            self.store.close()
            self.store = None

    async def __aenter__(self) -> DevServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @contextmanager
    def run_in_thread(self, timeout: float = 180.0) -> Iterator[DevServer]:
        """Run the server on its own event loop in a background thread (for sync code)."""
        loop = asyncio.new_event_loop()
        started: asyncio.Future[None] | None = None
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            nonlocal started
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())

        thread = threading.Thread(target=serve, name="render-devserver", daemon=True)
        thread.start()
        ready.wait(timeout)
        if failure:
            thread.join(5)
            loop.close()
            raise failure[0]
        self._thread, self._loop = thread, loop
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
            loop.close()
            self._thread = self._loop = None
