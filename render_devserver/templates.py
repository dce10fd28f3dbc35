"""Warm templates, dev-server side: fork each attempt from a registered worker.

Theory of operation
-------------------
A :class:`Template` is the dev server's end of one control channel
(:mod:`render_core.template` has the messages). The scheduler creates one before it
starts a registration run, hands :attr:`Template.child_fd` to that process (with
``RENDER_DEV_TEMPLATE_FD``), and after registration asks :meth:`Template.wait_ready`
whether the process stayed as a template. A worker of this SDK says ``ready``;
anything else says ``unavailable`` with a reason, or nothing at all before it
exits (end-of-file on the channel): then every attempt keeps a cold process.

For an attempt, :meth:`Template.request_fork` sends the attempt's environment
changes and the write ends of two pipes (stdout, stderr) at once, with no await, so
that the scheduler can ask for the child before it answers whoever started the run;
:meth:`Template.forked` then waits for a :class:`ForkedProcess`:
the parts of ``asyncio.subprocess.Process`` the scheduler uses (``pid``,
``returncode``, ``wait()``), so timeouts, cancels and Ctrl-C treat a forked child
exactly like a cold one (SIGTERM to its process group, a grace period, SIGKILL).
The exit status comes from the template, which reaps its children; each child also
arrives with a pidfd, so that a child whose template died is still watched until
it exits (its status is then unknown, and said so).

Everything the template sends is checked (it runs the user's code): a message that
breaks the protocol, a fork answer that does not come within
:data:`FORK_TIMEOUT_SECONDS`, or end-of-file marks the template *lost*; the
scheduler then starts attempts cold and builds a new template.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import os
import select
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence

from render_core import template as protocol

__all__ = [
    "FORK_TIMEOUT_SECONDS",
    "ForkedProcess",
    "PendingFork",
    "Template",
    "TemplateLost",
    "exit_description",
    "fork_unsupported_reason",
]

logger = logging.getLogger("render_devserver")


def exit_description(code: int | None) -> str:
    """``exited with status 3`` or ``was killed by signal 9 (SIGKILL)``, from a return code."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"was killed by signal {-code} ({name})"
    return f"exited with status {code}"


# A fork answer takes a millisecond or two; a template silent for this long is stuck
# (or is not a template at all) and is replaced.
FORK_TIMEOUT_SECONDS = 5.0
SPARE_WAIT_SECONDS = 0.005
"""How long a fork request waits for the spare the template is forking (it forks one
at once when it has no child left) before it goes to the template as a request."""
_FD_SIZE = array.array("i").itemsize
_MAX_FDS = 3  # a child's pidfd; a spare's pidfd, socket and wake-up counter
# A plain int: socket's flags are enum members, and their arithmetic runs in Python
# for every message.
_TRUNCATED = int(socket.MSG_TRUNC | socket.MSG_CTRUNC)


def fork_unsupported_reason() -> str | None:
    """Why this platform cannot fork attempts from a template, or None."""
    if not sys.platform.startswith("linux"):
        # macOS forbids fork-without-exec in many system frameworks; Windows has no fork.
        return f"forking attempts is not supported on {sys.platform}"
    if not hasattr(os, "pidfd_open") or not hasattr(socket, "SOCK_SEQPACKET"):
        return "this Python has no pidfd or SOCK_SEQPACKET support"  # pragma: no cover
    return None


class TemplateLost(Exception):
    """The template cannot fork (any more); the message says why."""


class _HeldSpare:
    """A child the template forked ahead, waiting on ``channel`` for its request."""

    __slots__ = ("channel", "id", "pid", "pidfd", "wake")

    def __init__(
        self, spare_id: int, pid: int, pidfd: int, channel: socket.socket, wake: int | None
    ) -> None:
        self.id = spare_id
        self.pid = pid
        self.pidfd = pidfd
        self.channel = channel
        self.wake = wake

    def close(self) -> None:
        """Let it go: it reads end-of-file and exits (the template reaps it)."""
        self.channel.close()
        for fd in (self.pidfd, self.wake):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


