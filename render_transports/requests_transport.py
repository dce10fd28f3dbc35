"""A synchronous transport on ``requests``.

Keep-alive through one ``requests.Session`` (the caller's, if given: then it is
never closed here), redirects never followed, connect and read timeouts on every
request, event-stream bodies read chunk by chunk as they arrive. Every exception
of ``requests``/``urllib3`` becomes one of the core's transport errors in
:func:`_mapped`, and only there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any, cast

import requests
import urllib3.exceptions

from render_core.config import Timeouts
from render_core.errors import (
    ConnectionFailed,
    ConnectTimeout,
    NetworkError,
    ReadTimeout,
)
from render_core.http import Request, Response
from render_transports.base import ERROR_BODY_LIMIT, BodyBuffer, ErrorStream, buffered_head

__all__ = ["RequestsStream", "RequestsTransport"]

_CHUNK = 64 * 1024
# The end of a chunked body with no trailer: the last chunk (size 0), an empty line.
_LAST_CHUNK = b"0\r\n\r\n"


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """``requests``/``urllib3`` exceptions -> the core's transport errors (most specific first)."""
    try:
        yield
    except requests.exceptions.ConnectTimeout as exc:
        raise ConnectTimeout(f"connecting timed out: {_reason(exc)}") from exc
    except (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError) as exc:
        raise ReadTimeout(f"the server sent nothing for too long: {_reason(exc)}") from exc
    except requests.exceptions.SSLError as exc:
        raise ConnectionFailed(f"TLS handshake failed: {_reason(exc)}") from exc
    except requests.exceptions.ConnectionError as exc:
        if isinstance(_root(exc), urllib3.exceptions.ReadTimeoutError):
            # iter_content wraps a read timeout in ConnectionError.
            raise ReadTimeout(f"the server sent nothing for too long: {_reason(exc)}") from exc
        if _never_sent(exc):
            raise ConnectionFailed(f"could not connect: {_reason(exc)}") from exc
        raise NetworkError(f"the connection failed: {_reason(exc)}") from exc
    except (
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.DecodeError,
    ) as exc:
        raise NetworkError(f"the response was cut off or malformed: {_reason(exc)}") from exc
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise NetworkError(f"the request failed: {_reason(exc)}") from exc


def _root(exc: BaseException) -> object:
    """The urllib3 error inside a requests error (``MaxRetryError.reason`` unwrapped)."""
    reason: object = exc.args[0] if exc.args else exc
    return getattr(reason, "reason", None) or reason


def _never_sent(exc: requests.exceptions.ConnectionError) -> bool:
    return isinstance(_root(exc), urllib3.exceptions.NewConnectionError | ConnectionRefusedError)


def _reason(exc: BaseException) -> str:
    return str(_root(exc)) or type(exc).__name__


# Origins (and environments) whose settings are remembered at once.
_SETTINGS_CACHE = 64
# Read by requests besides the ``*_proxy`` variables (whose names it matches in any case).
_CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _environment_clues() -> tuple[tuple[str, str], ...]:
    """The environment variables that requests' settings depend on, with their values."""
    environ = os.environ
    return tuple(
        (name, environ[name])
        for name in environ
        if name[-6:].lower() == "_proxy" or name in _CA_BUNDLE_VARIABLES
    )


