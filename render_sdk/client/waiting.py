"""Drivers of the core's :class:`~render_core.waiter.RunWaiter`, one per colour.

The waiter decides everything (which streams, when to reconnect, when to GET);
these loops only perform its actions and report back:

- :func:`wait_sync` runs in the caller's thread. When one stream serves every run
  and the waiter has nothing to do at a set time (no deadline, every run known to
  exist: :meth:`~render_core.waiter.RunWaiter.can_block_on_stream`), as for
  ``run_task`` without a timeout, the caller's thread reads that stream itself.
  Otherwise each event stream is read by a small daemon thread that posts what it
  sees to a queue; the caller's thread runs the waiter, performs ``GET``
  confirmations itself and sleeps on the queue until the waiter's next timer.
- :class:`AsyncWaitHub` is one background task per ``RenderAsync`` client, shared
  by every coroutine awaiting a run, so a thousand awaits share ten streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

from render_core.errors import NetworkError, RenderError
from render_core.waiter import (
    CloseStream,
    Fetch,
    OpenStream,
    RunResult,
    RunWaiter,
    wait_timed_out,
)
from render_transports.base import AsyncStream, AsyncTransport, SyncStream, SyncTransport

__all__ = ["AsyncWaitHub", "wait_sync"]

logger = logging.getLogger("render_sdk")


def _settle(future: asyncio.Future[RunResult], result: RunResult) -> None:
    if not future.done():
        future.set_result(result)


def _unexpected(exc: BaseException) -> RenderError:
    return NetworkError(f"the event stream failed: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------
# Sync


class _Slot:
    """One stream's reader thread and the handle needed to abort it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stream: SyncStream | None = None
        self.cancelled = False

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            stream = self.stream
        if stream is not None:
            stream.close()


def _open(transport: SyncTransport, request: Any) -> SyncStream | RenderError:
    """An open stream, or the error that kept it from opening."""
    try:
        return transport.stream(request)
    except RenderError as exc:
        return exc
    except Exception as exc:  # a third-party transport broke its contract
        return _unexpected(exc)


def _read_stream(
    stream_id: int, request: Any, transport: SyncTransport, slot: _Slot, events: queue.Queue[Any]
) -> None:
    stream = _open(transport, request)
    if isinstance(stream, RenderError):
        events.put(("closed", stream_id, stream))
        return
    with slot.lock:
        slot.stream = stream
        cancelled = slot.cancelled
    if cancelled:
        stream.close()
        return
    events.put(("opened", stream_id, stream.response))
    _pump_stream(stream_id, stream, iter(stream), slot, events)


def _pump_stream(
    stream_id: int,
    stream: SyncStream,
    chunks: Iterator[bytes],
    slot: _Slot,
    events: queue.Queue[Any],
) -> None:
    """Post each chunk of an open stream, then its end, until it ends or is cancelled."""
    try:
        while isinstance(item := _next_chunk(chunks), bytes):
            if slot.cancelled:
                return
            events.put(("data", stream_id, item))
    finally:
        _release(stream, chunks)
    if not slot.cancelled:
        events.put(("closed", stream_id, item))


def _next_chunk(chunks: Iterator[bytes]) -> bytes | RenderError | None:
    """The stream's next chunk; at its end None, or the error that ended it."""
    try:
        return next(chunks)
    except StopIteration:
        return None
    except RenderError as exc:
        return exc
    except Exception as exc:  # a third-party transport broke its contract
        return _unexpected(exc)