class PendingFork:
    """A fork request sent (or queued to send) and the answer it waits for."""

    __slots__ = ("answer", "id", "unsent")

    def __init__(self, request_id: int, answer: asyncio.Future[ForkedProcess]) -> None:
        self.id = request_id
        self.answer = answer
        self.unsent: tuple[bytes, list[int]] | None = None


class ForkedProcess:
    """An attempt's process, forked by a template (see the module docstring)."""

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.status_known = True
        self._pidfd: int | None = pidfd
        self._done = asyncio.Event()

    async def wait(self) -> int:
        await self._done.wait()
        assert self.returncode is not None
        return self.returncode

    def describe_exit(self) -> str:
        """``exited with status 3``, ``was killed by signal 9 (SIGKILL)``, or unknown."""
        code = self.returncode
        if not self.status_known:
            return "exited (its status is unknown: the template that forked it is gone)"
        return exit_description(code)

    def _exited(self, returncode: int | None) -> None:
        if self._done.is_set():
            return
        self.status_known = returncode is not None
        # Unknown: report a failure status; the description says it is unknown.
        self.returncode = 1 if returncode is None else returncode
        self._close_pidfd()
        self._done.set()

    def _watch_pidfd(self, loop: asyncio.AbstractEventLoop) -> None:
        """The template is gone: learn of this child's end from its pidfd."""
        pidfd = self._pidfd
        if pidfd is None or self._done.is_set():
            return

        def readable() -> None:
            self._exited(None)

        loop.add_reader(pidfd, readable)

    def _close_pidfd(self) -> None:
        pidfd, self._pidfd = self._pidfd, None
        if pidfd is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(pidfd)
            os.close(pidfd)

    def __repr__(self) -> str:
        return f"<ForkedProcess {self.pid} returncode={self.returncode}>"


