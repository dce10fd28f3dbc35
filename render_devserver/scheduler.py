"""Runs tasks: one process per attempt, a task socket each, retries, timeouts, cancel.

The scheduler owns the effects of the run lifecycle (``render_core.lifecycle``
decides the states): it registers tasks with one register-mode process, starts
attempts in FIFO order under a concurrency limit, serves each attempt's task
socket, captures its output line by line, enforces timeouts (SIGTERM, a grace
period, SIGKILL), retries failed attempts with the registered policy, cancels
whole run trees, and recovers runs that were in flight when the server stopped.

Task processes die with the server, and a server starting on a database ends the
processes its previous life left running before it retries their attempts
(``processes.py``); the database is refused while another server uses it.

It knows nothing of HTTP: the REST layer calls its methods and receives terminal
events through the ``publish`` callable it hands in.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as _dt
import functools
import json
import logging
import os
import shutil
import signal
import sqlite3
import stat
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from render_core import codec, lifecycle, taskserver
from render_core.lifecycle import LifecycleError, Run
from render_core.models import TaskRunStatus
from render_core.tasks import task_name
from render_core.template import ENV_TEMPLATE_FD, env_delta
from render_devserver import processes
from render_devserver.ids import new_id
from render_devserver.socket_server import TaskSocketServer
from render_devserver.store import Owner, ProcessRecord, Store, TaskRecord
from render_devserver.templates import (
    ForkedProcess,
    PendingFork,
    Template,
    TemplateLost,
    exit_description,
    fork_unsupported_reason,
)

__all__ = [
    "ENV_NO_FORK",
    "DatabaseInUse",
    "ProcessMode",
    "RegistrationError",
    "Scheduler",
    "TaskNotFound",
]

logger = logging.getLogger("render_devserver")

Status = TaskRunStatus

# A process that reported its result gets this long to exit on its own.
EXIT_GRACE_SECONDS = 5.0
# SIGTERM, then this long before SIGKILL (timeouts and cancels).
KILL_GRACE_SECONDS = 3.0
# A subtask result poll for a child still running is held open until the child ends,
# for at most this long, then answered "still running": the parent hears of the end
# at once instead of at its next poll. Safely under the 15 s per-call timeout of every
# known worker (0.6.1: httpx Timeout(15); 1.x: a 15 s socket timeout; ours: 15 s), so
# to them a held poll is only a slow answer; 0.6.1 and 1.x then poll again after 1 s.
SUBTASK_HOLD_SECONDS = 10.0
# Registration must finish within this (imports of a large project included).
REGISTER_TIMEOUT_SECONDS = 120.0
# How many output lines are quoted when a process dies without reporting.
LAST_LINES = 10
# How long a starting server waits for the processes of its previous life to be gone.
LEFTOVER_GRACE_SECONDS = 5.0
# A forked attempt is listed with the watchdog once it has run this long (its template
# covers it until then; see render_devserver.processes).
WATCH_FORKED_AFTER = 1.0

# Schedulers of this process that are running, by instance id (the database owner
# check tells a live one from a stopped one when both were in this process).
_LIVE_INSTANCES: set[str] = set()
# A process that died: how long its last output may take to be read to the end (a
# grandchild that holds the pipe open must not hold the report back for longer).
OUTPUT_DRAIN_SECONDS = 1.0
# Set (to anything but "" or "0") in the dev server's environment, this makes every
# attempt a cold process, as --no-fork does; the test suite runs both ways with it.
ENV_NO_FORK = "RENDER_DEV_NO_FORK"
# A lost template is rebuilt after this delay, doubled for each loss in a row.
TEMPLATE_RESTART_SECONDS = 0.25
TEMPLATE_RESTART_CAP_SECONDS = 30.0


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


class ProcessMode:
    """How attempts get their process: ``fork`` (from a warm template) or ``cold``."""

    __slots__ = ("mode", "reason")

    def __init__(self, mode: str, reason: str) -> None:
        self.mode = mode
        self.reason = reason

    def describe(self) -> str:
        if self.mode == "fork":
            return "forked from a warm template (one new process per attempt, in milliseconds)"
        return f"a cold process per attempt ({self.reason})"

    def as_json(self) -> dict[str, str]:
        return {"mode": self.mode, "reason": self.reason, "description": self.describe()}

    def __repr__(self) -> str:
        return f"ProcessMode({self.mode!r}, {self.reason!r})"


def socket_parent(env: Mapping[str, str] = os.environ) -> str | None:
    """Where the directory of the attempts' sockets goes: a memory file system if
    there is one of ours, else ``/tmp``.

    Every attempt binds a socket file, and creating one on a journaled disk file
    system (ext4 on ``/tmp``) costs several times what it does on ``tmpfs``. First
    ``$XDG_RUNTIME_DIR`` (the per-user runtime directory of systemd systems, meant
    for sockets) when it is an absolute path to a directory that only we can use,
    then ``/dev/shm`` when it is a writable directory (Linux), then ``/tmp`` (short,
    unlike macOS's ``$TMPDIR``: a socket path has about 100 bytes), else the
    platform's default. The directory itself is made by ``mkdtemp`` with mode 0700
    in any of them.
    """
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime) and len(runtime) <= 40:
        with contextlib.suppress(OSError):
            info = os.stat(runtime)
            private = info.st_uid == os.getuid() and info.st_mode & 0o077 == 0
            if stat.S_ISDIR(info.st_mode) and private and os.access(runtime, os.W_OK | os.X_OK):
                return runtime
    for candidate in ("/dev/shm", "/tmp"):
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


def _describe_exit(process: asyncio.subprocess.Process | ForkedProcess) -> str:
    if isinstance(process, ForkedProcess):
        return process.describe_exit()
    return exit_description(process.returncode)


class RegistrationError(RuntimeError):
    """The start command did not register its tasks; the message carries its output."""


class TaskNotFound(LookupError):
    """No registered task matches a slug or id."""


class DatabaseInUse(RuntimeError):
    """Another dev server is running on the same database."""


class _Attempt:
    """One attempt in flight: its process, socket server and the callback it sent."""

    def __init__(self, run_id: str, number: int) -> None:
        self.run_id = run_id
        self.number = number
        self.reported: asyncio.Future[taskserver.CallbackResult] = (
            asyncio.get_running_loop().create_future()
        )
        self.process: asyncio.subprocess.Process | ForkedProcess | None = None
        self.task: asyncio.Task[None] | None = None


class _Fork:
    """A fork request sent for an attempt, with the output pipes its child writes to."""

    __slots__ = ("handed", "pending", "pipes", "template", "writers")

    def __init__(
        self,
        template: Template,
        pending: PendingFork,
        pipes: list[_OutputPipe],
        writers: tuple[int, ...],
        handed: bool,
    ) -> None:
        self.template = template
        self.pending = pending
        self.pipes = pipes
        self.writers = writers  # the write ends, closed once the child has its copies
        self.handed = handed


def _close_fork_ends(pipes: list[_OutputPipe], writers: tuple[int, ...]) -> None:
    for pipe in pipes:
        pipe.close()
    for write_end in writers:
        with contextlib.suppress(OSError):
            os.close(write_end)


class _Begun:
    """What :meth:`Scheduler._launch` set up for an attempt before its task runs."""

    __slots__ = ("error", "fork", "output", "path", "server", "taken")

    def __init__(self, path: str, server: TaskSocketServer) -> None:
        self.path = path
        self.server = server
        self.output: list[str] = []
        self.fork: _Fork | None = None
        self.error: Exception | None = None
        self.taken = False  # the attempt's task ran, and owns all of this

    def abandon_unless_taken(self, _: object) -> None:
        """The task was cancelled before its first step: undo what it would have."""
        if self.taken:
            return
        self.taken = True
        fork, self.fork = self.fork, None
        if fork is not None:
            fork.template.abandon(fork.pending)  # its child is killed when it comes
            _close_fork_ends(fork.pipes, fork.writers)
        with contextlib.suppress(RuntimeError):  # no loop any more: nothing to close on
            asyncio.get_running_loop().create_task(self.server.close())


def _handed_input(task_socket: taskserver.TaskSocket | None) -> bytes | None:
    """The body of the attempt's ``GET /input`` answer, to hand a forked child with
    its fork request (the core answers it; the request is stateless)."""
    if task_socket is None:
        return None
    answer = task_socket.respond("GET", "/input", b"")
    return answer.body if isinstance(answer, taskserver.Answer) and answer.status == 200 else None


class _OutputPipe:
    """The read end of a task process's stdout or stderr, read by the event loop's
    selector (``add_reader``, no transport and no task): each line goes to
    ``on_line`` (with its newline; an over-long line in pieces), and :attr:`ended`
    is done once the pipe is closed, at its end or by :meth:`close`. It is in
    ``open_pipes`` while open."""

    _PIECE = 64 * 1024

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        on_line: Callable[[bytes], None],
        open_pipes: set[_OutputPipe],
    ) -> None:
        os.set_blocking(fd, False)
        self._open_pipes = open_pipes
        open_pipes.add(self)
        self._loop = loop
        self._fd = fd
        self._on_line = on_line
        self._pending = b""
        self.ended: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, self._PIECE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        *lines, self._pending = (self._pending + data).split(b"\n")
        for line in lines:
            self._on_line(line + b"\n")
        while len(self._pending) >= self._PIECE:
            piece, self._pending = self._pending[: self._PIECE], self._pending[self._PIECE :]
            self._on_line(piece)

    def close(self) -> None:
        if self._fd < 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1
        self._open_pipes.discard(self)
        if self._pending:
            self._on_line(self._pending)
            self._pending = b""
        if not self.ended.done():
            self.ended.set_result(None)


class _AttemptHandler:
    """What one attempt's task socket asks of the scheduler
    (:class:`render_core.taskserver.AttemptHandler`)."""

    def __init__(self, scheduler: Scheduler, attempt: _Attempt) -> None:
        self._scheduler = scheduler
        self._attempt = attempt

    def get_run(self, task_run_id: str) -> Run | None:
        return self._scheduler.store.get_run(task_run_id)

    def report(self, result: taskserver.CallbackResult) -> None:
        # Applied at once (the run ends, its event goes out) rather than when the
        # attempt's task next wakes: the callback is what every waiter waits for.
        if not self._attempt.reported.done():
            self._attempt.reported.set_result(result)
            self._scheduler._reported(self._attempt.run_id, result)

    def start_subtask(self, parent: Run, request: taskserver.SubtaskRequest) -> str | None:
        return self._scheduler.start_subtask(parent, request)


class _RegisterHandler:
    """What the register-mode process's task socket asks of the scheduler."""

    def __init__(self) -> None:
        self.registered: asyncio.Future[list[taskserver.RegisteredTask]] = (
            asyncio.get_running_loop().create_future()
        )

    def register(self, tasks: list[taskserver.RegisteredTask]) -> None:
        if not self.registered.done():
            self.registered.set_result(tasks)


class Scheduler:
    """See the module docstring. Create, ``await start()``, use, ``await stop()``."""

    def __init__(
        self,
        store: Store,
        *,
        command: Sequence[str],
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        concurrency: int | None = None,
        server_url: str = "",
        publish: Callable[[int, str, str], None] | None = None,
        log_sink: Callable[[str, str], None] | None = None,
        timeout_scale: float = 1.0,
        fork: bool | None = None,
    ) -> None:
        if not command:
            raise ValueError("a start command is required (the program that calls app.start())")
        self.store = store
        self.command = list(command)
        self.cwd = cwd
        self.env = dict(os.environ if env is None else env)
        self.concurrency = concurrency or max(2, 2 * (os.cpu_count() or 1))
        self.server_url = server_url
        self._publish = publish or (lambda event_id, run_id, data: None)
        self._log_sink = log_sink
        # Tests shrink task timeouts (the API refuses anything under 30 s).
        self.timeout_scale = timeout_scale
        self._ready: collections.deque[str] = collections.deque()
        self._attempts: dict[str, _Attempt] = {}
        self._after_attempt: set[str] = set()
        self._open_children: dict[str, set[str]] = collections.defaultdict(set)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        # Held subtask-result polls, by the child's run id (see SUBTASK_HOLD_SECONDS).
        self._held: dict[str, set[asyncio.Future[None]]] = {}
        self.subtask_hold_seconds = SUBTASK_HOLD_SECONDS
        # What happened, for tests and benchmarks (how many polls, forks, cold starts).
        self.counters: collections.Counter[str] = collections.Counter()
        self._socket_dir: str | None = None
        self._wake: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._socket_count = 0
        self._stopping = False
        self._instance = uuid.uuid4().hex
        self._parent_death = processes.parent_death_hook()
        self._watchdog: processes.Watchdog | None = None
        self._reapers: set[asyncio.Task[None]] = set()
        self.tasks: list[TaskRecord] = []
        # Warm templates (see render_devserver.templates): None means "unless
        # RENDER_DEV_NO_FORK is set", so a test run can switch every server off.
        if fork is None:
            fork = os.environ.get(ENV_NO_FORK, "") in ("", "0")
            off_reason = f"{ENV_NO_FORK} is set"
        else:
            off_reason = "--no-fork"
        unsupported = fork_unsupported_reason() if fork else None
        self.fork = fork and unsupported is None
        self.process_mode = ProcessMode(
            "cold", off_reason if not fork else unsupported or "no template yet"
        )
        self._template: Template | None = None
        self._template_envs: dict[Template, dict[str, str]] = {}
        self._retired: set[Template] = set()
        self._template_losses = 0
        self._rebuild: asyncio.TimerHandle | None = None
        self._rebuilding: asyncio.Task[None] | None = None
        self._said: set[str] = set()
        # Output readers by the id of their process's output list (see _keep).
        self._captures: dict[int, set[asyncio.Future[None]]] = {}
        self._pipes: set[_OutputPipe] = set()

    # -- lifecycle of the scheduler itself ----------------------------------------

    async def start(self) -> None:
        """Claim the database, end leftovers, register tasks, recover runs, dispatch.

        Raises :class:`DatabaseInUse` if another server runs on the database and
        :class:`RegistrationError` if the start command registers nothing.
        """
        self._claim_database()
        try:
            await self._end_leftovers()
            self._socket_dir = tempfile.mkdtemp(prefix="rwd-", dir=socket_parent())
            os.chmod(self._socket_dir, 0o700)
            self._watchdog = await processes.Watchdog(self._socket_dir).start()
            # The rows one transition writes (the run, its event, log lines) share a commit.
            self.store.defer_commits(asyncio.get_running_loop().call_soon)
            self._wake = asyncio.Event()
            await self.register()
        except BaseException:
            await self.stop()
            raise
        self._recover()
        self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    def _claim_database(self) -> None:
        pid = os.getpid()
        me = Owner(pid=pid, token=processes.start_token(pid), instance=self._instance)

        def in_use(owner: Owner) -> bool:
            if owner.pid == me.pid:
                return owner.instance in _LIVE_INSTANCES
            # Alive and the same process (not a recycled pid): it still runs.
            return owner.token is not None and processes.start_token(owner.pid) == owner.token

        current = self.store.claim(me, in_use)
        if current is not None:
            raise DatabaseInUse(
                f"the database {self.store.path} is in use by another dev server "
                f"(pid {current.pid}); stop it, or give this one another --db"
            )
        _LIVE_INSTANCES.add(self._instance)

    async def _end_leftovers(self) -> None:
        """End the task processes a previous server on this database left running."""
        records = self.store.processes()
        if not records:
            return
        ended = [r for r in records if processes.end_group(r.pid, r.token, signal.SIGKILL)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LEFTOVER_GRACE_SECONDS
        waiting = list(ended)
        while waiting and loop.time() < deadline:
            waiting = [r for r in waiting if processes.group_exists(r.pid)]
            if waiting:
                await asyncio.sleep(0.02)
        for record in records:
            directory = record.socket_dir
            if os.path.basename(directory).startswith("rwd-") and directory != self._socket_dir:
                shutil.rmtree(directory, ignore_errors=True)
            self.store.remove_process(record.pid)
        if ended:
            self._say(
                f"ended {len(ended)} task process(es) left running by the previous server"
                + (f"; {len(waiting)} still exiting" if waiting else "")
            )

    def _say(self, message: str) -> None:
        if self._log_sink is not None:
            self._log_sink("", message)

    async def stop(self) -> None:
        """Stop every process (attempts in flight stay ``running`` for recovery) and clean up."""
        self._stopping = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        for timer in self._timers.values():
            timer.cancel()
        tasks = [a.task for a in self._attempts.values() if a.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._close_templates()
        for pipe in list(self._pipes):
            pipe.close()
        if self._reapers:
            # Every process is stopping or gone; let their records be cleared.
            await asyncio.wait(set(self._reapers), timeout=KILL_GRACE_SECONDS + 5.0)
        if self._watchdog is not None:
            await self._watchdog.close()
            self._watchdog = None
        self.store.defer_commits(None)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        if self._instance in _LIVE_INSTANCES:
            _LIVE_INSTANCES.discard(self._instance)
            self.store.release(self._instance)

    # -- registration ----------------------------------------------------------------

    async def register(self) -> list[TaskRecord]:
        """Run the start command in register mode and store the tasks it registers.

        With forking on, the registration process may stay as the new warm template;
        the previous one is retired (its attempts in flight run to their end).
        """
        registered, template = await self._run_registration()
        items = [task.payload() for task in registered]
        self.tasks = self.store.replace_tasks(items, utcnow(), new_id)
        if self.fork:
            self._install_template(template)
        return self.tasks

    async def _run_registration(self) -> tuple[list[taskserver.RegisteredTask], Template | None]:
        """One register-mode process: its tasks, and the template it became (if any)."""
        handler = _RegisterHandler()
        path = self._socket_path()
        server = TaskSocketServer(path, taskserver.TaskSocket.for_registration(handler))
        await server.start()
        output: list[str] = []
        template = Template(on_lost=self._template_lost) if self.fork else None
        adopted: Template | None = None
        try:
            extra = {} if template is None else {ENV_TEMPLATE_FD: str(template.child_fd)}
            process = await self._spawn(
                "register",
                path,
                "",
                output,
                extra_env=extra,
                pass_fds=() if template is None else (template.child_fd,),
            )
            if template is not None:
                template.started()
            waiter: asyncio.Future[Any] = asyncio.ensure_future(process.wait())
            done, _ = await asyncio.wait(
                {handler.registered, waiter},
                timeout=REGISTER_TIMEOUT_SECONDS,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if handler.registered.done():
                registered = handler.registered.result()
            else:
                if not done:
                    await self._terminate(process)
                await asyncio.wait({waiter}, timeout=EXIT_GRACE_SECONDS)
                tail = "\n".join(output[-20:]) or "(no output)"
                code = process.returncode
                raise RegistrationError(
                    "the start command exited before registering tasks"
                    f"{f' (exit status {code})' if code is not None else ''}."
                    f" Its output:\n{tail}"
                )
            if template is not None:
                reason = await template.wait_ready(EXIT_GRACE_SECONDS)
                if reason is None:
                    adopted = template
                    self._adopt(template, process, waiter, extra_env=extra)
                else:
                    self._cold(reason)
            if adopted is None:
                await self._finish_process(process, waiter)
        finally:
            await server.close()
            if template is not None and adopted is None:
                template.close()
        return registered, adopted

    # -- warm templates (render_devserver.templates) ---------------------------------

    def _adopt(
        self,
        template: Template,
        process: asyncio.subprocess.Process,
        waiter: asyncio.Future[Any],
        *,
        extra_env: Mapping[str, str],
    ) -> None:
        """Keep a registration process that offered itself as a template."""
        env = self._process_env("register", "")
        env.update(extra_env)
        self._template_envs[template] = env
        template.process = process

        def exited(_: asyncio.Future[Any]) -> None:
            template.close()  # a no-op if the channel said so first
            self._retired.discard(template)
            self._template_envs.pop(template, None)

        waiter.add_done_callback(exited)

    def _install_template(self, template: Template | None) -> None:
        old, self._template = self._template, template
        if old is not None and old is not template:
            self._retired.add(old)
            old.retire()
        if template is not None:
            self.process_mode = ProcessMode("fork", f"template pid {template.pid}")
            self._say_once("mode:fork", "task processes: " + self.process_mode.describe())

    def _cold(self, reason: str) -> None:
        self.process_mode = ProcessMode("cold", reason)
        self._say_once("cold:" + reason, "task processes: " + self.process_mode.describe())

    def _say_once(self, key: str, message: str) -> None:
        """Tell the developer (the dev server's output), once per distinct thing."""
        if key in self._said:
            return
        self._said.add(key)
        logger.info("%s", message)
        if self._log_sink is not None:
            self._log_sink("", message)

    def _template_lost(self, template: Template, reason: str) -> None:
        if template is not self._template:
            return  # retired already, or never installed
        self._template = None
        if self._stopping:
            return
        self.process_mode = ProcessMode("cold", f"rebuilding the template: {reason}")
        self._say_once(
            f"lost:{self._template_losses}",
            f"warm template lost ({reason}); attempts start cold until it is rebuilt",
        )
        self._schedule_rebuild()

    def _schedule_rebuild(self) -> None:
        if self._rebuild is not None or self._rebuilding is not None or self._stopping:
            return
        delay = min(
            TEMPLATE_RESTART_CAP_SECONDS, TEMPLATE_RESTART_SECONDS * 2**self._template_losses
        )
        self._template_losses += 1
        loop = asyncio.get_running_loop()

        def due() -> None:
            self._rebuild = None
            self._rebuilding = loop.create_task(self._rebuild_template())

        self._rebuild = loop.call_later(delay, due)

    async def _rebuild_template(self) -> None:
        """A new template from a registration run (the stored tasks stay as they are:
        re-registering is what --reload and SIGHUP do)."""
        try:
            _, template = await self._run_registration()
        except (RegistrationError, OSError) as exc:
            self._say_once(f"rebuild:{exc}", f"could not rebuild the warm template: {exc}")
            template = None
        finally:
            self._rebuilding = None
        if self._stopping:
            if template is not None:
                template.close()
            return
        if template is not None:
            self._install_template(template)
        elif self.process_mode.mode == "cold" and "rebuilding" in self.process_mode.reason:
            self._schedule_rebuild()

    def _request_fork(
        self,
        socket_path: str,
        run_id: str,
        output: list[str],
        task_socket: taskserver.TaskSocket,
    ) -> _Fork | None:
        """Ask the template for the attempt's child now (no await); None: start it cold."""
        template = self._template
        if template is None or not template.alive:
            return None
        if template.stale():
            # A project module changed: this attempt must see it. Start it cold,
            # and replace the template (the new one imports the new code).
            self._install_template(None)
            self.process_mode = ProcessMode("cold", "rebuilding the template: code changed")
            self._schedule_rebuild()
            return None
        base = self._template_envs.get(template)
        if base is None:
            logger.info("attempt of %s starts cold: the template has exited", run_id)
            return None
        set_env, unset = env_delta(base, self._process_env("run", socket_path))
        # The output pipes are wired before the fork request goes out: once the child
        # runs, the server's turns are for its socket.
        pipes, writers = self._output_pipes(run_id, output)
        handed = _handed_input(task_socket)
        try:
            pending = template.request_fork(set_env, unset, writers, handed)
        except TemplateLost as exc:
            _close_fork_ends(pipes, writers)
            logger.info("attempt of %s starts cold: %s", run_id, exc)
            return None
        return _Fork(template, pending, pipes, writers, handed is not None)

    async def _start_process(
        self, socket_path: str, run_id: str, output: list[str], fork: _Fork | None
    ) -> asyncio.subprocess.Process | ForkedProcess:
        """The attempt's process: the child ``fork`` asked for, else a cold one."""
        if fork is not None:
            try:
                process = await self._forked(fork, run_id)
            except TemplateLost as exc:
                logger.info("attempt of %s starts cold: %s", run_id, exc)
            else:
                self._template_losses = 0
                self.counters["forked_attempts"] += 1
                return process
        self.counters["cold_attempts"] += 1
        return await self._spawn("run", socket_path, run_id, output)

    async def _forked(self, fork: _Fork, run_id: str) -> ForkedProcess:
        try:
            process = await fork.template.forked(fork.pending)
        except BaseException:
            _close_fork_ends(fork.pipes, fork.writers)
            raise
        for write_end in fork.writers:
            os.close(write_end)
        fork.writers = ()
        if fork.handed:
            self.counters["inputs_handed"] += 1
        # Forked or spawned, an attempt's process is recorded and watched the same way,
        # so that it ends with the server however the server ends.
        self._track(process, run_id)
        return process

    def _output_pipes(
        self, run_id: str, output: list[str]
    ) -> tuple[list[_OutputPipe], tuple[int, int]]:
        """A process's stdout and stderr: the pipes read into its run's logs, and the
        write ends to hand it (the caller closes them once the process has its copies)."""
        loop = asyncio.get_running_loop()
        pipes: list[_OutputPipe] = []
        writers: list[int] = []
        try:
            for name in ("stdout", "stderr"):
                read_end, write_end = os.pipe()
                writers.append(write_end)
                pipe = _OutputPipe(
                    loop,
                    read_end,
                    functools.partial(self._log_line, run_id, name, output),
                    self._pipes,
                )
                pipes.append(pipe)
                self._keep(pipe.ended, output)
        except BaseException:
            for pipe in pipes:
                pipe.close()
            for write_end in writers:
                os.close(write_end)
            raise
        return pipes, (writers[0], writers[1])

    def _keep(self, ended: asyncio.Future[None], output: list[str]) -> None:
        """File the end of an :class:`_OutputPipe` under the ``output`` list of its
        process, so that :meth:`_drained` can await it."""
        readers = self._captures.setdefault(id(output), set())
        readers.add(ended)

        def done(_: asyncio.Future[None]) -> None:
            readers.discard(ended)
            if not readers and self._captures.get(id(output)) is readers:
                del self._captures[id(output)]

        ended.add_done_callback(done)

    async def _drained(self, output: list[str]) -> None:
        """Wait (briefly) until a process's output has been read to its end."""
        readers = self._captures.get(id(output))
        if readers:
            await asyncio.wait(set(readers), timeout=OUTPUT_DRAIN_SECONDS)

    async def _close_templates(self) -> None:
        if self._rebuild is not None:
            self._rebuild.cancel()
            self._rebuild = None
        if self._rebuilding is not None:
            self._rebuilding.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._rebuilding
        templates = [t for t in (self._template, *self._retired) if t is not None]
        self._template = None
        for template in templates:
            template.close()  # the template kills any child it still has, and exits
        for template in templates:
            process = template.process
            if process is not None:
                await self._finish_process(process, asyncio.ensure_future(process.wait()))
        self._retired.clear()
        self._template_envs.clear()

    # -- runs ----------------------------------------------------------------------

    def resolve_task(self, ref: str) -> TaskRecord:
        """A task by id, name or slug (``anything/name``, optional ``:version``)."""
        if ref.startswith("tsk-"):
            task = self.store.task_by_id(ref)
            if task is not None:
                return task
        task = self.store.task_by_name(task_name(ref))
        if task is None:
            raise TaskNotFound(f"task not found: {ref}")
        return task

    def start_run(
        self,
        task_ref: str,
        input_data: list[Any] | dict[str, Any],
        *,
        idempotency_key: str | None = None,
        parent: Run | None = None,
    ) -> tuple[Run, bool]:
        """A new pending run (or the run already started with ``idempotency_key``).

        Returns ``(run, created)``.
        """
        if idempotency_key:
            existing = self.store.run_by_idempotency_key(idempotency_key)
            if existing is not None:
                return existing, False
        task = self.resolve_task(task_ref)
        run = lifecycle.new_run(
            run_id=new_id("trn-"),
            task_id=task.id,
            task_name=task.name,
            input_data=input_data,
            now=utcnow(),
            policy=lifecycle.policy_from_registration(task.registration),
            timeout_seconds=lifecycle.timeout_from_registration(task.registration),
            parent=parent,
            idempotency_key=idempotency_key,
        )
        self.store.put_run(run)
        if parent is not None:
            self._open_children[parent.id].add(run.id)
        self._enqueue(run.id)
        return run, True

    def start_subtask(self, parent: Run, request: taskserver.SubtaskRequest) -> str | None:
        """A child of ``parent`` (once the task socket has checked that ``parent`` and its
        root are running): its run id, or None if no task matches the name."""
        try:
            run, _ = self.start_run(
                request.task_name,
                request.input,
                idempotency_key=request.idempotency_key,
                parent=parent,
            )
        except TaskNotFound:
            return None
        return run.id

    async def wait_for_end(self, run_id: str) -> None:
        """Hold a subtask-result poll while the child runs (up to the hold bound)."""
        self.counters["subtask_result_polls"] += 1
        run = self.store.get_run(run_id)
        if run is None or run.is_terminal or self.subtask_hold_seconds <= 0:
            return
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        held = self._held.setdefault(run_id, set())
        held.add(ended)
        try:
            await asyncio.wait({ended}, timeout=self.subtask_hold_seconds)
        finally:
            held.discard(ended)
            if not held and self._held.get(run_id) is held:
                del self._held[run_id]

    def cancel_run(self, run_id: str) -> Run:
        """Cancel a run and everything below it; raises KeyError or LifecycleError."""
        run = self.store.get_run(run_id)
        if run is None:
            raise KeyError(run_id)
        if run.is_terminal:
            raise LifecycleError(f"task run {run_id} is not active (it is {run.status})")
        now = utcnow()
        canceled = self._cancel_one(run, now)
        for child in self.store.descendants(run_id):
            if not child.is_terminal:
                self._cancel_one(child, now)
        return canceled

    def _cancel_one(self, run: Run, now: _dt.datetime) -> Run:
        canceled = lifecycle.cancel(run, now)
        self._save_terminal(canceled)
        timer = self._timers.pop(run.id, None)
        if timer is not None:
            timer.cancel()
        attempt = self._attempts.get(run.id)
        if attempt is not None and attempt.task is not None:
            attempt.task.cancel()
        return canceled

    def queue_state(self) -> dict[str, int]:
        """In-flight counts: attempts holding a slot, parents waiting on subtasks, retries.

        ``running`` holds a slot; ``waitingOnSubtasks`` are running parents that do not
        (see ``_busy``); ``waitingRetry`` are pending runs backing off before a retry.
        """
        waiting = sum(1 for run_id in self._attempts if self._open_children.get(run_id))
        return {
            "running": len(self._attempts) - waiting,
            "waitingOnSubtasks": waiting,
            "waitingRetry": len(self._timers),
            "concurrency": self.concurrency,
        }

    # -- internals -------------------------------------------------------------------

    def _socket_path(self) -> str:
        assert self._socket_dir is not None
        self._socket_count += 1
        return os.path.join(self._socket_dir, f"{self._socket_count}.sock")

    def _enqueue(self, run_id: str) -> None:
        self._ready.append(run_id)
        if self._dispatcher is not None:
            self._pump()  # at once, not on the dispatcher's next turn

    def _pump(self) -> None:
        """Launch ready runs while there is room."""
        while self._ready and self._busy() < self.concurrency:
            run_id = self._ready.popleft()
            run = self.store.get_run(run_id)
            if run is None or run.status is not Status.PENDING:
                continue
            if run_id in self._attempts:
                # The previous attempt's process is still exiting: start the
                # retry as soon as it is gone.
                self._after_attempt.add(run_id)
                continue
            if not lifecycle.is_due(run, utcnow()):
                self._schedule_retry(run)
                continue
            self._launch(run)

    def _busy(self) -> int:
        # A parent waiting for its children does not hold a slot: otherwise parents
        # could fill every slot and wait forever for children that cannot start.
        return sum(1 for run_id in self._attempts if not self._open_children.get(run_id))

    async def _dispatch(self) -> None:
        assert self._wake is not None
        while True:
            self._pump()
            self._wake.clear()
            await self._wake.wait()

    def _launch(self, run: Run) -> None:
        run = lifecycle.start_attempt(run, utcnow())
        self.store.put_run(run)
        current = run.current_attempt
        assert current is not None
        attempt = _Attempt(run.id, current.number)
        self._attempts[run.id] = attempt
        # The socket listens and the fork request goes out in this turn, not in the
        # attempt task's first step: whatever started the run (a REST call, a subtask
        # request) is answered after it, and the child runs while the caller reads it.
        begun = self._begin_attempt(run, attempt)
        task = asyncio.get_running_loop().create_task(self._run_attempt(run, attempt, begun))
        task.add_done_callback(begun.abandon_unless_taken)
        attempt.task = task

    def _begin_attempt(self, run: Run, attempt: _Attempt) -> _Begun:
        path = self._socket_path()
        task_socket = taskserver.TaskSocket.for_attempt(
            _AttemptHandler(self, attempt), run.id, attempt.number
        )
        server = TaskSocketServer(path, task_socket, wait_for_end=self.wait_for_end)
        begun = _Begun(path, server)
        try:
            server.listen()
        except Exception as exc:  # raised in the attempt's task, which fails the run
            begun.error = exc
            return begun
        begun.fork = self._request_fork(path, run.id, begun.output, task_socket)
        return begun

    async def _run_attempt(self, run: Run, attempt: _Attempt, begun: _Begun) -> None:
        begun.taken = True
        path, server, output = begun.path, begun.server, begun.output
        process: asyncio.subprocess.Process | ForkedProcess | None = None
        try:
            if begun.error is not None:
                raise begun.error
            try:
                process = await self._start_process(path, run.id, output, begun.fork)
            except OSError as exc:
                self._attempt_failed(run.id, f"could not start the task process: {exc}")
                return
            attempt.process = process
            waiter: asyncio.Future[Any] = asyncio.ensure_future(process.wait())
            await asyncio.wait(
                {attempt.reported, waiter},
                timeout=run.timeout_seconds * self.timeout_scale,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if attempt.reported.done():  # the handler applied the report
                await self._finish_process(process, waiter)
            elif waiter.done():
                # Exited without a report (a crash, os._exit, a kill): give a late
                # callback on the socket a moment, then fail the attempt.
                await asyncio.wait({attempt.reported}, timeout=0.2)
                if not attempt.reported.done():
                    await self._drained(output)
                    tail = "\n".join(output[-LAST_LINES:])
                    self._attempt_failed(
                        run.id,
                        f"the task process {_describe_exit(process)} "
                        "before reporting a result"
                        + (f"; its last output:\n{tail}" if tail else ""),
                    )
            else:
                # Failed at the limit, not after the process is gone (SIGTERM's grace
                # period may take seconds); a retry waits for the old process anyway.
                self._attempt_failed(run.id, f"the task timed out after {run.timeout_seconds} s")
                await self._terminate(process)
        except asyncio.CancelledError:
            if process is not None and process.returncode is None:
                await asyncio.shield(self._terminate(process))
            raise
        finally:
            self._attempts.pop(run.id, None)
            await server.close()
            self.counters["task_socket_requests"] += server.requests_served
            if run.id in self._after_attempt:
                self._after_attempt.discard(run.id)
                self._ready.append(run.id)
            if self._wake is not None:
                self._wake.set()

    def _reported(self, run_id: str, result: taskserver.CallbackResult) -> None:
        run = self.store.get_run(run_id)
        if run is not None and run.status is Status.RUNNING:
            self._attempt_ended(taskserver.apply_report(run, result, utcnow()))

    def _attempt_failed(self, run_id: str, error: str) -> None:
        run = self.store.get_run(run_id)
        if run is not None and run.status is Status.RUNNING:
            self._attempt_ended(lifecycle.fail_attempt(run, error, utcnow()))

    def _attempt_ended(self, run: Run) -> None:
        """Store a run whose attempt just ended: terminal, or waiting for its retry."""
        if run.is_terminal:
            self._save_terminal(run)
        else:
            self.store.put_run(run)
            self._schedule_retry(run)

    def _schedule_retry(self, run: Run) -> None:
        assert run.retry_at is not None
        delay = max(0.0, (run.retry_at - utcnow()).total_seconds())
        loop = asyncio.get_running_loop()
        old = self._timers.pop(run.id, None)
        if old is not None:
            old.cancel()
        self._timers[run.id] = loop.call_later(delay, self._retry_due, run.id)

    def _retry_due(self, run_id: str) -> None:
        self._timers.pop(run_id, None)
        self._enqueue(run_id)

    def _save_terminal(self, run: Run) -> None:
        self.store.put_run(run)
        # ASCII-only JSON (\u escapes): the official clients decode each network read
        # on its own and drop a multi-byte character split across two reads.
        data = json.dumps(codec.unstructure(lifecycle.to_details(run)), separators=(",", ":"))
        event_id = self.store.append_event(run.id, data)
        for ended in self._held.pop(run.id, ()):
            if not ended.done():
                ended.set_result(None)
        if run.parent_id:
            children = self._open_children.get(run.parent_id)
            if children is not None:
                children.discard(run.id)
                if not children:
                    del self._open_children[run.parent_id]
                    if self._wake is not None:
                        self._wake.set()
        self._publish(event_id, run.id, data)

    def _recover(self) -> None:
        now = utcnow()
        for run in self.store.runs_with_status([Status.RUNNING]):
            self._attempt_failed_recovered(run, now)
        for run in self.store.runs_with_status([Status.PENDING]):
            if run.parent_id:
                parent = self.store.get_run(run.parent_id)
                if parent is not None and not parent.is_terminal:
                    self._open_children[parent.id].add(run.id)
            if run.retry_at is not None and run.retry_at > now:
                self._schedule_retry(run)
            else:
                self._ready.append(run.id)

    def _attempt_failed_recovered(self, run: Run, now: _dt.datetime) -> None:
        failed = lifecycle.fail_attempt(
            run, "interrupted: the dev server stopped while this attempt was running", now
        )
        if failed.is_terminal:
            self._save_terminal(failed)
        else:
            self.store.put_run(failed)

    def _process_env(self, mode: str, socket_path: str) -> dict[str, str]:
        env = {
            **self.env,
            "RENDER_SDK_MODE": mode,
            "RENDER_SDK_SOCKET_PATH": socket_path,
            "RENDER_USE_LOCAL_DEV": "true",
            "PYTHONUNBUFFERED": "1",
        }
        if mode == "register":
            env["RENDER_SDK_DEV_EXAMPLES"] = "1"  # input skeletons for the dashboard
        if self.server_url:
            env["RENDER_LOCAL_DEV_URL"] = self.server_url
        return env

    async def _spawn(
        self,
        mode: str,
        socket_path: str,
        run_id: str,
        output: list[str],
        *,
        extra_env: Mapping[str, str] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> asyncio.subprocess.Process:
        env = self._process_env(mode, socket_path)
        env.update(extra_env or {})
        pipes, (stdout, stderr) = self._output_pipes(run_id, output)
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                cwd=self.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=self._parent_death,
                pass_fds=tuple(pass_fds),
            )
        except BaseException:
            for pipe in pipes:
                pipe.close()
            raise
        finally:
            os.close(stdout)
            os.close(stderr)
        self._track(process, run_id)
        return process

    def _track(self, process: asyncio.subprocess.Process | ForkedProcess, run_id: str) -> None:
        """Record a new task process (database and watchdog) until it and its group end."""
        token = processes.start_token(process.pid)
        assert self._socket_dir is not None
        self.store.add_process(
            ProcessRecord(
                pid=process.pid,
                token=token,
                run_id=run_id,
                socket_dir=self._socket_dir,
                started_at=utcnow(),
            )
        )
        if self._watchdog is not None:
            # A forked child's template ends it with the server: the watchdog (a wake-up
            # per change) is told only of those that outlive a short attempt.
            forked = isinstance(process, ForkedProcess)
            self._watchdog.watch(process.pid, token, after=WATCH_FORKED_AFTER if forked else 0.0)
        reaper = asyncio.get_running_loop().create_task(self._reap(process, token))
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)

    async def _reap(
        self, process: asyncio.subprocess.Process | ForkedProcess, token: str | None
    ) -> None:
        await process.wait()
        # One process per attempt: whatever it started in its group goes with it.
        processes.end_group(process.pid, token, signal.SIGKILL)
        with contextlib.suppress(sqlite3.Error):  # the store may be closed by now
            self.store.remove_process(process.pid)
        if self._watchdog is not None:
            self._watchdog.forget(process.pid)

    def _log_line(self, run_id: str, name: str, output: list[str], line: bytes) -> None:
        """One line a task process wrote: into its run's logs and its recent output."""
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        output.append(text)
        if len(output) > 200:
            del output[:100]
        self.store.append_logs([(run_id, utcnow(), name, text)])
        if self._log_sink is not None:
            self._log_sink(run_id, text)

    async def _finish_process(
        self, process: asyncio.subprocess.Process | ForkedProcess, waiter: asyncio.Future[int]
    ) -> None:
        """Let a process that has reported exit on its own; stop it if it lingers."""
        await asyncio.wait({waiter}, timeout=EXIT_GRACE_SECONDS)
        if process.returncode is None:
            await self._terminate(process)

    async def _terminate(self, process: asyncio.subprocess.Process | ForkedProcess) -> None:
        """SIGTERM to the process group, a grace period, then SIGKILL."""
        for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            if process.returncode is not None:
                return
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                # A forked child may not have its own group yet (it calls setsid
                # first thing): signal the process itself.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(process.pid, sig)
            except PermissionError:
                pass
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(process.wait(), grace)
