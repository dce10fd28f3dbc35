"""The transport contracts: what the client faces need from an HTTP library.

A transport moves bytes and nothing else. It is given final :class:`Request`
values by the core and returns :class:`Response` values for *every* status code;
it raises only the core's transport errors (:class:`~render_core.errors.NetworkError`
and its subclasses, :class:`~render_core.errors.TimeoutError` and its subclasses).
Status handling, retries, JSON, auth and the event-stream protocol live in
``render_core``.

Two operations per colour:

- ``send(request) -> Response``: a buffered exchange (REST calls);
- ``stream(request) -> stream``: an event stream. ``stream.response`` holds the
  status and headers (for a non-200 status also the first bytes of the error body,
  and the stream yields nothing); iterating yields body chunks as they arrive, and
  closing it releases the connection. A sync stream's ``close()`` may be called
  from another thread to abort a blocked read.

Write a new transport by implementing these few methods (see
``requests_transport.py`` and ``aiohttp_transport.py``); any object with them can be
passed to ``Render(transport=...)`` or ``RenderAsync(transport=...)``.
"""

from __future__ import annotations

import io
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Protocol, runtime_checkable

from render_core.errors import NetworkError
from render_core.http import Request, Response

__all__ = [
    "AsyncStream",
    "AsyncTransport",
    "BodyBuffer",
    "ErrorStream",
    "SyncStream",
    "SyncTransport",
    "ERROR_BODY_LIMIT",
    "MAX_RESPONSE_BYTES",
    "buffered_head",
    "check_declared_size",
]

# How much of a non-200 event-stream body a transport reads for the error message.
ERROR_BODY_LIMIT = 64 * 1024
# The largest REST answer a transport buffers (the task-socket transport's limit too):
# far above any real page of runs, and a server sending an endless body costs a
# bounded amount of memory before it becomes a NetworkError.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


def check_declared_size(declared: int, limit: int = MAX_RESPONSE_BYTES) -> None:
    """Refuse a response whose ``Content-Length`` is over ``limit`` (a NetworkError)."""
    if declared > limit:
        raise NetworkError(f"the response declares {declared} bytes, over the {limit}-byte limit")


def buffered_head(sock: socket.socket, reader: object, size: int) -> bytes:
    """Up to ``size`` bytes at the head of ``reader`` (the ``io.BufferedReader`` over
    ``sock`` that an HTTP library reads a body from), without consuming or blocking.

    What is buffered already is returned as is; with nothing buffered, one read is
    tried with the socket non-blocking (its timeout is put back). ``b""`` for a reader
    of another kind or on any error. A sync transport asks this of an event stream it
    closes, to learn whether the server ended the body already (then the connection
    can go back to its pool) without waiting for a server that did not.
    """
    if not isinstance(reader, io.BufferedReader):
        return b""
    try:
        timeout = sock.gettimeout()
        sock.settimeout(0.0)
        try:
            return reader.peek(size)[:size]
        finally:
            sock.settimeout(timeout)
    except (OSError, ValueError):
        return b""


class BodyBuffer:
    """A response body read chunk by chunk; a NetworkError once it passes ``limit`` bytes."""

    __slots__ = ("_limit", "_parts", "_size")

    def __init__(self, limit: int = MAX_RESPONSE_BYTES) -> None:
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._limit:
            raise NetworkError(f"the response body is over the {self._limit}-byte limit")
        self._parts.append(chunk)

    def value(self) -> bytes:
        return b"".join(self._parts)


@runtime_checkable
class SyncStream(Protocol):
    @property
    def response(self) -> Response: ...

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


@runtime_checkable
class SyncTransport(Protocol):
    def send(self, request: Request) -> Response: ...

    def stream(self, request: Request) -> SyncStream: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncStream(Protocol):
    @property
    def response(self) -> Response: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class AsyncTransport(Protocol):
    async def send(self, request: Request) -> Response: ...

    async def stream(self, request: Request) -> AsyncStream: ...

    async def aclose(self) -> None: ...


class ErrorStream:
    """A sync stream whose status was not 200: nothing to read, the body is in ``response``."""

    def __init__(self, response: Response) -> None:
        self.response = response

    def __iter__(self) -> Iterator[bytes]:
        return iter(())

    def close(self) -> None:
        pass
