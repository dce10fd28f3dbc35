"""A synchronous keep-alive HTTP/1.1 transport on the standard library's ``http.client``.

For blocking code that makes many calls: ``Render(transport=KeepAliveTransport())``
keeps its connections open between calls (pooled per origin, one call at a time on
each), so a call costs one request and one response: no TCP or TLS handshake, and
each request leaves in a single write (head and body together), which saves the
server a wake-up per call. It needs nothing beyond the standard library and imports
less than the default ``requests`` transport. A call's request and answer are
written and read here, by hand, on the connection's socket (``http.client`` only
connects, and carries event streams): its parser builds an email message per answer,
which cost more CPU than the rest of a call. The reader takes ``Content-Length``,
chunked and close-delimited bodies, skips interim (1xx) answers, and refuses
anything else as malformed.

What goes in: final :class:`~render_core.http.Request` values (``http://`` or
``https://`` URLs). What goes on the wire: the request line, ``Host`` (unless the
request has its own), the request's headers, ``Content-Length`` when there is a body
or the method carries one, and the body. The request's own framing headers
(``Content-Length``, ``Transfer-Encoding``, ``Connection``) are replaced: this module
frames the body. What comes out: a :class:`~render_core.http.Response` for every
status, with the whole body (at most :data:`~render_transports.base.MAX_RESPONSE_BYTES`);
``stream()`` takes a pooled connection (or opens one) for an event stream and yields
body chunks as they arrive; the connection goes back to the pool only if the server
ended the body (read to its end, or whole in the buffer when the stream is closed:
our dev server ends a stream with the last event it waits for), else it is closed.

Connections: one goes back to the pool only after its response was read to the end
and neither side asked to close it (not after ``Connection: close`` or an HTTP/1.0
answer); a pooled connection that the server has closed or written to while idle
(its socket is readable) is dropped before reuse, never written to. Timeouts:
``timeouts.connect`` for connecting and the TLS handshake, ``timeouts.read`` for each
read of a response, ``timeouts.stream_read`` (a little over ``stream_idle``) for an
event stream. Every ``socket``/``ssl``/``http.client`` exception becomes one of the core's transport
errors in :func:`_mapped`, and only there; how far the exchange got decides which (a
refused connection is a :class:`~render_core.errors.ConnectionFailed`, which the core
may retry for any method).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import select
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from render_core.config import Timeouts
from render_core.errors import NetworkError, RenderError, ValidationError
from render_core.http import Request, Response
from render_transports import _http1, _http11
from render_transports._http11 import Progress
from render_transports.base import (
    ERROR_BODY_LIMIT,
    ErrorStream,
    buffered_head,
)

if TYPE_CHECKING:
    import ssl

__all__ = ["DEFAULT_MAX_IDLE", "KeepAliveStream", "KeepAliveTransport"]

_CHUNK = 64 * 1024
# A chunk's closing CRLF, then the last chunk (size 0) and the empty line that ends
# a chunked body with no trailer.
_CHUNK_THEN_LAST = b"\r\n0\r\n\r\n"
# Idle connections kept per origin: enough for a few threads sharing one client.
DEFAULT_MAX_IDLE = 8

_Origin = tuple[str, str, int]


def _split(url: str) -> tuple[_Origin, str]:
    """``("https", host, port)`` and the origin-form target of an absolute URL."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise ValidationError(f"only http:// and https:// URLs can be sent, got {url!r}")
    rest = rest.partition("#")[0]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, target = rest[:cut], rest[cut:] or "/"
    if not target.startswith("/"):
        target = "/" + target
    if "@" in authority:
        raise ValidationError("credentials in the URL are not supported; use the token")
    host, port_text = authority, ""
    if authority.startswith("["):  # [::1]:8120
        end = authority.find("]")
        host, port_text = authority[1:end], authority[end + 2 :]
    elif authority.count(":") == 1:
        host, port_text = authority.split(":")
    if not host:
        raise ValidationError(f"no host in URL {url!r}")
    try:
        port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    except ValueError:
        raise ValidationError(f"bad port in URL {url!r}") from None
    return (scheme, host, port), target


@contextlib.contextmanager
def _mapped(progress: Progress) -> Iterator[None]:
    """socket/ssl/http.client exceptions -> the core's transport errors (most specific first)."""
    try:
        yield
    except RenderError:
        raise
    except (UnicodeError, ValueError) as exc:
        # http.client refuses a header with a newline or a non-Latin-1 value.
        raise ValidationError(f"the request cannot be sent as HTTP/1.1: {exc}") from exc
    except TimeoutError as exc:  # socket.timeout is an alias
        raise _http11.timeout_error(progress, "the server sent nothing for too long") from exc
    except http.client.HTTPException as exc:
        raise NetworkError(f"the server's response was cut off or malformed: {exc!r}") from exc
    except OSError as exc:  # ssl.SSLError included
        raise _http11.os_error(exc, progress) from exc


