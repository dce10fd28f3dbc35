"""HTTP/1.1 over a Unix-domain (or TCP) stream socket: the task socket's transport.

The platform, or the dev server, listens on ``RENDER_SDK_SOCKET_PATH`` and expects
**one request per connection**, ``Content-Length`` bodies and ``Connection: close``.
Each ``send`` therefore dials a fresh connection, writes one request, reads one
response to its end and closes the socket, whatever happens. Nothing is pooled, so
``close()`` has nothing to release. (The module keeps its name from when h11 framed
the messages; :mod:`render_transports._http1` does now, by hand, because this module
is on every worker's cold start and h11 cost more to import than the call.)

What goes in: a final :class:`~render_core.http.Request`. Only the path and query of
its URL are used (``http://localhost/input?x=1`` -> ``GET /input?x=1``): the socket,
not the URL, says where the server is. What goes on the wire: the request line,
``Host: localhost`` (TCP: ``host:port``) unless the request carries its own ``Host``,
the request's headers, ``Content-Length`` when there is a body (or the method is one
that carries content), ``Connection: close``, the body. The request's own
``Content-Length``/``Transfer-Encoding``/``Connection`` headers are dropped: this
module frames the body.

What comes out: a :class:`~render_core.http.Response` for *every* status (a 500 is a
value, not an exception), headers as ``(name, value)`` pairs with the server's own
spelling, the whole body. The only exceptions are the core's transport errors,
mapped in :func:`_mapped` (the one place that knows socket and asyncio exceptions)
from the phase the exchange had reached:

- connecting (missing socket file, ``ECONNREFUSED``, any connect ``OSError``) ->
  :class:`~render_core.errors.ConnectionFailed` (``request_sent=False``);
- the per-call deadline passing before the request was fully written ->
  :class:`~render_core.errors.ConnectTimeout`; after -> :class:`~render_core.errors.ReadTimeout`;
- reset, closed before the response ended, a malformed response, a response over
  ``max_response_bytes`` -> :class:`~render_core.errors.NetworkError` (``request_sent=True``);
- a request HTTP/1.1 cannot carry (a header with a newline, a non-Latin-1 value) ->
  :class:`~render_core.errors.ValidationError`, before any connection is made.

The framing (bytes out, bytes in) is written once in :class:`_Exchange`; the sync
and asyncio drivers below differ only in how bytes move. ``asyncio`` is imported only
by the async driver: a sync worker should not pay for an event loop it never runs.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING

from render_core.errors import RenderError
from render_core.http import Request, Response
from render_transports import _http1
from render_transports._http11 import (
    READING,
    WRITING,
    Progress,
    os_error,
    timeout_error,
)

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_SOCKET_TIMEOUT",
    "AsyncTCPTransport",
    "AsyncUnixSocketTransport",
    "TCPTransport",
    "UnixSocketTransport",
    "request_target",
]

# Whole-call budget (connect + write + read) in seconds. The official SDKs use 15 s
# per task-socket call (httpx ``Timeout(15)`` in 0.6.1, 15 s in 1.x), and
# the retry schedule around each call (25 attempts, 0.25 s doubling to 16 s) is tuned
# for it.
DEFAULT_SOCKET_TIMEOUT = 15.0
# Task-socket answers are small JSON documents; subtask outputs are the largest and
# are bounded by what the platform stores. 64 MiB is far above any legitimate answer
# and still keeps a confused peer from exhausting a worker's memory. The response
# head is bounded separately (render_transports._http1.MAX_HEAD_BYTES).
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_CHUNK = 64 * 1024


def request_target(url: str) -> str:
    """The origin-form target (path and query, no fragment) of ``url``.

    ``"http://localhost/input?a=1"`` -> ``"/input?a=1"``; ``"http://localhost"`` ->
    ``"/"``; an origin-form ``"/input"`` is returned as is. Written with ``str``
    methods rather than ``urllib.parse``, which costs more to import than this
    whole module.
    """
    url = url.partition("#")[0]
    scheme_end = url.find("://")
    if scheme_end >= 0:
        rest = url[scheme_end + 3 :]
        cuts = [index for index in (rest.find("/"), rest.find("?")) if index >= 0]
        url = rest[min(cuts) :] if cuts else ""
    return url if url.startswith("/") else "/" + url


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):  # socket.timeout is an alias since 3.10
        return True
    # Before 3.11 asyncio has its own TimeoutError. Looked up, not imported: if
    # asyncio is not loaded, nothing can have raised it.
    asyncio_module = sys.modules.get("asyncio")
    return asyncio_module is not None and isinstance(exc, asyncio_module.TimeoutError)


@contextlib.contextmanager
def _mapped(progress: Progress) -> Iterator[None]:
    """socket/asyncio exceptions -> the core's transport errors (most specific first).

    Shared by both colours. ``progress.phase`` says whether the request can have
    reached the server.
    """
    try:
        yield
    except RenderError:
        raise  # already ours (malformed, too large, unsendable); ours subclass TimeoutError
    except Exception as exc:
        if _is_timeout(exc):
            raise timeout_error(progress, "the server did not answer in time") from exc
        if not isinstance(exc, OSError):
            raise
        raise os_error(exc, progress) from exc


class _Exchange:
    """One request/response on a fresh connection; no I/O.

    ``outgoing`` is the whole request, ready to write. Feed what the socket returns to
    :meth:`receive` (``b""`` at end of file) until it returns the response. Raises
    :class:`NetworkError` for a malformed, oversized or cut-short response; after
    raising, the exchange is dead. Both halves are :mod:`render_transports._http1`.
    """

    __slots__ = ("_parser", "outgoing")

    def __init__(self, request: Request, *, host: str, max_response_bytes: int) -> None:
        self._parser = _http1.ResponseParser(request.method, limit=max_response_bytes)
        self.outgoing = _http1.request_bytes(
            request, host=host, target=request_target(request.url), close=True
        )

    def receive(self, data: bytes) -> Response | None:
        """Take bytes from the socket; the response once it is complete, else None."""
        return self._parser.feed(data)


# ---------------------------------------------------------------------- sync


def _remaining(deadline: float) -> float:
    """Seconds left before ``deadline``; raises TimeoutError when none are.

    Never returns 0: ``settimeout(0)`` would make the socket non-blocking.
    """
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def _send_sync(endpoint: _Endpoint, request: Request) -> Response:
    progress = Progress()
    with _mapped(progress):
        deadline = time.monotonic() + endpoint.timeout
        exchange = endpoint.exchange(request)
        with endpoint.dial(_remaining(deadline)) as sock:
            progress.phase = WRITING
            sock.settimeout(_remaining(deadline))
            sock.sendall(exchange.outgoing)
            progress.phase = READING
            while True:
                sock.settimeout(_remaining(deadline))
                response = exchange.receive(sock.recv(_CHUNK))
                if response is not None:
                    return response


def _connect_unix(path: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def _host_header(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Endpoint:
    """Where a transport dials (``dial`` in sync code, ``open`` in asyncio) and the
    bounds of each call; the four public transports are one of each kind and colour."""

    def __init__(self, host_header: str, timeout: float, max_response_bytes: int) -> None:
        self._host_header = host_header
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes

    def exchange(self, request: Request) -> _Exchange:
        return _Exchange(
            request, host=self._host_header, max_response_bytes=self.max_response_bytes
        )

    def dial(self, timeout: float) -> socket.socket:
        raise NotImplementedError

    def open(self) -> Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        raise NotImplementedError


class _UnixEndpoint(_Endpoint):
    def __init__(
        self,
        path: str,
        *,
        timeout: float = DEFAULT_SOCKET_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__("localhost", timeout, max_response_bytes)
        self.path = path

    def dial(self, timeout: float) -> socket.socket:
        return _connect_unix(self.path, timeout)

    def open(self) -> Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        import asyncio

        return asyncio.open_unix_connection(self.path)


class _TCPEndpoint(_Endpoint):
    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = DEFAULT_SOCKET_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(_host_header(host, port), timeout, max_response_bytes)
        self.host = host
        self.port = port

    def dial(self, timeout: float) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def open(self) -> Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        import asyncio

        return asyncio.open_connection(self.host, self.port)


class _SyncSend(_Endpoint):
    def send(self, request: Request) -> Response:
        """One exchange. Raises ConnectionFailed, ConnectTimeout, ReadTimeout, NetworkError."""
        return _send_sync(self, request)

    def close(self) -> None:
        """Nothing is pooled: a no-op, kept for the transport contract."""


class _AsyncSend(_Endpoint):
    async def send(self, request: Request) -> Response:
        """One exchange. Raises ConnectionFailed, ConnectTimeout, ReadTimeout, NetworkError."""
        return await _send_async(self, request)

    async def aclose(self) -> None:
        """Nothing is pooled: a no-op, kept for the transport contract."""


class UnixSocketTransport(_SyncSend, _UnixEndpoint):
    """Sync: ``send(request) -> Response`` over a fresh ``AF_UNIX`` connection per call.

    ``UnixSocketTransport(path, *, timeout=15.0, max_response_bytes=64 MiB)``:
    ``timeout`` bounds each whole call (connect, write, read). Safe to share between
    threads: calls share nothing.
    """


class TCPTransport(_SyncSend, _TCPEndpoint):
    """Sync: like :class:`UnixSocketTransport`, over a fresh TCP connection per call
    (``TCPTransport(host, port, *, timeout, max_response_bytes)``)."""


# --------------------------------------------------------------------- asyncio


async def _send_async(endpoint: _Endpoint, request: Request) -> Response:
    import asyncio

    progress = Progress()
    with _mapped(progress):
        exchange = endpoint.exchange(request)
        return await asyncio.wait_for(
            _exchange_async(endpoint, exchange, progress), endpoint.timeout
        )


async def _exchange_async(endpoint: _Endpoint, exchange: _Exchange, progress: Progress) -> Response:
    reader, writer = await endpoint.open()
    finished = False
    try:
        if writer.get_extra_info("peername") is None:
            # asyncio mistakes a Unix connect refused with EAGAIN (the server's backlog
            # is full) for success; such a socket has no peer. Still connecting.
            raise ConnectionRefusedError("the server's connection backlog is full")
        progress.phase = WRITING
        writer.write(exchange.outgoing)
        await writer.drain()
        progress.phase = READING
        while True:
            response = exchange.receive(await reader.read(_CHUNK))
            if response is not None:
                finished = True
                return response
    finally:
        if finished:
            writer.close()
        else:
            # close() would first flush the unsent request: against a server that has
            # stopped reading, that outlives the deadline (and the cancellation).
            writer.transport.abort()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class AsyncUnixSocketTransport(_AsyncSend, _UnixEndpoint):
    """asyncio: ``await send(request) -> Response`` (``asyncio.open_unix_connection``).

    ``AsyncUnixSocketTransport(path, *, timeout=15.0, max_response_bytes=64 MiB)``:
    ``timeout`` bounds each whole call. Calls share nothing, so concurrent sends
    (``asyncio.gather``) each get their own connection.
    """


class AsyncTCPTransport(_AsyncSend, _TCPEndpoint):
    """asyncio: like :class:`AsyncUnixSocketTransport`, over a fresh TCP connection per
    call (``AsyncTCPTransport(host, port, *, timeout, max_response_bytes)``)."""