def _hashable(value: object) -> object:
    """A session setting as part of a key (a list becomes a tuple, anything else its repr)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, list | tuple):
        return tuple(_hashable(item) for item in value)
    return repr(value)


def _read_bounded(raw: requests.Response) -> bytes:
    """The whole body, or a NetworkError once it passes MAX_RESPONSE_BYTES."""
    body = BodyBuffer()
    for chunk in raw.iter_content(chunk_size=_CHUNK):
        body.add(chunk)
    return body.value()


def _response(raw: requests.Response, body: bytes) -> Response:
    return Response(status=raw.status_code, headers=tuple(raw.headers.items()), body=body)


class RequestsStream:
    """An open event stream; iterate for chunks, ``close()`` from any thread.

    Closing from another thread while a read is blocked only shuts the socket down
    (which wakes the reader); the reading thread then releases the connection when
    its iteration ends. Only one thread ever touches the connection's state, and
    an aborted stream's connection is closed, never returned to the pool.
    """

    def __init__(self, raw: requests.Response) -> None:
        self._raw = raw
        self._lock = threading.Lock()
        self._closed = False
        self._released = False
        self._reader: int | None = None
        self.response = _response(raw, b"")

    def __iter__(self) -> Iterator[bytes]:
        raw = self._raw.raw
        with self._lock:
            self._reader = threading.get_ident()
        try:
            with _mapped():
                if raw.chunked:
                    # One item per HTTP chunk, as soon as it arrives.
                    chunks: Iterator[bytes] = self._raw.iter_content(chunk_size=None)
                else:
                    chunks = iter(lambda: raw.read1(_CHUNK), b"")
                try:
                    for chunk in chunks:
                        if chunk:
                            yield chunk
                except (OSError, ValueError, AttributeError) as exc:
                    if self._closed:
                        return  # aborted by close() from another thread
                    raise NetworkError(f"the event stream broke: {exc}") from exc
                except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError):
                    if self._closed:
                        return
                    raise
        finally:
            with self._lock:
                self._reader = None
                release = self._closed
            if release:
                self._release()

    def close(self) -> None:
        """Abort the stream (safe from any thread, safe to repeat)."""
        with self._lock:
            self._closed = True
            other_thread_reading = self._reader not in (None, threading.get_ident())
        if other_thread_reading:
            self._shutdown()  # the reader releases the connection when it wakes up
        elif self._finish_if_ended():
            with self._lock:
                self._released = True  # back in the pool, whole
        else:
            self._release()

    def _finish_if_ended(self) -> bool:
        """Read the rest of a chunked body that has already arrived in full, so that
        its connection goes back to the pool; False if it has not (the caller then
        closes the connection).

        A server that ends its event stream with the last event it sends (the dev
        server does, once every run the stream names has ended) puts the end of the
        body in the same packet, already read into the connection's buffer. Looking at
        that buffer never blocks: with nothing buffered, one read is tried with the
        socket non-blocking. Anything unexpected (another urllib3, a trailer, bytes
        yet to come) answers False, and the connection is closed as before.
        """
        urllib3_response = self._raw.raw
        connection = self._connection()
        sock = getattr(connection, "sock", None)
        reader = getattr(getattr(urllib3_response, "_fp", None), "fp", None)
        read_chunked = getattr(urllib3_response, "read_chunked", None)
        if not (
            isinstance(sock, socket.socket)
            and callable(read_chunked)
            and getattr(urllib3_response, "chunked", False)
            and getattr(urllib3_response, "chunk_left", None) is None
        ):
            return False
        if buffered_head(sock, reader, len(_LAST_CHUNK)) != _LAST_CHUNK:
            return False
        try:
            for _ in read_chunked():
                return False  # more data after all: not the end
        except Exception:
            return False
        return getattr(urllib3_response, "_connection", None) is None  # released to the pool

    def _connection(self) -> object:
        urllib3_response = self._raw.raw
        return getattr(urllib3_response, "_connection", None) or getattr(
            urllib3_response, "connection", None
        )

    def _shutdown(self) -> None:
        sock = getattr(self._connection(), "sock", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._shutdown()
        urllib3_response = self._raw.raw
        connection = self._connection()
        # Detach first: releasing the response must not put this connection back
        # into the pool, where another request could pick up its broken state.
        if hasattr(urllib3_response, "_connection"):
            urllib3_response._connection = None
        close = getattr(connection, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()
        with contextlib.suppress(Exception):
            urllib3_response.close()
        with contextlib.suppress(Exception):
            self._raw.close()


class RequestsTransport:
    """``SyncTransport`` over a ``requests.Session``."""

    def __init__(
        self, session: requests.Session | None = None, *, timeouts: Timeouts | None = None
    ) -> None:
        self._owned = session is None
        self._session = session if session is not None else requests.Session()
        self._timeouts = timeouts if timeouts is not None else Timeouts()
        self._settings: dict[tuple[object, ...], dict[str, Any]] = {}

    def _open(self, request: Request, read_timeout: float) -> requests.Response:
        # What Session.request does, with its environment lookup remembered (see
        # _environment_settings): prepare, merge the settings, send.
        session = self._session
        prepared = session.prepare_request(
            requests.Request(
                request.method,
                request.url,
                headers=dict(request.headers),
                data=request.body or None,
            )
        )
        return session.send(
            prepared,
            timeout=(self._timeouts.connect, read_timeout),
            allow_redirects=False,
            **self._environment_settings(prepared.url or request.url),
        )

    def _environment_settings(self, url: str) -> dict[str, Any]:
        """``Session.merge_environment_settings`` for ``url``, computed once per origin
        while the environment's proxy and CA-bundle variables and the session's own
        settings stay as they were.

        requests reads the proxy variables afresh for every request (several scans of
        ``os.environ``, about a quarter of a millisecond); the few variables that can
        change the answer are compared instead, so setting ``HTTPS_PROXY`` or
        ``NO_PROXY`` later still takes effect on the next request.
        """
        session = self._session
        parts = urllib.parse.urlsplit(url)
        key = (
            parts.scheme,
            parts.netloc,
            session.trust_env,
            _environment_clues() if session.trust_env else (),
            tuple(sorted(session.proxies.items())),
            _hashable(session.verify),
            _hashable(session.cert),
        )
        settings = self._settings.get(key)
        if settings is None:
            merged = session.merge_environment_settings(url, {}, True, None, None)
            settings = cast("dict[str, Any]", dict(merged))
            if len(self._settings) >= _SETTINGS_CACHE:
                self._settings.clear()
            self._settings[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}

    def send(self, request: Request) -> Response:
        with _mapped():
            raw = self._open(request, self._timeouts.read)
            try:
                return _response(raw, _read_bounded(raw))
            finally:
                raw.close()

    def stream(self, request: Request) -> RequestsStream | ErrorStream:
        with _mapped():
            raw = self._open(request, self._timeouts.stream_read)
            if raw.status_code != 200:
                try:
                    body = raw.raw.read(ERROR_BODY_LIMIT, decode_content=True) or b""
                finally:
                    raw.close()
                return ErrorStream(_response(raw, body))
            return RequestsStream(raw)

    def close(self) -> None:
        if self._owned:
            self._session.close()