def _gather_or_send(connection: Any, data: Any, send: Any) -> None:
    gathered: list[bytes] | None = connection.gathered
    if gathered is not None and isinstance(data, bytes | bytearray):
        gathered.append(bytes(data))
    else:
        send(data)


class _Connection(http.client.HTTPConnection):
    """``HTTPConnection`` whose request goes out in one write (see :meth:`flush`)."""

    gathered: list[bytes] | None = None

    def send(self, data: Any) -> None:
        _gather_or_send(self, data, super().send)


class _TLSConnection(http.client.HTTPSConnection):
    gathered: list[bytes] | None = None

    def send(self, data: Any) -> None:
        _gather_or_send(self, data, super().send)


_AnyConnection = _Connection | _TLSConnection


def _idle_and_open(connection: _AnyConnection) -> bool:
    """Whether a pooled connection can take a request (nothing arrived meanwhile)."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _headers(raw: http.client.HTTPResponse) -> tuple[tuple[str, str], ...]:
    return tuple(raw.getheaders())


# --------------------------------------------------------------- a call, by hand
#
# ``send`` writes its request and reads its answer itself (render_transports._http1),
# on the pooled connection's socket: http.client is used only to connect (and for
# event streams). Its response parser builds an email message per answer, a good part
# of a call's CPU time.


def _host_header(origin: _Origin) -> str:
    scheme, host, port = origin
    try:
        name = host.encode("ascii").decode("ascii")
    except UnicodeEncodeError:
        name = host.encode("idna").decode("ascii")
    if ":" in name:
        name = f"[{name}]"
    default = 443 if scheme == "https" else 80
    return name if port == default else f"{name}:{port}"


class KeepAliveStream:
    """An open event stream on a pooled (or new) connection; iterate for chunks.

    ``close()`` may be called from another thread to abort a blocked read: it only
    shuts the socket down (which wakes the reader), and the reading thread releases
    the connection when its iteration ends, so that only one thread ever touches
    the response object. A body the server has ended (read to its end, or already
    whole in the buffer when the stream is closed) gives the connection back to the
    pool; any other end closes it.
    """

    def __init__(
        self,
        connection: _AnyConnection,
        sock: socket.socket,
        raw: http.client.HTTPResponse,
        give_back: Callable[[_AnyConnection], None] | None = None,
    ) -> None:
        self._connection = connection
        self._give_back = give_back
        # Kept here: http.client hands a response without a length over to the response
        # object and forgets the connection's socket, which close() must shut down.
        self._sock = sock
        self._raw = raw
        self._lock = threading.Lock()
        self._closed = False
        self._reader: int | None = None  # the thread iterating, if one is
        self._released = False
        self.response = Response(status=raw.status, headers=_headers(raw), body=b"")

    def _is_aborted(self) -> bool:
        return self._closed

    def __iter__(self) -> Iterator[bytes]:
        progress = Progress(_http11.READING)
        ended = False
        with self._lock:
            self._reader = threading.get_ident()
        try:
            with _mapped(progress):
                while not self._is_aborted():
                    try:
                        chunk = self._raw.read1(_CHUNK)
                    except (OSError, ValueError, http.client.HTTPException):
                        if self._is_aborted():
                            return  # by close(), from another thread
                        raise
                    if not chunk:
                        ended = self._raw.isclosed()
                        return
                    yield chunk
        finally:
            with self._lock:
                self._reader = None
                aborted = self._closed
                self._closed = True
            if not (ended and not aborted and self._give_back_once()):  # ended: reusable
                self._release()

    def close(self) -> None:
        """Abort the stream (safe from any thread, safe to repeat)."""
        with self._lock:
            self._closed = True
            other_thread_reading = self._reader not in (None, threading.get_ident())
        if not other_thread_reading and self._finish_if_ended():
            return
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if not other_thread_reading:
            self._release()

    def _finish_if_ended(self) -> bool:
        """Read the rest of a chunked body that has already arrived in full and give
        the connection back to the pool; False (the caller closes it) if it has not.

        A server that ends its event stream with the last event it sends (the dev
        server does, once every run the stream names has ended) puts the end of the
        body in the same packet, already in the response's buffer. Looking at that
        buffer never blocks: with nothing buffered, one read is tried with the socket
        non-blocking. Anything else (a trailer, bytes yet to come) answers False.
        """
        raw = self._raw
        if self._give_back is None or not raw.chunked or raw.chunk_left != 0:
            return False
        ahead = buffered_head(self._sock, getattr(raw, "fp", None), len(_CHUNK_THEN_LAST))
        if ahead != _CHUNK_THEN_LAST:
            return False
        try:
            if raw.read1(1) or not raw.isclosed():
                return False
        except (OSError, ValueError, http.client.HTTPException):
            return False
        return self._give_back_once()

    def _give_back_once(self) -> bool:
        """Return the connection to the pool unless it was released already; False if
        this stream has no pool to return it to."""
        if self._give_back is None:
            return False
        with self._lock:
            released, self._released = self._released, True
        if not released:
            self._give_back(self._connection)
        return True

    def _release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        with contextlib.suppress(Exception):
            self._raw.close()
        with contextlib.suppress(Exception):
            self._connection.close()
        with contextlib.suppress(OSError):
            self._sock.close()


class KeepAliveTransport:
    """``SyncTransport`` on ``http.client`` that keeps connections alive between calls.

    Safe to share between threads: each call takes a pooled connection (or opens
    one) and returns it when done. ``ssl_context`` is used for ``https://`` (default:
    the system's trust store, hostname checked); ``max_idle`` bounds the idle
    connections kept per origin.
    """

    def __init__(
        self,
        *,
        timeouts: Timeouts | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = DEFAULT_MAX_IDLE,
    ) -> None:
        self._timeouts = timeouts if timeouts is not None else Timeouts()
        self._ssl_context = ssl_context
        self.max_idle = max_idle
        self._idle: dict[_Origin, list[_AnyConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ pool

    def _connect(self, origin: _Origin) -> _AnyConnection:
        scheme, host, port = origin
        connection: _AnyConnection
        if scheme == "https":
            context = self._ssl_context
            if context is None:
                import ssl

                context = self._ssl_context = ssl.create_default_context()
            connection = _TLSConnection(host, port, timeout=self._timeouts.connect, context=context)
        else:
            connection = _Connection(host, port, timeout=self._timeouts.connect)
        connection.auto_open = 0  # a lost connection fails the call, never silently redials
        connection.connect()
        assert connection.sock is not None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _take(self, origin: _Origin) -> _AnyConnection | None:
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                connection = idle.pop() if idle else None
            if connection is None or _idle_and_open(connection):
                return connection
            connection.close()

    def _give_back(self, origin: _Origin, connection: _AnyConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if not self._closed and len(idle) < self.max_idle:
                idle.append(connection)
                return
        connection.close()

    # ------------------------------------------------------------------ calls

    def _exchange(
        self,
        request: Request,
        timeout: float,
        progress: Progress,
        connection: _AnyConnection | None = None,
    ) -> tuple[_Origin, _AnyConnection, http.client.HTTPResponse]:
        origin, target = _split(request.url)
        if connection is None:
            connection = self._take(origin) or self._connect(origin)
        try:
            sock = connection.sock
            assert sock is not None
            sock.settimeout(timeout)
            progress.phase = _http11.WRITING
            connection.gathered = []
            connection.putrequest(
                request.method,
                target,
                skip_host=request.header("host") is not None,
                skip_accept_encoding=True,
            )
            for name, value in request.headers:
                if name.lower() not in _http11.FRAMING_HEADERS:
                    connection.putheader(name, value)
            if request.body or request.method.upper() in _http11.CONTENT_METHODS:
                connection.putheader("Content-Length", str(len(request.body)))
            connection.endheaders(request.body or None)
            data, connection.gathered = b"".join(connection.gathered), None
            sock.sendall(data)
            progress.phase = _http11.READING
            return origin, connection, connection.getresponse()
        except BaseException:
            connection.gathered = None
            connection.close()
            raise

    def send(self, request: Request) -> Response:
        """One exchange. Raises ConnectionFailed, ConnectTimeout, ReadTimeout, NetworkError,
        and ValidationError (before connecting) for a request HTTP/1.1 cannot carry."""
        progress = Progress()
        with _mapped(progress):
            origin, target = _split(request.url)
            data = _http1.request_bytes(request, host=_host_header(origin), target=target)
            connection = self._take(origin) or self._connect(origin)
            try:
                sock = connection.sock
                assert sock is not None
                sock.settimeout(self._timeouts.read)
                progress.phase = _http11.WRITING
                sock.sendall(data)
                progress.phase = _http11.READING
                parser = _http1.ResponseParser(request.method)
                while (response := parser.feed(sock.recv(_CHUNK))) is None:
                    pass
            except BaseException:
                connection.close()
                raise
            if parser.reusable:
                self._give_back(origin, connection)
            else:
                connection.close()
            return response

    def stream(self, request: Request) -> KeepAliveStream | ErrorStream:
        """An event stream on a pooled connection (or a new one), given back to the
        pool only if the server ended the body before the stream was closed."""
        progress = Progress()
        with _mapped(progress):
            origin, _ = _split(request.url)
            connection = self._take(origin) or self._connect(origin)
            sock = connection.sock
            assert sock is not None
            _, connection, raw = self._exchange(
                request, self._timeouts.stream_read, progress, connection
            )
            if raw.status != 200:
                try:
                    body = raw.read(ERROR_BODY_LIMIT) or b""
                finally:
                    connection.close()
                return ErrorStream(Response(status=raw.status, headers=_headers(raw), body=body))
            return KeepAliveStream(
                connection, sock, raw, functools.partial(self._give_back, origin)
            )

    def close(self) -> None:
        """Close every idle connection; streams in progress are closed by their owners."""
        with self._lock:
            self._closed = True
            idle = [c for connections in self._idle.values() for c in connections]
            self._idle.clear()
        for connection in idle:
            with contextlib.suppress(Exception):
                connection.close()