def _release(stream: SyncStream, chunks: Iterator[bytes]) -> None:
    """Close the stream, and its iterator: a generator's cleanup runs now."""
    stream.close()
    close = getattr(chunks, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


class _Inline:
    """The one event stream read in the caller's own thread."""

    __slots__ = ("chunks", "stream", "stream_id")

    def __init__(self, stream_id: int, stream: SyncStream) -> None:
        self.stream_id = stream_id
        self.stream = stream
        self.chunks = iter(stream)

    def read(self, waiter: RunWaiter, clock: Callable[[], float]) -> bool:
        """Block for the next chunk and report it; False once the stream has ended."""
        item = _next_chunk(self.chunks)
        if isinstance(item, bytes):
            waiter.stream_data(self.stream_id, item, clock())
            return True
        self.close()
        if item is not None:
            logger.debug("event stream %d failed: %s", self.stream_id, item)
        waiter.stream_closed(self.stream_id, clock(), item)
        return False

    def close(self) -> None:
        _release(self.stream, self.chunks)

    def hand_over(self, slots: dict[int, _Slot], events: queue.Queue[Any]) -> None:
        """Go on reading in a thread of its own (the caller must now wait on more)."""
        slot = slots[self.stream_id] = _Slot()
        slot.stream = self.stream
        threading.Thread(
            target=_pump_stream,
            args=(self.stream_id, self.stream, self.chunks, slot, events),
            name=f"render-sdk-stream-{self.stream_id}",
            daemon=True,
        ).start()


def _open_inline(
    waiter: RunWaiter, action: OpenStream, transport: SyncTransport, clock: Callable[[], float]
) -> _Inline | None:
    logger.debug("opening event stream %d in this thread", action.stream_id)
    stream = _open(transport, action.request)
    if isinstance(stream, RenderError):
        logger.debug("event stream %d failed: %s", action.stream_id, stream)
        waiter.stream_closed(action.stream_id, clock(), stream)
        return None
    waiter.stream_opened(action.stream_id, stream.response, clock())
    return _Inline(action.stream_id, stream)


def wait_sync(
    waiter: RunWaiter,
    transport: SyncTransport,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Generator[RunResult, None, None]:
    """Yield each waited-for run's :class:`RunResult` as it resolves, until none is left.

    Closing the generator (``break`` in a ``for`` loop) stops every stream it opened.
    """
    events: queue.Queue[Any] = queue.Queue()
    slots: dict[int, _Slot] = {}
    inline: _Inline | None = None
    try:
        while True:
            yield from waiter.take_results()
            for action in waiter.poll(clock()):
                if isinstance(action, OpenStream):
                    if inline is None and not slots and waiter.can_block_on_stream():
                        inline = _open_inline(waiter, action, transport, clock)
                        continue
                    slot = slots[action.stream_id] = _Slot()
                    logger.debug("opening event stream %d", action.stream_id)
                    threading.Thread(
                        target=_read_stream,
                        args=(action.stream_id, action.request, transport, slot, events),
                        name=f"render-sdk-stream-{action.stream_id}",
                        daemon=True,
                    ).start()
                elif isinstance(action, CloseStream):
                    if inline is not None and inline.stream_id == action.stream_id:
                        inline.close()
                        inline = None
                        continue
                    closing = slots.pop(action.stream_id, None)
                    if closing is not None:
                        closing.cancel()
                elif isinstance(action, Fetch):
                    _fetch_sync(waiter, transport, action, clock)
            if waiter.has_results:
                continue
            if waiter.done:
                return
            deadline = waiter.next_deadline()
            if inline is not None:
                if slots or not waiter.can_block_on_stream():
                    inline.hand_over(slots, events)
                    inline = None
                elif deadline is not None and deadline <= clock():
                    continue  # a check is due: poll first
                else:
                    if not inline.read(waiter, clock):
                        inline = None
                    continue
            timeout = None if deadline is None else max(0.0, deadline - clock())
            try:
                item = events.get(timeout=timeout)
            except queue.Empty:
                continue
            while True:
                _deliver(waiter, item, clock())
                try:
                    item = events.get_nowait()
                except queue.Empty:
                    break
    finally:
        if inline is not None:
            inline.close()
        for slot in slots.values():
            slot.cancel()


def _fetch_sync(
    waiter: RunWaiter, transport: SyncTransport, action: Fetch, clock: Callable[[], float]
) -> None:
    try:
        response = transport.send(action.request)
    except RenderError as exc:
        waiter.fetch_failed(action.run_id, exc, clock())
    else:
        waiter.fetch_response(action.run_id, response, clock())


def _deliver(waiter: RunWaiter, item: tuple[str, int, Any], now: float) -> None:
    kind, stream_id, value = item
    if kind == "opened":
        waiter.stream_opened(stream_id, value, now)
    elif kind == "data":
        waiter.stream_data(stream_id, value, now)
    else:
        if value is not None:
            logger.debug("event stream %d failed: %s", stream_id, value)
        waiter.stream_closed(stream_id, now, value)


# ---------------------------------------------------------------------------
# Async


class AsyncWaitHub:
    """One waiter per client, driven by one background task, shared by all awaiters."""

    def __init__(self, waiter: RunWaiter, transport: AsyncTransport) -> None:
        self._waiter = waiter
        self._transport = transport
        self._futures: dict[str, list[asyncio.Future[RunResult]]] = {}
        self._streams: dict[int, asyncio.Task[None]] = {}
        self._fetches: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def streams_opened(self) -> int:
        return self._waiter.streams_opened

    async def wait(
        self, run_id: str, timeout: float | None = None, *, since: float | None = None
    ) -> RunResult:
        """Wait for ``run_id``'s result; cancelling this coroutine stops waiting for it.

        ``timeout`` seconds after ``since`` (the loop's clock; default: now) the
        result is the waiter's :func:`~render_core.waiter.wait_timed_out` error,
        for this awaiter only: others awaiting the same run keep their own deadline.
        """
        if self._closed:
            raise RenderError("the client is closed", operation="wait for task run")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[RunResult] = loop.create_future()
        self._futures.setdefault(run_id, []).append(future)
        self._waiter.add([run_id], loop.time())
        self._kick()
        expiry = None
        if timeout is not None:
            timed_out = RunResult(run_id, error=wait_timed_out([run_id], timeout))
            start = loop.time() if since is None else since
            expiry = loop.call_at(start + timeout, _settle, future, timed_out)
        try:
            return await future
        finally:
            if expiry is not None:
                expiry.cancel()
            waiting = self._futures.get(run_id)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._futures[run_id]
                    self._waiter.discard([run_id])
                    self._kick()

    def _kick(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # First use, or the client moved to a new event loop (asyncio.run twice).
            self._loop, self._wake, self._task = loop, asyncio.Event(), None
        assert self._wake is not None
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        wake = self._wake
        try:
            while True:
                self._dispatch()
                if self._waiter.done and not self._futures:
                    return
                for action in self._waiter.poll(loop.time()):
                    if isinstance(action, OpenStream):
                        self._streams[action.stream_id] = loop.create_task(
                            self._read(action.stream_id, action.request)
                        )
                    elif isinstance(action, CloseStream):
                        task = self._streams.pop(action.stream_id, None)
                        if task is not None:
                            task.cancel()
                    elif isinstance(action, Fetch):
                        fetch = loop.create_task(self._fetch(action))
                        self._fetches.add(fetch)
                        fetch.add_done_callback(self._fetches.discard)
                self._dispatch()
                if self._waiter.done and not self._futures:
                    return
                deadline = self._waiter.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                wake.clear()
                if timeout != 0.0:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout)
        finally:
            for task in self._streams.values():
                task.cancel()
            self._streams.clear()

    def _dispatch(self) -> None:
        for result in self._waiter.take_results():
            for future in self._futures.pop(result.run_id, []):
                _settle(future, result)

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _read(self, stream_id: int, request: Any) -> None:
        loop = asyncio.get_running_loop()
        stream: AsyncStream | None = None
        error: RenderError | None = None
        try:
            stream = await self._transport.stream(request)
            self._waiter.stream_opened(stream_id, stream.response, loop.time())
            self._poke()
            async for chunk in stream:
                self._waiter.stream_data(stream_id, chunk, loop.time())
                self._poke()
        except RenderError as exc:
            error = exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = _unexpected(exc)
        finally:
            if stream is not None:
                await stream.aclose()
        self._waiter.stream_closed(stream_id, loop.time(), error)
        self._poke()

    async def _fetch(self, action: Fetch) -> None:
        loop = asyncio.get_running_loop()
        try:
            response = await self._transport.send(action.request)
        except RenderError as exc:
            self._waiter.fetch_failed(action.run_id, exc, loop.time())
        else:
            self._waiter.fetch_response(action.run_id, response, loop.time())
        self._poke()

    async def aclose(self) -> None:
        """Stop waiting for everything; pending awaiters get a :class:`RenderError`."""
        self._closed = True
        error = RenderError("the client was closed while waiting", operation="wait for task run")
        for futures in self._futures.values():
            for future in futures:
                if not future.done():
                    future.set_exception(error)
        self._futures.clear()
        tasks = [t for t in (self._task, *self._streams.values(), *self._fetches) if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
