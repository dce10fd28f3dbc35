"""An asynchronous transport on ``aiohttp``.

One ``aiohttp.ClientSession`` (the caller's, if given: then it is never closed
here; otherwise created lazily inside the running loop on first use), redirects
never followed, connect and read timeouts on every request, event-stream bodies
read chunk by chunk as they arrive. Every ``aiohttp`` exception becomes one of
the core's transport errors in :func:`_mapped`, and only there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator

import aiohttp

from render_core.config import Timeouts
from render_core.errors import (
    ConnectionFailed,
    ConnectTimeout,
    NetworkError,
    ReadTimeout,
)
from render_core.http import Request, Response
from render_transports.base import ERROR_BODY_LIMIT, BodyBuffer

__all__ = ["AiohttpStream", "AiohttpTransport"]


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """``aiohttp`` exceptions -> the core's transport errors (most specific first)."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise ConnectTimeout(f"connecting timed out: {exc or 'no answer'}") from exc
    except (aiohttp.ServerTimeoutError, asyncio.TimeoutError) as exc:
        raise ReadTimeout(f"the server sent nothing for too long: {exc or 'timeout'}") from exc
    except aiohttp.ClientConnectorError as exc:
        raise ConnectionFailed(f"could not connect: {exc}") from exc
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
        raise NetworkError(f"the response was cut off: {exc or type(exc).__name__}") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise NetworkError(f"the request failed: {exc or type(exc).__name__}") from exc


def _response(raw: aiohttp.ClientResponse, body: bytes) -> Response:
    return Response(status=raw.status, headers=tuple(raw.headers.items()), body=body)


class AiohttpStream:
    """An open event stream; ``async for`` its chunks, ``aclose()`` to release it."""

    def __init__(self, raw: aiohttp.ClientResponse | None, response: Response) -> None:
        self._raw = raw
        self.response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._raw is None:
            return
        with _mapped():
            async for chunk in self._raw.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None


async def _close_at_loop_shutdown(
    session: aiohttp.ClientSession,
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if not session.closed:
            await session.close()


class AiohttpTransport:
    """``AsyncTransport`` over an ``aiohttp.ClientSession``."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        timeouts: Timeouts | None = None,
    ) -> None:
        self._owned = session is None
        self._session = session
        self._closer: AsyncGenerator[None, None] | None = None
        self._timeouts = timeouts if timeouts is not None else Timeouts()
        self._send_timeout: aiohttp.ClientTimeout | None = None

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owned and self._session.closed):
            # Created here, inside the running loop, never at construction time.
            self._session = aiohttp.ClientSession()
            # A started async generator is finalised by the loop's shutdown
            # (asyncio.run does it), closing the session even if the caller never
            # called aclose(): no "Unclosed client session" noise at exit.
            self._closer = _close_at_loop_shutdown(self._session)
            await anext(self._closer)
        return self._session

    async def _open(
        self, request: Request, timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        return await (await self._client()).request(
            request.method,
            request.url,
            headers=dict(request.headers),
            data=request.body or None,
            allow_redirects=False,
            timeout=timeout,
        )

    async def send(self, request: Request) -> Response:
        timeout = self._send_timeout
        if timeout is None:  # built once: it is the same for every call
            timeout = self._send_timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self._timeouts.connect, sock_read=self._timeouts.read
            )
        with _mapped():
            async with await self._open(request, timeout) as raw:
                body = BodyBuffer()
                async for chunk in raw.content.iter_chunked(64 * 1024):
                    body.add(chunk)
                return _response(raw, body.value())

    async def stream(self, request: Request) -> AiohttpStream:
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self._timeouts.connect,
            sock_read=self._timeouts.stream_read,
        )
        with _mapped():
            raw = await self._open(request, timeout)
            if raw.status != 200:
                try:
                    body = await raw.content.read(ERROR_BODY_LIMIT)
                finally:
                    raw.release()
                return AiohttpStream(None, _response(raw, body))
            return AiohttpStream(raw, _response(raw, b""))

    async def aclose(self) -> None:
        if self._owned and self._session is not None and not self._session.closed:
            await self._session.close()
            # Transports finish closing their sockets on the next loop iteration;
            # give them that iteration so a loop closed right after leaks nothing.
            await asyncio.sleep(0)
        if self._closer is not None:
            closer, self._closer = self._closer, None
            await closer.aclose()
