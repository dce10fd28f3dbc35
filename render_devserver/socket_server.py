"""The task socket, server side: HTTP/1.1 on a Unix socket, one server per task process.

Theory of operation
-------------------
The platform (here: the dev server's scheduler) starts every task process with
``RENDER_SDK_SOCKET_PATH`` pointing at a socket it serves. This module
is that server's I/O: asyncio for the bytes, h11 for HTTP/1.1. Everything the
protocol decides (routes, request parsing, refusals, response bodies) is
:class:`render_core.taskserver.TaskSocket`'s: this host reads a whole request, hands
its method, target and body to :meth:`~render_core.taskserver.TaskSocket.respond`,
and writes the answer back. It knows nothing of runs or tasks. Its one wait is a
held subtask-result poll: it awaits the ``wait_for_end`` coroutine it was handed (the
scheduler's, never imported here) before asking the core for the answer.

What goes in: requests from any worker. The official ones differ in how they use
connections: 0.6.1 opens one connection per call, 1.x sends ``Connection: close``,
ours (``render_transports.h11_transport``) does both, a curl user may keep one alive.
All are served: keep-alive and pipelining work, ``Connection: close`` is honoured.

What comes out, per request: the core's answer (see :mod:`render_core.taskserver`),
or one of the refusals only the I/O side can make, as JSON ``{"message": ...}``: 408
a request not received within ``idle_timeout``, 413 a body over ``max_body_bytes``
(refused from ``Content-Length`` before the body is read), 400 malformed HTTP (431 for
oversized headers, 501 for an unknown transfer coding, as h11 classifies them). These
are 4xx, permanent, so the worker fails at once instead of retrying for five minutes.
A 500 only when the handler behind the core breaks: logged with its traceback, and
the server goes on serving. A bug never takes the server, or another connection, down.

Connections are independent protocol objects (accepted by the server itself, so that
close() accounts for every socket), answered in the step that reads a request's last
byte, with no task per connection or per read: a silent, slow or vanished client costs
only its own connection, which is dropped once ``idle_timeout`` passes without a
complete request (or without it reading its answer). After refusing a request whose body is
still arriving (413, 408, malformed), the server half-closes and drains for a moment, so
a client that writes its whole request before reading still sees the answer.

What it will never do: time out a held poll (``wait_for_end`` owns that bound; the
official Go dev server, too, let a callback wait until its scheduler read it),
deduplicate callbacks or subtask starts (the core and its handler decide), follow a
symlink at the socket path, replace a socket another server is listening on, or leave
its socket file behind after :meth:`TaskSocketServer.close`, even when closed while
connections are still being accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import attrs
import h11

from render_core.taskserver import (
    DEFAULT_MAX_BODY,
    Answer,
    SubtaskPoll,
    TaskSocket,
    body_too_large,
    error_answer,
)

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "TaskSocketServer",
]

logger = logging.getLogger(__name__)


# A worker sends each request in one go right after connecting; 30 s without a
# complete request (or without reading an answer) means it is stuck or gone. Twice
# the workers' own 15 s per-call timeout, so we never drop a client that is still
# waiting on its side.
DEFAULT_IDLE_TIMEOUT = 30.0
_CHUNK = 64 * 1024
# One task process talks to its socket; a parallel fan-out of subtasks makes a few
# dozen connections at once at most.
_BACKLOG = 128
# Accepting pauses this long after a failure for lack of descriptors or memory (as
# asyncio's own server does).
_ACCEPT_RETRY_SECONDS = 1.0
# Only the owner may connect: anyone who can reach the socket can report results.
_SOCKET_MODE = 0o600


@attrs.frozen
class _Reply:
    answer: Answer
    close: bool = False
    """Close the connection after this answer (the request was not read whole)."""
    linger: bool = False
    """Drain what the client still sends before closing, so it can read the answer."""


def _refusal(status: int, message: str) -> _Reply:
    """A request refused before it was read whole: answered, then the connection ends."""
    return _Reply(error_answer(status, message), close=True, linger=True)


@attrs.frozen
class _Received:
    method: str
    target: str
    body: bytes


class TaskSocketServer:
    """Serve ``server`` (the task socket's protocol) on the Unix socket at ``path``.

    ``await start()``, hand ``path`` to the task process, ``await close()`` when it is
    done; or use ``async with``. ``wait_for_end(task_run_id)`` is awaited for every
    :class:`~render_core.taskserver.SubtaskPoll` before it is answered: it returns when
    the child has ended or when its owner no longer wants to hold the poll (without
    it, polls are answered at once). ``max_body_bytes`` bounds one request body;
    ``idle_timeout`` is how long a connection may take to deliver a request or to
    read its answer.
    """

    def __init__(
        self,
        path: str,
        server: TaskSocket,
        *,
        wait_for_end: Callable[[str], Awaitable[None]] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        if max_body_bytes < 0:
            raise ValueError(f"max_body_bytes must be >= 0, got {max_body_bytes!r}")
        if not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0, got {idle_timeout!r}")
        self._path = os.fspath(path)
        self._server = server
        self._wait_for_end = wait_for_end
        self.max_body_bytes = max_body_bytes
        self.idle_timeout = idle_timeout
        self._listener: socket.socket | None = None
        self._paused: asyncio.TimerHandle | None = None  # accepting, after a failure
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of our socket file
        self._accepting: dict[asyncio.Task[None], socket.socket] = {}  # being wrapped
        self._connections: set[_Connection] = set()
        self._started = False
        self._closing = False
        self._closed = asyncio.Event()
        self._served = 0

    @property
    def path(self) -> str:
        """The socket's filesystem path (what ``RENDER_SDK_SOCKET_PATH`` says)."""
        return self._path

    @property
    def requests_served(self) -> int:
        """How many answers (of any status) were written in full."""
        return self._served

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Create the socket (mode 0600) and start accepting connections.

        A stale socket file at ``path`` is replaced. Raises ``FileExistsError`` if
        something other than a socket is there (a symlink included), ``OSError``
        (``EADDRINUSE``) if a server is listening on it, ``RuntimeError`` if called
        twice, and the ``OSError`` of a failed bind (path too long, no such directory).
        """
        self.listen()

    def listen(self) -> None:
        """:meth:`start` with no await, for a caller that must listen in this turn."""
        if self._started or self._closing:
            raise RuntimeError("a TaskSocketServer can be started only once")
        self._started = True
        sock = _bind_private(self._path)
        try:
            info = os.lstat(self._path)
            self._identity = (info.st_dev, info.st_ino)
            sock.listen(_BACKLOG)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            self._remove_socket_file()
            raise
        self._listener = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable)
        logger.debug("task socket %s: listening", self._path)

    async def close(self) -> None:
        """Stop accepting, drop every open connection, remove the socket file.

        Idempotent, and safe before :meth:`start`. A handler call in progress is
        cancelled with its connection: its answer could no longer be delivered.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            if self._paused is not None:
                self._paused.cancel()
            if self._listener is not None:
                asyncio.get_running_loop().remove_reader(self._listener.fileno())
                # Connections the kernel queued but nobody accepted are reset.
                self._listener.close()
            accepting = dict(self._accepting)
            for task in accepting:
                task.cancel()
            await asyncio.gather(*accepting, return_exceptions=True)
            for conn in accepting.values():  # cancelled before asyncio took it over
                conn.close()
            connections = list(self._connections)
            held = [c.held for c in connections if c.held is not None]
            for connection in connections:
                connection.abort()  # a held poll goes with its connection
            await asyncio.gather(*held, return_exceptions=True)
        finally:
            self._remove_socket_file()
            self._closed.set()

    async def __aenter__(self) -> TaskSocketServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _remove_socket_file(self) -> None:
        # Only the file we bound: another server may own the path by now.
        if self._identity is None:
            return
        with contextlib.suppress(FileNotFoundError):
            info = os.lstat(self._path)
            if (info.st_dev, info.st_ino) == self._identity:
                os.unlink(self._path)

    # ------------------------------------------------------------------ connections

    def _on_readable(self) -> None:
        # Our own accept, called by the loop when the listener is readable, rather than
        # asyncio's server: each accepted socket is in ``_connections`` in the same step,
        # so close() can always release it. (asyncio's server, closed while an accept is
        # in flight, leaves that socket to the garbage collector; an accept coroutine,
        # cancelled just after the kernel handed over a socket, drops it.)
        listener = self._listener
        assert listener is not None
        loop = asyncio.get_running_loop()
        for _ in range(_BACKLOG):  # then let other work run; the loop calls again
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return  # nothing (more) queued
            except ConnectionAbortedError:
                continue  # the client gave up while queued
            except OSError as exc:
                # Out of descriptors or memory: pause accepting instead of spinning.
                logger.error("task socket %s: accept failed: %s", self._path, exc)
                loop.remove_reader(listener.fileno())
                self._paused = loop.call_later(_ACCEPT_RETRY_SECONDS, self._resume)
                return
            conn.setblocking(False)
            task = loop.create_task(self._adopt(conn), name=f"task-socket {self._path}")
            self._accepting[task] = conn
            task.add_done_callback(self._adopted)

    def _resume(self) -> None:
        self._paused = None
        if self._listener is not None and not self._closing:
            asyncio.get_running_loop().add_reader(self._listener.fileno(), self._on_readable)

    async def _adopt(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: _Connection(self), sock=conn)
        except OSError as exc:
            conn.close()
            logger.debug("task socket %s: connection lost at once: %s", self._path, exc)

    def _adopted(self, task: asyncio.Task[None]) -> None:
        self._accepting.pop(task, None)

    def _answer(self, request: _Received) -> Answer | SubtaskPoll:
        """The answer to one complete request, or the poll to hold before answering;
        never raises."""
        try:
            answer = self._server.respond(request.method, request.target, request.body)
            if isinstance(answer, SubtaskPoll) and self._wait_for_end is None:
                return self._server.answer_poll(answer)
            return answer
        except Exception:
            return self._failed(request)

    async def _hold(self, poll: SubtaskPoll, request: _Received) -> Answer:
        """Hold a subtask-result poll until the child ends, then answer it."""
        assert self._wait_for_end is not None
        try:
            await self._wait_for_end(poll.task_run_id)
            return self._server.answer_poll(poll)
        except Exception:
            return self._failed(request)

    def _failed(self, request: _Received) -> Answer:
        logger.exception(
            "task socket %s: the handler failed on %s %s",
            self._path,
            request.method,
            request.target,
        )
        return error_answer(500, "the task-socket handler failed; the server log has the details")

    def _count(self) -> None:
        self._served += 1


class _Connection(asyncio.Protocol):
    """One client connection: requests in, answers out, until either side is done.

    An :class:`asyncio.Protocol`: bytes arrive in :meth:`data_received` and go to h11;
    a whole request is answered in the same step (a held poll in a task of its own).
    One timer bounds each wait on the client: ``idle_timeout`` to deliver a request,
    to read its answer, or to finish sending after a refusal.
    """

    def __init__(self, server: TaskSocketServer) -> None:
        self._server = server
        self._conn = h11.Connection(h11.SERVER)
        self._timeout = server.idle_timeout
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.held: asyncio.Task[None] | None = None  # a subtask-result poll
        self._method = b""  # of the request being answered (HEAD answers have no body)
        self._head: h11.Request | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._draining = False  # after a refusal: discard input until the client ends
        self._closing = False
        self._unsent = 0  # answers still (partly) in the write buffer

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        # Told when anything is left unsent, and when all of it went: an answer counts
        # once the client has taken it, and a client that stops reading is dropped.
        transport.set_write_buffer_limits(high=0)
        self._server._connections.add(self)
        self._wait_on_client(self._request_late)

    def pause_writing(self) -> None:
        self._wait_on_client(self._not_reading)  # it must read its answer in time

    def resume_writing(self) -> None:
        for _ in range(self._unsent):
            self._server._count()
        self._unsent = 0
        if self._closing:
            self._cancel_timer()
        elif not self._draining and self.held is None:
            self._wait_on_client(self._request_late)

    def data_received(self, data: bytes) -> None:
        # In pieces, as a stream read them: h11 bounds an incomplete head only while
        # it is incomplete, so an oversized one is refused however the bytes arrive.
        for start in range(0, len(data), _CHUNK):
            if self._draining or self._closing:
                return
            self._conn.receive_data(data[start : start + _CHUNK])
            self._advance()

    def eof_received(self) -> bool:
        if self._draining:
            self._close(graceful=True)
            return True
        if not self._closing:
            self._conn.receive_data(b"")
            self._advance()
        return True  # keep the write side open: an answer may still be going out

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._cancel_timer()
        if self.held is not None:
            self.held.cancel()  # its answer could no longer be delivered
        self._server._connections.discard(self)
        if exc is not None:
            logger.debug("task socket %s: connection lost: %s", self._server.path, exc)

    # -- requests -----------------------------------------------------------------

    def _advance(self) -> None:
        """Take h11's events as far as the bytes received allow."""
        conn = self._conn
        limit = self._server.max_body_bytes
        while not self._closing and self.held is None:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(_refusal(exc.error_status_hint, f"malformed HTTP request: {exc}"))
                return
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue and self._head is not None:
                    self._write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                return
            if event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._head = event
                self._method = event.method
                declared = _content_length(event)
                if declared is not None and declared > limit:
                    self._refuse(self._too_large(declared))
                    return
            elif isinstance(event, h11.Data):
                self._size += len(event.data)
                if self._size > limit:
                    self._refuse(self._too_large(None))
                    return
                self._body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert self._head is not None
                received = _Received(
                    method=self._head.method.decode("ascii"),
                    target=self._head.target.decode("latin-1"),
                    body=b"".join(self._body),
                )
                self._head, self._body, self._size = None, [], 0
                self._cancel_timer()
                answer = self._server._answer(received)
                if isinstance(answer, SubtaskPoll):
                    self.held = self._loop.create_task(self._hold(answer, received))
                    return
                if not self._answered(received, answer):
                    return
            else:  # ConnectionClosed: the client left before (or between) requests
                self._close(graceful=True)
                return

    async def _hold(self, poll: SubtaskPoll, received: _Received) -> None:
        answer = await self._server._hold(poll, received)
        self.held = None
        if not self._closing and self._answered(received, answer):
            self._advance()  # a request pipelined behind the poll

    def _answered(self, received: _Received, answer: Answer) -> bool:
        """Write ``answer``; True if the connection goes on to its next request."""
        self._respond(_Reply(answer))
        logger.debug(
            "task socket %s: %s %s -> %d",
            self._server.path,
            received.method,
            received.target,
            answer.status,
        )
        conn = self._conn
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            self._close(graceful=True)  # Connection: close (theirs or ours), HTTP/1.0
            return False
        conn.start_next_cycle()
        self._method = b""
        if not self._unsent:
            self._wait_on_client(self._request_late)
        return True

    def _too_large(self, declared: int | None) -> _Reply:
        # A client waiting for "100 Continue" sends no body: nothing to drain.
        linger = not self._conn.they_are_waiting_for_100_continue
        answer = body_too_large(self._server.max_body_bytes, declared=declared)
        return _Reply(answer, close=True, linger=linger)

    def _refuse(self, reply: _Reply) -> None:
        """Answer a request that was not read whole, then end the connection."""
        if self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self._respond(reply)
            if reply.linger:
                self._linger()
                return
        self._close(graceful=True)

    def _request_late(self) -> None:
        """The idle timeout passed without a whole request."""
        self._timer = None
        if self._head is None and not self._conn.trailing_data[0]:
            self._close(graceful=True)  # an idle keep-alive connection: just close it
        else:
            self._refuse(_refusal(408, f"the request did not arrive within {self._timeout:g} s"))

    # -- answers ------------------------------------------------------------------

    def _respond(self, reply: _Reply) -> None:
        answer = reply.answer
        try:
            reason = HTTPStatus(answer.status).phrase.encode("ascii")
        except ValueError:
            reason = b""
        headers = list(answer.headers)
        if reply.close:
            headers.append(("Connection", "close"))
        conn = self._conn
        parts = [conn.send(h11.Response(status_code=answer.status, headers=headers, reason=reason))]
        if answer.body and self._method != b"HEAD":
            parts.append(conn.send(h11.Data(data=answer.body)))
        parts.append(conn.send(h11.EndOfMessage()))
        self._write(b"".join(part for part in parts if part))
        transport = self._transport
        if transport is not None and transport.get_write_buffer_size():
            self._unsent += 1  # counted when the client has taken it
        else:
            self._server._count()

    def _write(self, data: bytes | None) -> None:
        transport = self._transport
        if data and transport is not None and not transport.is_closing():
            transport.write(data)

    def _linger(self) -> None:
        """Half-close, then discard what the client still sends (for up to the idle
        timeout): closing with unread data would reset the connection and could
        destroy the answer before the client read it."""
        transport = self._transport
        assert transport is not None
        self._draining = True
        with contextlib.suppress(OSError):
            if transport.can_write_eof():
                transport.write_eof()
        self._wait_on_client(functools.partial(self._close, graceful=True))

    def _close(self, graceful: bool) -> None:
        """End the connection: flush what is still buffered first (for up to the idle
        timeout) if ``graceful``, else drop it now."""
        transport = self._transport
        if transport is None or self._closing:
            return
        self._closing = True
        if not graceful:
            self.abort()
            return
        transport.close()
        if transport.get_write_buffer_size():
            self._wait_on_client(self._not_reading)

    def _not_reading(self) -> None:
        logger.debug("task socket %s: client did not read its answer", self._server.path)
        self.abort()

    def abort(self) -> None:
        self._closing = True
        self._cancel_timer()
        if self.held is not None:
            self.held.cancel()
        if self._transport is not None:
            self._transport.abort()

    def _wait_on_client(self, then: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = self._loop.call_later(self._timeout, then)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            return int(value)  # h11 has checked it is a single decimal number
    return None


def _bind_private(path: str) -> socket.socket:
    """A bound ``AF_UNIX`` socket at ``path`` whose file only the owner can use."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(info.st_mode):
            raise FileExistsError(errno.EEXIST, "exists and is not a socket", path)
        if _is_listening(path):
            raise OSError(errno.EADDRINUSE, f"a server is already listening on {path!r}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # stale, from a process that died without cleaning up
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound = False
    try:
        # On Linux bind() gives the file the socket's own mode (less the umask): set
        # it first, and the file is never open to others, not even for a moment.
        # Elsewhere fchmod may fail or not carry over; the chmod below then closes a
        # window that only the owner could use anyway (the directory is 0700).
        with contextlib.suppress(OSError):
            os.fchmod(sock.fileno(), _SOCKET_MODE)
        sock.bind(path)
        bound = True
        os.chmod(path, _SOCKET_MODE)
    except BaseException:
        sock.close()
        if bound:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise
    return sock


def _is_listening(path: str) -> bool:
    """Whether a server accepts connections on the socket file at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)  # a full backlog must not block start()
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except BlockingIOError:
        return True  # the backlog is full: someone is listening
    finally:
        probe.close()
    return True
