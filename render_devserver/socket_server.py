"""The task socket, server side: HTTP/1.1 on a Unix socket, one server per task process.

Theory of operation
-------------------
The platform (here: the dev server's scheduler) starts every task process with
``RENDER_SDK_SOCKET_PATH`` pointing at a socket it serves. This module
is that server: asyncio for the bytes, h11 for HTTP/1.1, :mod:`render_core.callback`
for everything the protocol decides (routes, request parsing, response bodies). It
knows nothing of runs or tasks: it parses a request, calls one method of the
:class:`SocketHandler` it was handed (the scheduler, never imported here), and writes
the answer.

What goes in: requests from any worker. The official ones differ in how they use
connections: 0.6.1 opens one connection per call, 1.x sends ``Connection: close``,
ours (``render_transports.h11_transport``) does both, a curl user may keep one alive.
All are served: keep-alive and pipelining work, ``Connection: close`` is honoured.

What comes out, per request:

- routing on method and path only (``GET /input?sdk_started_at=...`` is ``/input``);
- 200 with exactly the documented body: JSON for ``/input``, ``/run-subtask``,
  ``/get-subtask-result``, an empty body (``Content-Length: 0``) for ``/callback`` and
  ``/register-tasks``;
- errors as JSON ``{"message": ...}``: 400 bad JSON or shape, 404 unknown path (and
  whatever the handler says is unknown), 405 wrong method (with ``Allow``), 408 a
  request not received within ``idle_timeout``, 413 a body over ``max_body_bytes``
  (refused from ``Content-Length`` before the body is read), 400 malformed HTTP (431
  for oversized headers, 501 for an unknown transfer coding, as h11 classifies them),
  and any :class:`HandlerError`'s own status. Permanent problems are 4xx so the
  worker fails at once instead of retrying for five minutes (G.19, G.34);
- 500 only when the handler itself breaks: logged with its traceback, and the server
  goes on serving. A bug never takes the server, or another connection, down.

Connections are independent tasks (accepted by the server itself, so that close()
accounts for every socket): a silent, slow or vanished client costs only its
own connection, which is dropped once ``idle_timeout`` passes without a complete
request (or without it reading its answer). After refusing a request whose body is
still arriving (413, 408, malformed), the server half-closes and drains for a moment, so
a client that writes its whole request before reading still sees the answer.

What it will never do: time out the handler (the handler owns its waits; the Go dev
server's callback blocked until the scheduler read it, E.8), deduplicate callbacks
or subtask starts (the handler decides: it knows the runs), follow a symlink at the
socket path, replace a socket another server is listening on, or leave its socket
file behind after :meth:`TaskSocketServer.close` (G.32).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Protocol

import attrs
import h11

from render_core import callback
from render_core.callback import (
    CallbackRequestError,
    CallbackResult,
    RegisteredTask,
    SubtaskRequest,
)

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "HandlerError",
    "SocketHandler",
    "TaskSocketServer",
]

logger = logging.getLogger(__name__)

# The largest request is a /callback carrying a result (base64, so 4/3 of the JSON).
# 32 MiB leaves room for any result the platform would keep (results are stored and
# served back to every reader of the run) while bounding what one misbehaving
# process can make the dev server buffer. The worker's own transport accepts up to
# 64 MiB per answer, so whatever is accepted here can be sent back to a parent.
DEFAULT_MAX_BODY = 32 * 1024 * 1024
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


class HandlerError(Exception):
    """Raised by a :class:`SocketHandler` method: answer ``status`` with ``{"message": ...}``.

    For conditions the handler knows are permanent: 404 unknown task or run, 409 the
    root run is no longer active, 400 a request that makes no sense for this process.
    ``status`` must be 400..599.
    """

    def __init__(self, status: int, message: str) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"HandlerError status must be 400..599, got {status!r}")
        super().__init__(message)
        self.status = status
        self.message = message

    def __repr__(self) -> str:
        return f"HandlerError({self.status}, {self.message!r})"


class SocketHandler(Protocol):
    """What the server asks of its owner, one method per endpoint.

    Each method may raise :class:`HandlerError`; anything else is a bug (500). Calls for
    different connections run concurrently. ``callback`` and ``run_subtask`` may be
    called again for the same report or start: workers retry when an answer is lost,
    so the handler acknowledges repeats and deduplicates starts on
    ``idempotency_key``.
    """

    async def get_input(self) -> bytes:
        """The whole ``GET /input`` body (:func:`render_core.callback.build_input_response`)."""
        ...

    async def register(self, tasks: list[RegisteredTask]) -> None: ...

    async def callback(self, result: CallbackResult) -> None: ...

    async def run_subtask(self, request: SubtaskRequest) -> str:
        """Start (or find, by idempotency key) a child run; its task run id."""
        ...

    async def subtask_result(self, task_run_id: str) -> bytes:
        """The whole body (:func:`render_core.callback.build_subtask_result_response`)."""
        ...


@attrs.frozen
class _Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False
    """Close the connection after this answer (the request was not read whole)."""
    linger: bool = False
    """Drain what the client still sends before closing, so it can read the answer."""


def _error(
    status: int,
    message: str,
    *,
    headers: tuple[tuple[str, str], ...] = (),
    close: bool = False,
    linger: bool = False,
) -> _Answer:
    return _Answer(
        status, callback.build_error_response(message), headers, close=close, linger=linger
    )


def _json(body: object) -> _Answer:
    if not isinstance(body, bytes):
        raise TypeError(f"the handler must return the body as bytes, got {type(body).__name__}")
    return _Answer(200, body)


class _Slot:
    """An accepted connection: its socket, and its writer once asyncio took it over."""

    __slots__ = ("conn", "writer")

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.writer: asyncio.StreamWriter | None = None

    def drop(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        else:
            self.conn.close()


@attrs.frozen
class _Received:
    method: str
    target: str
    body: bytes


class TaskSocketServer:
    """Serve the five task-socket endpoints on the Unix socket at ``path``.

    ``await start()``, hand ``path`` to the task process, ``await close()`` when it is
    done; or use ``async with``. ``max_body_bytes`` bounds one request body;
    ``idle_timeout`` is how long a connection may take to deliver a request or to
    read its answer.
    """

    def __init__(
        self,
        path: str,
        handler: SocketHandler,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        if max_body_bytes < 0:
            raise ValueError(f"max_body_bytes must be >= 0, got {max_body_bytes!r}")
        if not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0, got {idle_timeout!r}")
        self._path = os.fspath(path)
        self._handler = handler
        self.max_body_bytes = max_body_bytes
        self.idle_timeout = idle_timeout
        self._listener: socket.socket | None = None
        self._paused: asyncio.TimerHandle | None = None  # accepting, after a failure
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of our socket file
        self._connections: dict[asyncio.Task[None], _Slot] = {}
        self._started = False
        self._closing = False
        self._closed = asyncio.Event()
        self._served = 0
        self._routes: dict[str, Callable[[bytes], Awaitable[_Answer]]] = {
            callback.GET_INPUT.path: self._get_input,
            callback.POST_CALLBACK.path: self._post_callback,
            callback.REGISTER_TASKS.path: self._register_tasks,
            callback.RUN_SUBTASK.path: self._run_subtask,
            callback.GET_SUBTASK_RESULT.path: self._get_subtask_result,
        }

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
            connections = dict(self._connections)
            for task in connections:
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)
            for slot in connections.values():  # tasks cancelled before they ran
                slot.drop()
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
            slot = _Slot(conn)
            task = loop.create_task(self._serve(slot), name=f"task-socket {self._path}")
            self._connections[task] = slot
            task.add_done_callback(self._forget)

    def _resume(self) -> None:
        self._paused = None
        if self._listener is not None and not self._closing:
            asyncio.get_running_loop().add_reader(self._listener.fileno(), self._on_readable)

    async def _serve(self, slot: _Slot) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(sock=slot.conn)
        except OSError as exc:
            slot.conn.close()
            logger.debug("task socket %s: connection lost at once: %s", self._path, exc)
            return
        slot.writer = writer
        await _Connection(self, reader, writer).serve()

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._connections.pop(task, None)

    async def _dispatch(self, request: _Received) -> _Answer:
        """The answer to one complete request; never raises (but CancelledError)."""
        try:
            op = callback.match_route(request.method, request.target)
            return await self._routes[op.path](request.body)
        except CallbackRequestError as exc:
            allow = (("Allow", exc.allow),) if exc.allow else ()
            return _error(exc.status, exc.message, headers=allow)
        except HandlerError as exc:
            return _error(exc.status, exc.message)
        except Exception:
            logger.exception(
                "task socket %s: the handler failed on %s %s",
                self._path,
                request.method,
                request.target,
            )
            return _error(500, "the task-socket handler failed; the server log has the details")

    async def _get_input(self, body: bytes) -> _Answer:
        return _json(await self._handler.get_input())

    async def _post_callback(self, body: bytes) -> _Answer:
        await self._handler.callback(callback.parse_callback_request(body))
        return _Answer(200)

    async def _register_tasks(self, body: bytes) -> _Answer:
        await self._handler.register(callback.parse_register_request(body))
        return _Answer(200)

    async def _run_subtask(self, body: bytes) -> _Answer:
        run_id = await self._handler.run_subtask(callback.parse_run_subtask_request(body))
        return _Answer(200, callback.build_run_subtask_response(run_id))

    async def _get_subtask_result(self, body: bytes) -> _Answer:
        run_id = callback.parse_subtask_result_request(body)
        return _json(await self._handler.subtask_result(run_id))

    def _count(self) -> None:
        self._served += 1


class _Connection:
    """One client connection: requests in, answers out, until either side is done."""

    def __init__(
        self, server: TaskSocketServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._server = server
        self._reader = reader
        self._writer = writer
        self._conn = h11.Connection(h11.SERVER)
        self._timeout = server.idle_timeout
        self._loop = asyncio.get_running_loop()
        self._method = b""  # of the request being answered (HEAD answers have no body)

    async def serve(self) -> None:
        graceful = False
        try:
            graceful = await self._serve_requests()
        except asyncio.TimeoutError:  # the client stopped reading its answer (an OSError)
            logger.debug("task socket %s: client did not read its answer", self._server.path)
        except OSError as exc:  # the client went away mid-answer
            logger.debug("task socket %s: connection lost: %s", self._server.path, exc)
        except Exception:
            logger.exception("task socket %s: connection failed", self._server.path)
        finally:
            await self._close(graceful)

    async def _serve_requests(self) -> bool:
        """Serve requests until the connection should end; True to close it gracefully."""
        while True:
            received = await self._receive()
            if received is None:
                return True
            if isinstance(received, _Answer):  # refused before the request ended
                if self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._respond(received)
                    if received.linger:
                        await self._linger()
                return True
            answer = await self._server._dispatch(received)
            await self._respond(answer)
            logger.debug(
                "task socket %s: %s %s -> %d",
                self._server.path,
                received.method,
                received.target,
                answer.status,
            )
            if self._conn.our_state is not h11.DONE or self._conn.their_state is not h11.DONE:
                return True  # Connection: close (theirs or ours), HTTP/1.0
            self._conn.start_next_cycle()

    async def _read(self, deadline: float) -> bytes | None:
        """Bytes from the client (``b""`` at its end), or None once ``deadline`` passed."""
        remaining = deadline - self._loop.time()
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(self._reader.read(_CHUNK), remaining)
        except asyncio.TimeoutError:
            return None
        except OSError:  # reset by the client: the same as its end
            return b""

    async def _receive(self) -> _Received | _Answer | None:
        """The next whole request; an answer refusing it; None when there is none."""
        conn = self._conn
        limit = self._server.max_body_bytes
        deadline = self._loop.time() + self._timeout
        self._method = b""
        head: h11.Request | None = None
        body: list[bytes] = []
        size = 0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return _error(
                    exc.error_status_hint,
                    f"malformed HTTP request: {exc}",
                    close=True,
                    linger=True,
                )
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    await self._send(
                        conn.send(h11.InformationalResponse(status_code=100, headers=[]))
                    )
                data = await self._read(deadline)
                if data is None:
                    if head is None and not conn.trailing_data[0]:
                        return None  # an idle keep-alive connection: just close it
                    return _error(
                        408,
                        f"the request did not arrive within {self._timeout:g} s",
                        close=True,
                        linger=True,
                    )
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
                self._method = event.method
                declared = _content_length(event)
                if declared is not None and declared > limit:
                    return self._too_large(f"the body declares {declared} bytes")
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    return self._too_large("the body is larger")
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return _Received(
                    method=head.method.decode("ascii"),
                    target=head.target.decode("latin-1"),
                    body=b"".join(body),
                )
            else:  # ConnectionClosed: the client left before (or between) requests
                return None

    def _too_large(self, what: str) -> _Answer:
        # A client waiting for "100 Continue" sends no body: nothing to drain.
        linger = not self._conn.they_are_waiting_for_100_continue
        limit = self._server.max_body_bytes
        return _error(413, f"{what} than the {limit}-byte limit", close=True, linger=linger)

    async def _respond(self, answer: _Answer) -> None:
        try:
            reason = HTTPStatus(answer.status).phrase.encode("ascii")
        except ValueError:
            reason = b""
        headers: list[tuple[str, str]] = []
        if answer.body:
            headers.append(("Content-Type", "application/json"))
        headers.append(("Content-Length", str(len(answer.body))))
        headers.extend(answer.headers)
        if answer.close:
            headers.append(("Connection", "close"))
        conn = self._conn
        parts = [conn.send(h11.Response(status_code=answer.status, headers=headers, reason=reason))]
        if answer.body and self._method != b"HEAD":
            parts.append(conn.send(h11.Data(data=answer.body)))
        parts.append(conn.send(h11.EndOfMessage()))
        await self._send(b"".join(part for part in parts if part))
        self._server._count()

    async def _send(self, data: bytes | None) -> None:
        if data:
            self._writer.write(data)
            await asyncio.wait_for(self._writer.drain(), self._timeout)

    async def _linger(self) -> None:
        """Half-close, then discard what the client still sends (for up to the idle
        timeout): closing with unread data would reset the connection and could
        destroy the answer before the client read it."""
        with contextlib.suppress(OSError):
            if self._writer.can_write_eof():
                self._writer.write_eof()
        deadline = self._loop.time() + self._timeout
        while await self._read(deadline):
            pass

    async def _close(self, graceful: bool) -> None:
        writer = self._writer
        closed = False
        try:
            if graceful and not writer.is_closing():
                writer.close()  # flushes what is still buffered first
                await asyncio.wait_for(writer.wait_closed(), self._timeout)
                closed = True
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            if not closed:  # abrupt, timed out or cancelled: drop it now
                writer.transport.abort()


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