def _pid_of_pidfd(fd: int) -> int | None:
    """The pid a pidfd refers to (from /proc), or None if ``fd`` is not a pidfd."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as info:
            for line in info:
                if line.startswith("Pid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class Template:
    """The dev server's end of one template's control channel."""

    def __init__(self, *, on_lost: Callable[[Template, str], None] | None = None) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (ours, theirs):
            with contextlib.suppress(OSError):
                end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * protocol.MAX_MESSAGE_BYTES)
        ours.setblocking(False)
        theirs.set_inheritable(True)
        self._sock = ours
        self._theirs: socket.socket | None = theirs
        self._loop = asyncio.get_running_loop()
        self._on_lost = on_lost
        self._ready: asyncio.Future[protocol.Ready | str] = self._loop.create_future()
        self._pending: dict[int, asyncio.Future[ForkedProcess]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._next_id = 0
        self._spare: _HeldSpare | None = None
        self._handed: dict[int, int] = {}  # spare id -> the request it was given
        self._offers_spares = False  # it has offered one: it forks them
        # The one request waiting for the spare being forked, and its deadline.
        self._awaiting: tuple[PendingFork, bytes, list[int]] | None = None
        self._awaiting_timer: asyncio.TimerHandle | None = None
        self._reading = False
        self._retired = False
        self.pid: int | None = None
        self.process: asyncio.subprocess.Process | None = None
        """The template's process, once the scheduler adopted it."""
        self.lost: str | None = None
        """Why this template cannot fork any more (None while it can)."""
        self.watch: tuple[tuple[str, int], ...] = ()

    @property
    def child_fd(self) -> int:
        """The descriptor to pass to the registration process (``pass_fds``)."""
        assert self._theirs is not None
        return self._theirs.fileno()

    def started(self) -> None:
        """The registration process has its copy: drop ours, start reading."""
        if self._theirs is not None:
            self._theirs.close()
            self._theirs = None
        if not self._reading and self.lost is None:
            self._loop.add_reader(self._sock.fileno(), self._readable)
            self._reading = True

    @property
    def alive(self) -> bool:
        return self.lost is None and self._ready.done() and not self._retired

    @property
    def in_flight(self) -> int:
        return len(self._children)

    async def wait_ready(self, timeout: float) -> str | None:
        """None once the template is ready; else why there is none (it said, or left)."""
        try:
            answer = await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except asyncio.TimeoutError:
            self._lose("the registration process neither exited nor offered a template")
            return "the registration process neither exited nor offered a template"
        if isinstance(answer, str):
            return answer
        self.pid = answer.pid
        self.watch = answer.watch
        return None

    def stale(self) -> bool:
        """Whether a project module the template imported changed on disk since."""
        for path, mtime in self.watch:
            try:
                if os.stat(path).st_mtime_ns != mtime:
                    return True
            except OSError:
                return True
        return False

    def request_fork(
        self,
        set_env: Mapping[str, str],
        unset_env: Sequence[str],
        stdio: tuple[int, int],
        input_body: bytes | None = None,
    ) -> PendingFork:
        """Ask for a child for one attempt, writing to ``stdio``, at once (no await).

        The request is sent in this call unless the channel is full; pass the result to
        :meth:`forked` for the child. The caller keeps its copies of ``stdio`` until then.
        ``input_body``, the attempt's ``GET /input`` answer, travels with the request
        (when small enough), so that the child need not ask for it.

        Raises :class:`TemplateLost` when the template cannot fork (the message says
        why; the attempt should start cold).
        """
        if self._spare is not None and self._reading and _readable_now(self._sock):
            # What the template said (or its end of file: it died) before handing its
            # spare on: a spare whose template is gone has nobody to report its exit.
            self._readable()
        if not self.alive:
            raise TemplateLost(self.lost or "the template is retired")
        self._next_id += 1
        pending = PendingFork(self._next_id, self._loop.create_future())
        try:
            data = protocol.build_fork(pending.id, set_env, unset_env, input_body)
            if self._hand_to_spare(pending, data, stdio):
                return pending
            if self._spare_coming():
                self._await_spare(pending, data, list(stdio))
            elif not self._try_send(data, list(stdio)):
                pending.unsent = (data, list(stdio))
        except (OSError, protocol.TemplateProtocolError) as exc:
            self._lose(f"could not send a fork request to the template: {exc}")
            raise TemplateLost(self.lost or "") from None
        self._pending[pending.id] = pending.answer
        return pending

    async def forked(self, pending: PendingFork) -> ForkedProcess:
        """The child :meth:`request_fork` asked for; raises :class:`TemplateLost` when
        the template could not fork it, or did not answer in time."""
        try:
            if pending.unsent is not None:
                data, fds = pending.unsent
                await self._send(data, fds)
                pending.unsent = None
            if pending.answer.done():  # a spare took it: known at once, no turn to wait
                return pending.answer.result()
            return await asyncio.wait_for(asyncio.shield(pending.answer), FORK_TIMEOUT_SECONDS)
        except asyncio.CancelledError:
            # The attempt was cancelled meanwhile: its child, come or to come, must not run.
            _orphaned(pending.answer)
            raise
        except asyncio.TimeoutError:
            self._lose(
                f"the template did not answer a fork request within {FORK_TIMEOUT_SECONDS:g} s"
            )
            raise TemplateLost(self.lost or "") from None
        except (OSError, protocol.TemplateProtocolError) as exc:
            self._lose(f"could not send a fork request to the template: {exc}")
            raise TemplateLost(self.lost or "") from None
        finally:
            self._pending.pop(pending.id, None)

    def abandon(self, pending: PendingFork) -> None:
        """Nobody will take the child of ``pending``: it is killed when its answer comes
        (or never forked, if the request was not sent)."""
        self._pending.pop(pending.id, None)
        pending.unsent = None
        if self._awaiting is not None and self._awaiting[0] is pending:
            self._stop_awaiting()
        _orphaned(pending.answer)

    async def fork(
        self,
        set_env: Mapping[str, str],
        unset_env: Sequence[str],
        stdio: tuple[int, int],
        input_body: bytes | None = None,
    ) -> ForkedProcess:
        """:meth:`request_fork`, then :meth:`forked`."""
        return await self.forked(self.request_fork(set_env, unset_env, stdio, input_body))

    def retire(self) -> None:
        """Fork no more; the template exits once its children have (they keep running)."""
        if self._retired or self.lost is not None:
            return
        self._retired = True
        awaiting = self._stop_awaiting()
        if awaiting is not None and not awaiting[0].answer.done():
            self._send_request(awaiting[1], awaiting[2])  # before "retire": answered like any other
        self._release_spare()
        with contextlib.suppress(OSError):
            self._sock.send(protocol.build_retire())

    def close(self) -> None:
        """Drop the channel: the template kills any child it still has, and exits."""
        self._lose("the template was closed")

    # ----------------------------------------------------------------- internals

    def _spare_coming(self) -> bool:
        """Whether the template is forking a spare now: it has none out, no child of
        its runs (it forks the next spare at once then), and it offers spares."""
        return (
            self._offers_spares
            and self._awaiting is None
            and self._spare is None
            and not self._children
            and not self._pending
        )

    def _await_spare(self, pending: PendingFork, data: bytes, stdio: list[int]) -> None:
        """Keep the request for the spare on its way, for up to SPARE_WAIT_SECONDS.

        Sent to the template instead, it would fork a child of its own for it once
        the spare is out, on the request's path, and leave the spare for the next one.
        """
        self._awaiting = (pending, data, stdio)
        self._awaiting_timer = self._loop.call_later(SPARE_WAIT_SECONDS, self._spare_late)

    def _stop_awaiting(self) -> tuple[PendingFork, bytes, list[int]] | None:
        awaiting, self._awaiting = self._awaiting, None
        if self._awaiting_timer is not None:
            self._awaiting_timer.cancel()
            self._awaiting_timer = None
        return awaiting

    def _spare_late(self) -> None:
        """No spare in time: the request goes to the template, which forks for it (and
        requests wait for no spare until one is offered again)."""
        awaiting = self._stop_awaiting()
        self._offers_spares = False
        if awaiting is None or self.lost is not None:
            return
        pending, data, fds = awaiting
        if pending.answer.done():
            return
        self._send_request(data, fds)

    def _send_request(self, data: bytes, fds: list[int]) -> None:
        """Send a request held back from :meth:`request_fork` to the template now."""
        try:
            if not self._try_send(data, fds):
                self._loop.create_task(self._send_or_lose(data, fds))
        except OSError as exc:
            self._lose(f"could not send a fork request to the template: {exc}")

    def _release_spare(self) -> None:
        """Let the held spare go (it reads end-of-file and exits), if there is one."""
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.close()

    def _hand_to_spare(self, pending: PendingFork, data: bytes, stdio: tuple[int, int]) -> bool:
        """Give the request to the spare, if there is one alive; True if it took it.

        Its child is known at once (the spare's pid and pidfd came with it), and the
        template hears of it with ``taken``, sent after the request.
        """
        spare, self._spare = self._spare, None
        if spare is None:
            return False
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", stdio).tobytes())]
        try:
            if spare.wake is not None:
                # Woken through its event counter first: a wake-up that lets the
                # kernel start the spare on an idle core, where the socket's own
                # (a "sync" one) would run it on this one, before this request is
                # answered. The request is in its socket before it looks.
                os.eventfd_write(spare.wake, 1)
            spare.channel.sendmsg([data], ancillary)
        except OSError:  # it died meanwhile (or cannot take it now): fork instead
            spare.close()
            return False
        spare.channel.close()  # it has its request; nothing else goes to it
        if spare.wake is not None:
            os.close(spare.wake)
        child = ForkedProcess(spare.pid, spare.pidfd)
        self._children[pending.id] = child
        self._handed[spare.id] = pending.id
        pending.answer.set_result(child)
        taken = protocol.build_taken(spare.id, pending.id)
        if not self._try_send(taken, []):
            self._loop.create_task(self._send_or_lose(taken))
        return True

    async def _send_or_lose(self, data: bytes, fds: list[int] | None = None) -> None:
        try:
            await self._send(data, fds or [])
        except OSError as exc:
            self._lose(f"the template's control channel failed: {exc}")

    def _try_send(self, data: bytes, fds: list[int]) -> bool:
        """Send now; False if the channel is full (then :meth:`_send` waits for room)."""
        ancillary = (
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
        )
        try:
            self._sock.sendmsg([data], ancillary)
        except BlockingIOError:
            return False
        return True

    async def _send(self, data: bytes, fds: list[int]) -> None:
        while True:
            if self._try_send(data, fds):
                return
            writable = self._loop.create_future()
            self._loop.add_writer(self._sock.fileno(), writable.set_result, None)
            try:
                await writable
            finally:
                self._loop.remove_writer(self._sock.fileno())

    def _readable(self) -> None:
        while self.lost is None:
            try:
                data, ancillary, flags, _ = self._sock.recvmsg(
                    protocol.MAX_MESSAGE_BYTES, socket.CMSG_SPACE(_MAX_FDS * _FD_SIZE)
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._lose(f"the template's control channel failed: {exc}")
                return
            fds: list[int] = []
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    usable = len(payload) - len(payload) % _FD_SIZE
                    fds.extend(array.array("i", payload[:usable]))
            if not data:
                _close_all(fds)
                if not self._ready.done():
                    # It exited without a word: not a worker of this SDK (or too old).
                    self._lose("the start command does not offer a warm template")
                else:
                    self._lose("the template exited")
                return
            if flags & _TRUNCATED:
                _close_all(fds)
                self._lose("the template sent a message over the size limit")
                return
            try:
                message = protocol.parse_template_message(data)
                self._handle(message, fds)
            except protocol.TemplateProtocolError as exc:
                _close_all(fds)
                self._lose(f"the template broke the control protocol: {exc}")
                return

    def _handle(
        self,
        message: protocol.Ready
        | protocol.Unavailable
        | protocol.Forked
        | protocol.ForkFailed
        | protocol.Exited
        | protocol.Spare
        | protocol.SpareGone,
        fds: list[int],
    ) -> None:
        if isinstance(message, protocol.Forked):
            self._forked(message, fds)
            return
        if isinstance(message, protocol.Spare):
            self._spare_offered(message, fds)
            return
        _close_all(fds)
        if isinstance(message, protocol.SpareGone):
            if self._spare is not None and self._spare.id == message.id:
                self._release_spare()
            request_id = self._handed.pop(message.id, None)
            if request_id is not None:  # its attempt ended before "taken" was read
                gone = self._children.pop(request_id, None)
                if gone is not None:
                    gone._exited(message.returncode)
            return
        if isinstance(message, protocol.Ready | protocol.Unavailable):
            if self._ready.done():
                raise protocol.TemplateProtocolError(f"a second {type(message).__name__.lower()}")
            self._ready.set_result(
                message if isinstance(message, protocol.Ready) else message.reason
            )
            if isinstance(message, protocol.Unavailable):
                self._lose(message.reason)
        elif isinstance(message, protocol.ForkFailed):
            answer = self._pending.get(message.id)
            if answer is not None and not answer.done():
                answer.set_exception(TemplateLost(f"the template could not fork: {message.reason}"))
        else:
            child = self._children.pop(message.id, None)
            if child is not None and child.pid == message.pid:
                child._exited(message.returncode)
            if self._handed:
                self._handed = {k: v for k, v in self._handed.items() if v != message.id}

    def _spare_offered(self, message: protocol.Spare, fds: list[int]) -> None:
        if len(fds) not in (2, 3):
            _close_all(fds)
            raise protocol.TemplateProtocolError(
                "spare: a pidfd and a socket (and its wake-up counter) must come with it"
            )
        wake = fds.pop() if len(fds) == 3 else None
        if wake is not None and not _is_eventfd(wake):
            _close_all([*fds, wake])
            raise protocol.TemplateProtocolError("spare: its wake-up counter is not an eventfd")
        pid = _pid_of_pidfd(fds[0])
        if pid is None or pid not in (message.pid, -1):
            _close_all(fds)
            raise protocol.TemplateProtocolError("spare: no pidfd of the child came with it")
        try:
            channel = socket.socket(fileno=fds[1])
        except OSError:
            _close_all(fds if wake is None else [*fds, wake])
            raise protocol.TemplateProtocolError("spare: no socket came with it") from None
        if channel.family != socket.AF_UNIX or channel.type != socket.SOCK_SEQPACKET:
            channel.close()
            _close_all([fds[0]] if wake is None else [fds[0], wake])
            raise protocol.TemplateProtocolError("spare: its socket is not a Unix packet socket")
        channel.setblocking(False)
        spare = _HeldSpare(message.id, message.pid, fds[0], channel, wake)
        if pid == -1 or not self.alive:
            spare.close()  # reaped already (its spare_gone follows), or not wanted
            return
        self._release_spare()
        self._spare = spare
        self._offers_spares = True
        awaiting = self._stop_awaiting()
        if awaiting is not None:
            pending, data, fds = awaiting
            if pending.answer.done():  # abandoned meanwhile
                return
            if not self._hand_to_spare(pending, data, (fds[0], fds[1])):
                self._send_request(data, fds)

    def _forked(self, message: protocol.Forked, fds: list[int]) -> None:
        # A pidfd whose process has already been reaped reports pid -1: in a fan-out a
        # trivial child can finish before this message is read. Its exit is reported.
        if len(fds) != 1 or _pid_of_pidfd(fds[0]) not in (message.pid, -1):
            _close_all(fds)
            raise protocol.TemplateProtocolError("forked: no pidfd of the child came with it")
        child = ForkedProcess(message.pid, fds[0])
        answer = self._pending.get(message.id)
        if answer is None or answer.done():
            # Nobody waits for it any more (the request timed out): it must not run.
            _kill_child(message.pid)
            self._children[message.id] = child  # its exit is still reported
            return
        self._children[message.id] = child
        answer.set_result(child)

    def _lose(self, reason: str) -> None:
        if self.lost is not None:
            return
        self.lost = reason
        self._stop_awaiting()  # its answer fails below, with every pending one
        self._release_spare()
        if self._reading:
            with contextlib.suppress(ValueError, RuntimeError):
                self._loop.remove_reader(self._sock.fileno())
            self._reading = False
        self._sock.close()
        if self._theirs is not None:
            self._theirs.close()
            self._theirs = None
        if not self._ready.done():
            self._ready.set_result(reason)
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(TemplateLost(reason))
        children, self._children = self._children, {}
        for child in children.values():
            child._watch_pidfd(self._loop)
        if self._on_lost is not None:
            self._on_lost(self, reason)


def _is_eventfd(fd: int) -> bool:
    """Whether ``fd`` is an eventfd (what /proc says it links to)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"
    except OSError:
        return False


def _readable_now(sock: socket.socket) -> bool:
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _orphaned(answer: asyncio.Future[ForkedProcess]) -> None:
    """Nobody will take the child ``answer`` is for: kill it if it has come; if not, it
    is killed when it comes (its request is no longer pending)."""
    if not answer.done():
        answer.cancel()
    elif not answer.cancelled() and answer.exception() is None:
        _kill_child(answer.result().pid)


def _kill_child(pid: int) -> None:
    """SIGKILL a forked child's group (the child alone if it has no group yet)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # no group of its own yet: the child itself
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
