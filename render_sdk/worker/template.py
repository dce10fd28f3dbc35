"""The worker as a warm template: after registering, fork one child per attempt.

The dev server starts the registration run with ``RENDER_DEV_TEMPLATE_FD`` (see
:mod:`render_core.template` for the messages and ``docs/dev-server.md#warm-processes``
for what users see). After the tasks are registered, :func:`serve` keeps this
process alive with the user's module imported and no task ever run, and forks it
for each attempt the dev server asks for. The child:

- starts its own session (``setsid``): its own pid and process group, which the dev
  server signals for timeouts, cancels and Ctrl-C;
- writes stdout and stderr to the pipes that came with the request (``SCM_RIGHTS``),
  so each attempt's output is its own;
- drops every descriptor the template holds for itself (the control socket, the
  pidfds of its other children), and keeps what the user's module opened at
  import, as a cold process would have;
- gets the attempt's environment (``RENDER_SDK_MODE=run``, its socket path) on top
  of the environment as the module left it at import;
- inherits the cwd, signal handlers and signal mask as they were after import: the
  template never changes them and never runs a task, so no attempt sees another's
  globals, environment, cwd, files or handlers;
- ends as a process does, minus the teardown of the heap it shares with the
  template (see :func:`_exit_without_teardown`).

:func:`serve` returns ``True`` in the child (which then runs its attempt like any
run-mode process), ``False`` when the template cannot be offered (threads are
running, the platform cannot fork safely), and never returns in the template:
it exits once the dev server retires it or goes away.

Fork safety: ``fork`` copies only the calling thread, so a template with other
threads (started by the user's module, or by a C extension) could hand its
children locks that nobody will release. The template counts the threads of the
process (``/proc/self/task``, which sees threads ``threading`` does not) before
offering itself and before each fork, and declines if there is more than one.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import gc
import io
import math
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Mapping
from typing import Any

from render_core import template as protocol
from render_sdk.worker import _rehearsal

__all__ = ["attempt_finished", "fork_unsafe_reason", "handed_input", "serve"]

_FD_SIZE = array.array("i").itemsize
# Descriptors a request may carry: the child's stdout and stderr.
_MAX_FDS = 2
# A plain int: socket's flags are enum members, and their arithmetic runs in Python
# for every message.
_TRUNCATED = int(socket.MSG_TRUNC | socket.MSG_CTRUNC)
_BUFFER = protocol.MAX_MESSAGE_BYTES
# Enough of a message to tell a fork request and its id (see fork_request_id).
_PEEK_BYTES = 64
_NEEDS_STDIO = "a fork request needs two descriptors (stdout, stderr)"
SPARE_QUIET_SECONDS = 0.02
"""How long after an attempt started the template waits to fork the next spare
while children run (with none running, it forks at once)."""


def fork_unsafe_reason() -> str | None:
    """Why this process must not be forked for attempts, or None if it may be."""
    if not sys.platform.startswith("linux"):
        # macOS forbids fork without exec in many system libraries; Windows has none.
        return f"forking is not supported on {sys.platform}"
    if not hasattr(os, "pidfd_open"):  # pragma: no cover - Linux on Python >= 3.9 has it
        return "this Python has no os.pidfd_open"
    threads = _thread_count()
    if threads > 1:
        return (
            f"the program runs {threads} threads after import, and forking a process "
            "with threads is unsafe"
        )
    return None


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # pragma: no cover - /proc is always mounted on Linux
        import threading

        return threading.active_count()


def _watched_files() -> list[tuple[str, int]]:
    """The project's module files this process imported, with their mtimes.

    The project is the working directory; installed packages and the standard
    library (site-packages, the interpreter's prefix) are not watched.
    """
    root = os.path.abspath(os.getcwd()) + os.sep
    skip = tuple(
        os.path.abspath(prefix) + os.sep
        for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}
    )
    found: dict[str, int] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        path = os.path.abspath(path)
        if not path.startswith(root) or path.startswith(skip) or "site-packages" in path:
            continue
        with contextlib.suppress(OSError):
            found[path] = os.stat(path).st_mtime_ns
        if len(found) >= protocol.MAX_WATCHED_FILES:
            break
    return sorted(found.items())


def _send(sock: socket.socket, data: bytes, fds: list[int] | None = None) -> None:
    ancillary = []
    if fds:
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
    sock.sendmsg([data], ancillary)


def _read_message(sock: socket.socket) -> tuple[bytes, list[int]] | None:
    """:func:`_receive` for the template's loop: ``(b"", [])`` when the channel failed
    (as at end of file), None for a message that broke the protocol (said on stderr)."""
    try:
        return _receive(sock)
    except protocol.TemplateProtocolError as exc:
        sys.stderr.write(f"render_sdk template: {exc}\n")
        return None
    except OSError:
        return b"", []


def _receive(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One datagram and the descriptors that came with it (``b""`` at end of file)."""
    data, ancillary, flags, _ = sock.recvmsg(_BUFFER, socket.CMSG_SPACE(_MAX_FDS * _FD_SIZE))
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % _FD_SIZE
            fds.extend(array.array("i", payload[:usable]))
    if flags & _TRUNCATED:
        for fd in fds:
            os.close(fd)
        raise protocol.TemplateProtocolError("a control message was truncated")
    return data, fds


class _Child:
    __slots__ = ("id", "pid", "pidfd")

    def __init__(self, request_id: int, pid: int, pidfd: int) -> None:
        self.id = request_id
        self.pid = pid
        self.pidfd = pidfd


class _Spare:
    """A child forked ahead of its attempt, announced to the dev server, which holds
    the other end of the socket it waits on for its request."""

    __slots__ = ("id", "pid", "pidfd")

    def __init__(self, spare_id: int, pid: int, pidfd: int) -> None:
        self.id = spare_id
        self.pid = pid
        self.pidfd = pidfd


def serve(env: Mapping[str, str]) -> bool:
    """Be the template (see the module docstring); True in a forked child."""
    raw = env.get(protocol.ENV_TEMPLATE_FD, "")
    try:
        fd = int(raw)
        sock = socket.socket(fileno=fd)
    except (ValueError, OSError):
        sys.stderr.write(f"render_sdk: ignoring {protocol.ENV_TEMPLATE_FD}={raw!r}: not a socket\n")
        return False
    os.environ.pop(protocol.ENV_TEMPLATE_FD, None)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_SEQPACKET:
        sock.detach()  # not ours to close: it is whatever that descriptor is
        return False
    sock.set_inheritable(False)
    reason = fork_unsafe_reason()
    try:
        if reason is not None:
            _send(sock, protocol.build_unavailable(reason))
            sock.close()
            return False
        # What attempts import on their run path: load it once, here (an async task
        # runs on an event loop; a sync one needs only the socket transport).
        import asyncio  # noqa: F401

        import render_transports.h11_transport  # noqa: F401

        _rehearsal.warm()
        _send(sock, protocol.build_ready(os.getpid(), _watched_files()))
    except OSError:
        sock.close()  # the dev server is gone already: carry on as a registration run
        return False
    sys.stdout.flush()
    sys.stderr.flush()
    # Objects that exist now are shared by every child: keep the collector off them,
    # so that a child's first collection does not copy the whole heap page by page.
    gc.freeze()
    return _loop(sock)


def _loop(sock: socket.socket) -> bool:
    return _Template(sock).run()


class _Template:
    """The template's loop: fork requests in, children out, exits reported.

    One child is kept forked ahead (the *spare*): it has already started its own
    session and waits for its attempt's request on a socket whose other end is the
    dev server's (sent with ``spare``), so an attempt pays one message to the child,
    not a fork nor a hop through this loop; ``taken`` then says which request it
    got. The next spare is forked once no attempt has started for
    :data:`SPARE_QUIET_SECONDS`, or at once when no child runs: forked while the
    attempt that took the last one runs, it would compete with that attempt (and
    with the client waiting for it) for a core, on the path of the run it was meant
    to speed up. A trivial attempt is over before the wait is, so the next one
    still finds its spare; in a burst (a fan-out of subtasks) the template forks on
    the spot, which costs the same there. A request that comes while the next spare
    is being forked goes to that spare (:meth:`_hand_to_new_spare`). Without a spare
    (it could not be forked, died, the burst has not settled, or the dev server has
    not read it yet), a request forks on the spot.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.children: dict[int, _Child] = {}  # by pidfd
        self.spare: _Spare | None = None
        self.poller = select.poll()
        self.poller.register(sock.fileno(), select.POLLIN)
        self.retiring = False
        self.spares = 0  # spares forked so far (each one's id)
        self.last_start = 0.0  # time.monotonic() when an attempt last started

    def run(self) -> bool:
        """Serve until retired or abandoned (then exit); True in a child."""
        while True:
            if self.retiring and not self.children:
                _leave(0)
            wait = self._spare_due_in()
            if wait == 0:
                if self._fork_spare():
                    return True
                wait = None  # forked, or it cannot be: the next event decides
            for fd, _ in self.poller.poll(wait):
                if self.spare is not None and fd == self.spare.pidfd:
                    # Taken, or dead unused? A "taken" is sent the moment its request
                    # is: read what has come before deciding.
                    if self._drain():
                        return True
                    if self.spare is not None and fd == self.spare.pidfd:
                        self._lost_spare()
                        continue
                if fd in self.children:
                    self.poller.unregister(fd)
                    _reap(self.sock, self.children.pop(fd))
                elif fd == self.sock.fileno() and self._drain():
                    # Through _drain: an earlier event of this poll may have read
                    # the message already, and a read now would block.
                    return True

    def _spare_due_in(self) -> int | None:
        """Milliseconds until the next spare is due (0: now); None if none is."""
        if self.spare is not None or self.retiring:
            return None
        if not self.children:
            return 0
        due = self.last_start + SPARE_QUIET_SECONDS - time.monotonic()
        return 0 if due <= 0 else max(1, math.ceil(due * 1000))

    def _drain(self) -> bool:
        """Serve every message already waiting (no blocking); True in a child."""
        while select.select([self.sock], [], [], 0)[0]:
            if self._serve_one():
                return True
        return False

    def _serve_one(self) -> bool:
        got = _read_message(self.sock)
        if got is None:
            return False
        data, fds = got
        if not data:
            # The dev server is gone: its attempts go with it.
            _close(fds)
            self._drop_spare()
            for child in self.children.values():
                _kill(child.pid)
            _leave(0)
        # A fork request is handed on unparsed: the child reads it (see fork_request_id).
        request_id = protocol.fork_request_id(data)
        if request_id is None:
            try:
                message = protocol.parse_server_message(data)
            except protocol.TemplateProtocolError as exc:
                _close(fds)
                sys.stderr.write(f"render_sdk template: {exc}\n")
                return False
            if isinstance(message, protocol.Retire):
                _close(fds)
                self.retiring = True
                self._drop_spare()
                return False
            if isinstance(message, protocol.Taken):
                _close(fds)
                self._taken(message)
                return False
            request_id = message.id
        if len(fds) != 2:
            _refuse(self.sock, request_id, fds, _NEEDS_STDIO)
            return False
        return _fork(self.sock, request_id, data, fds, self)

    def _taken(self, message: protocol.Taken) -> None:
        """The dev server gave the spare a request: it is that request's child now."""
        spare = self.spare
        if spare is None or spare.id != message.spare:
            return  # not ours (any more): a spare that died is reported as gone
        self.spare = None
        self.children[spare.pidfd] = _Child(message.id, spare.pid, spare.pidfd)
        self.last_start = time.monotonic()

    def _adopt(self, child: _Child) -> None:
        self.children[child.pidfd] = child
        self.last_start = time.monotonic()
        self.poller.register(child.pidfd, select.POLLIN)
        with contextlib.suppress(OSError):  # a vanished server is noticed by the loop
            _send(self.sock, protocol.build_forked(child.id, child.pid), [child.pidfd])

    def _fork_spare(self) -> bool:
        """Fork the next spare; True in that child, once its request has come."""
        if fork_unsafe_reason() is not None:
            return False  # each request is then refused with the reason
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            wake = os.eventfd(0, os.EFD_CLOEXEC)
        except OSError:
            ours.close()
            theirs.close()
            return False
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            os.close(wake)
            return False
        if pid == 0:
            ours.close()
            return self._wait_as_spare(theirs, wake)
        theirs.close()
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            _kill(pid)
            os.waitpid(pid, 0)
            ours.close()
            os.close(wake)
            return False
        waiting = self._waiting_request()
        if waiting is not None:
            return self._hand_to_new_spare(waiting, pid, pidfd, ours, wake)
        self.spares += 1
        try:
            # The dev server holds the only other end from now on: the spare reads
            # its request from the server, or end-of-file when the server lets it go.
            _send(self.sock, protocol.build_spare(self.spares, pid), [pidfd, ours.fileno(), wake])
        except OSError:
            _kill(pid)
            os.waitpid(pid, 0)
            os.close(pidfd)
            return False
        finally:
            ours.close()
            os.close(wake)
        self.spare = _Spare(self.spares, pid, pidfd)
        self.poller.register(pidfd, select.POLLIN)
        return False

    def _waiting_request(self) -> tuple[int, bytes, list[int]] | None:
        """A fork request that came while the spare was being forked, taken off the
        channel (with its descriptors); None if the next message is anything else."""
        if not select.select([self.sock], [], [], 0)[0]:
            return None
        try:
            # Peeked without a control buffer: no descriptors are installed by a peek.
            head = self.sock.recv(_PEEK_BYTES, socket.MSG_PEEK)
        except OSError:
            return None  # the loop finds out what is wrong with the channel
        if protocol.fork_request_id(head) is None:
            return None
        got = _read_message(self.sock)
        if got is None:
            return None
        data, fds = got
        request_id = protocol.fork_request_id(data)
        if request_id is None or len(fds) != 2:
            # What the loop would have refused: refused here (the request is read).
            if request_id is not None:
                _refuse(self.sock, request_id, fds, _NEEDS_STDIO)
            else:
                _close(fds)
            return None
        return request_id, data, fds

    def _hand_to_new_spare(
        self,
        waiting: tuple[int, bytes, list[int]],
        pid: int,
        pidfd: int,
        ours: socket.socket,
        wake: int,
    ) -> bool:
        """Give the spare just forked the request that came meanwhile, as the dev
        server gives a spare it holds one, and answer that request with ``forked``.

        The request would otherwise wait for this spare to be announced and then
        for a fork of its own, on the spot, with the spare left for the request
        after it: two forks on the path of one request instead of the rest of one.
        False (we are the template); a spare that cannot take it is stopped, and the
        request forked for on the spot.
        """
        request_id, data, fds = waiting
        try:
            os.eventfd_write(wake, 1)
            _send(ours, data, fds)
        except OSError:
            _kill(pid)
            os.waitpid(pid, 0)
            os.close(pidfd)
            return _fork(self.sock, request_id, data, fds, self)
        finally:
            ours.close()
            os.close(wake)
        _close(fds)  # the child has its copies
        self._adopt(_Child(request_id, pid, pidfd))
        return False

    def _wait_as_spare(self, channel: socket.socket, wake: int) -> bool:
        """In a spare: start a session, wait for the request, become its attempt.

        The dev server bumps ``wake`` (an eventfd) just before it writes the request:
        woken by it, the spare may start on an idle core (a wake-up by the socket
        would put it on the server's). End-of-file on ``channel`` (let go) ends it.
        """
        try:
            os.setsid()
            self._forget_template_descriptors()
            waiting = select.poll()
            waiting.register(wake, select.POLLIN)
            waiting.register(channel.fileno(), select.POLLIN)
            if not waiting.poll(0):
                # The pages its attempt will write, copied while it waits; not when
                # its request is here already (the template handed it one at once).
                _rehearsal.touch()
                waiting.poll()
            os.close(wake)
            data, fds = _receive(channel)  # the request follows its wake-up at once
            channel.close()
            if not data:
                os._exit(0)  # the template let this spare go
            if len(fds) != 2:
                os._exit(70)
            request = _request_in_child(data, fds)
        except BaseException:
            os._exit(70)  # EX_SOFTWARE: the dev server reports the exit status
        _become_attempt(request, fds)
        return True

    def _forget_template_descriptors(self) -> None:
        """A child keeps none of the template's own descriptors."""
        self.sock.close()
        for pidfd in self.children:
            os.close(pidfd)
        self.children.clear()
        if self.spare is not None:  # not ours: a sibling's
            os.close(self.spare.pidfd)
            self.spare = None

    def _lost_spare(self) -> None:
        """The spare exited with no ``taken`` read: reap it, and tell the dev server."""
        spare = self.spare
        assert spare is not None
        self.spare = None
        self.poller.unregister(spare.pidfd)
        _, status = os.waitpid(spare.pid, 0)
        os.close(spare.pidfd)
        # Its "taken" may still be on its way (its attempt ran that fast): the status
        # goes with the message, and the server reports it as that attempt's.
        with contextlib.suppress(OSError):  # a vanished server is noticed by the loop
            _send(
                self.sock,
                protocol.build_spare_gone(spare.id, os.waitstatus_to_exitcode(status)),
            )

    def _drop_spare(self) -> None:
        """Retired or abandoned: the spare is killed (the server uses it no more)."""
        spare = self.spare
        if spare is None:
            return
        self.spare = None
        self.poller.unregister(spare.pidfd)
        _kill(spare.pid)
        os.waitpid(spare.pid, 0)
        os.close(spare.pidfd)


def _fork(
    sock: socket.socket,
    request_id: int,
    data: bytes,
    fds: list[int],
    template: _Template,
) -> bool:
    """Fork for request ``data`` on the spot; True in the child, False in the template."""
    reason = fork_unsafe_reason()
    if reason is not None:
        return _refuse(sock, request_id, fds, reason)
    try:
        pid = os.fork()
    except OSError as exc:
        return _refuse(sock, request_id, fds, f"fork failed: {exc}")
    if pid == 0:
        try:
            os.setsid()
            template._forget_template_descriptors()
        except BaseException:
            os._exit(70)
        _become_attempt(_request_in_child(data, fds), fds)
        return True
    _close(fds)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        # Without a pidfd nobody can watch the child: stop it, and say why.
        _kill(pid)
        os.waitpid(pid, 0)
        return _refuse(sock, request_id, [], f"pidfd_open failed: {exc}")
    template._adopt(_Child(request_id, pid, pidfd))
    return False


def _refuse(sock: socket.socket, request_id: int, fds: list[int], reason: str) -> bool:
    _close(fds)
    with contextlib.suppress(OSError):
        _send(sock, protocol.build_fork_failed(request_id, reason))
    return False


def _request_in_child(data: bytes, fds: list[int]) -> protocol.ForkRequest:
    """The request a child was forked for, parsed and checked here (the template only
    read its id); a bad one ends the child with EX_SOFTWARE, the reason on its stderr."""
    try:
        request = protocol.parse_server_message(data)
        if not isinstance(request, protocol.ForkRequest):
            raise protocol.TemplateProtocolError("a fork request was expected")
    except protocol.TemplateProtocolError as exc:
        with contextlib.suppress(OSError):
            os.write(fds[1], f"render_sdk template: {exc}\n".encode())
        os._exit(70)
    return request


def _close(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _become_attempt(request: protocol.ForkRequest, fds: list[int]) -> None:
    """In the child (its own session already): the attempt's stdio and environment."""
    try:
        stdout, stderr = fds
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        _close(fds)
        _HANDED.input = request.input
        for name in request.unset:
            os.environ.pop(name, None)
        for name, value in request.set:
            os.environ[name] = value
        # Registered after every handler of the module's import: it runs first.
        atexit.register(_exit_without_teardown)
        hook = sys.excepthook

        def uncaught(*exc_info: Any) -> None:
            _EXIT.status = 1
            hook(*exc_info)

        sys.excepthook = uncaught
    except BaseException:
        os._exit(70)  # EX_SOFTWARE: the dev server reports the exit status


class _ExitStatus:
    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status = 0


_EXIT = _ExitStatus()


class _HandedInput:
    __slots__ = ("input",)

    def __init__(self) -> None:
        self.input: bytes | None = None


_HANDED = _HandedInput()


def handed_input() -> bytes | None:
    """The attempt's ``GET /input`` answer, if it came with the fork request (once)."""
    body, _HANDED.input = _HANDED.input, None
    return body


def attempt_finished(code: int) -> None:
    """The exit status a forked child leaves with (its attempt's: 0, or 1 if it failed)."""
    _EXIT.status = code


def _exit_without_teardown() -> None:
    """End a forked child the way the interpreter would, without freeing its heap.

    At exit the interpreter has joined the non-daemon threads and now runs the
    ``atexit`` handlers; this one, registered last, runs first. It runs the others
    (in their order), flushes every buffered file the attempt left open and the
    standard streams, and leaves with :func:`os._exit`. What it skips is the teardown
    of every module and object, which in a forked child writes to (and so copies)
    nearly every page it shares with the template: most of an attempt's CPU time.

    The status is the attempt's, or 1 after an uncaught exception; a ``sys.exit(n)``
    by code that runs after ``app.start()`` returned is not seen (the task's result
    was reported by then).
    """
    atexit.unregister(_exit_without_teardown)
    atexit._run_exitfuncs()
    # Objects made since the fork are in the young generations (the template froze
    # its own): the files the attempt opened and did not close are among them.
    for generation in range(3):
        for obj in gc.get_objects(generation):
            if isinstance(obj, io.BufferedIOBase | io.TextIOBase):
                with contextlib.suppress(Exception):
                    if not obj.closed and obj.writable():
                        obj.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    os._exit(_EXIT.status)


def _reap(sock: socket.socket, child: _Child) -> None:
    _, status = os.waitpid(child.pid, 0)
    os.close(child.pidfd)
    with contextlib.suppress(OSError):
        _send(
            sock,
            protocol.build_exited(child.id, child.pid, os.waitstatus_to_exitcode(status)),
        )


def _kill(pid: int) -> None:
    """SIGKILL a child's process group; the child itself if it has none yet (it calls
    setsid first thing, but may not have run at all)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _leave(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
