"""Fault injectors for the fault suite: a TCP proxy that breaks connections on purpose,
a raw HTTP server that answers garbage, and a dev server run as a real subprocess.

:class:`FaultProxy` sits between a client and a real server (the loopback fake of
Render, or the dev server). It forwards one request per upstream connection (it asks
both sides for ``Connection: close``, so every request is seen and can be matched on
its method and path) and applies the first matching rule:

- ``cut``: forward the answer, then close after ``after`` bytes of it (FIN);
- ``reset``: the same, but abort with a TCP reset (RST);
- ``blackhole``: read the request and never answer (a half-open peer: no bytes).

Every forwarded byte of the answer is counted, head included, so ``after`` is an
offset into exactly what the client would have received. :attr:`FaultProxy.records`
keeps each request (time, method, path) and, for recorded paths, the answer bytes.

:class:`RawServer` answers every request with whatever bytes a test scripts, or
with an endless body, to check that clients fail cleanly on garbage.

Both run on their own event loop in a background thread and bind ``127.0.0.1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
S = TypeVar("S", bound="_LoopServer")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Any single wait in a helper; generous, only ever hit when something hangs.
HANG_GUARD = 60.0
_MAX_HEAD = 64 * 1024


def address_of(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``http://host:port`` URL."""
    parts = urlsplit(url)
    assert parts.hostname is not None, url
    assert parts.port is not None, url
    return parts.hostname, parts.port


class _LoopThread:
    """An event loop in a daemon thread; ``call`` runs a coroutine on it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(HANG_GUARD)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(HANG_GUARD)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _with_connection_close(head: bytes) -> bytes:
    """``head`` (request or status line + headers, no blank line) with ``Connection: close``."""
    lines = head.split(b"\r\n")
    kept = [lines[0]] + [
        line for line in lines[1:] if not line.lower().startswith(b"connection:") and line
    ]
    return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n"


def _with_host(head: bytes, upstream: tuple[str, int]) -> bytes:
    """A request ``head`` naming ``upstream`` in its ``Host``, as a reverse proxy sends it.

    (The dev server answers only to the names it is reachable by, with its own port.)
    """
    host, port = upstream
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"host:")]
    return b"\r\n".join([lines[0], f"Host: {host}:{port}".encode(), *lines[1:]])


@dataclass
class Rule:
    kind: str  # "cut" | "reset" | "blackhole"
    method: str | None
    path_prefix: str | None
    after: int
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method == method)
            and (self.path_prefix is None or path.startswith(self.path_prefix))
        )


@dataclass
class Record:
    at: float
    method: str
    path: str
    fault: str | None
    wall: float
    answer: bytearray = field(default_factory=bytearray)


class _LoopServer:
    """A loopback server on a background loop: stopped with its connections by ``close``."""

    _server: asyncio.AbstractServer | None
    _writers: set[asyncio.StreamWriter]
    _handlers: set[asyncio.Task[Any]]
    _thread: _LoopThread

    def close(self) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            tasks = list(self._handlers)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()

        self._thread.call(stop())
        self._thread.stop()

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FaultProxy(_LoopServer):
    """A loopback TCP proxy in front of ``upstream`` (``host``, ``port``) that breaks things."""

    def __init__(self, upstream: tuple[str, int], *, record_prefix: str | None = None) -> None:
        self.upstream = upstream
        self.record_prefix = record_prefix
        self._rules: list[Rule] = []
        self._records: list[Record] = []
        self._lock = threading.Lock()
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._thread = _LoopThread("fault-proxy")
        self._server: asyncio.Server | None = None
        self.port = self._thread.call(self._start())

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(
        self,
        kind: str,
        *,
        method: str | None = None,
        path_prefix: str | None = None,
        after: int = 0,
        count: int = 1,
    ) -> None:
        with self._lock:
            self._rules.append(Rule(kind, method, path_prefix, after, count))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._records.clear()

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return None
        length = 0
        match = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
        if match:
            length = int(match.group(1))
        body = await reader.readexactly(length) if length else b""
        return head[:-4], body

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await self._read_request(reader)
        if request is None:
            return
        head, body = request
        method, target = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
        path = target.split("?", 1)[0]
        with self._lock:
            rule = next((r for r in self._rules if r.matches(method, path)), None)
            if rule is not None:
                rule.remaining -= 1
            record = Record(
                time.monotonic(), method, path, rule.kind if rule else None, time.time()
            )
            self._records.append(record)
        keep = self.record_prefix is not None and path.startswith(self.record_prefix)
        if rule is not None and rule.kind == "blackhole":
            await reader.read()  # until the client gives up
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            up_writer.write(_with_connection_close(_with_host(head, self.upstream)) + body)
            await up_writer.drain()
            sent = 0
            pending = b""
            head_done = False
            while True:
                chunk = await up_reader.read(64 * 1024)
                if not chunk:
                    break
                if not head_done:
                    pending += chunk
                    end = pending.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    chunk = _with_connection_close(pending[:end]) + pending[end + 4 :]
                    head_done = True
                if rule is not None and sent + len(chunk) >= rule.after:
                    chunk = chunk[: rule.after - sent]
                    writer.write(chunk)
                    if keep:
                        record.answer += chunk
                    await writer.drain()
                    if rule.kind == "reset":
                        _abort(writer)
                    else:
                        writer.close()
                    return
                writer.write(chunk)
                sent += len(chunk)
                if keep:
                    record.answer += chunk
                await writer.drain()
            if rule is not None and rule.kind == "reset" and sent < rule.after:
                # The answer ended before the offset: the reset happens at its end.
                _abort(writer)
                return
            writer.close()
        finally:
            up_writer.transport.abort()


Script = Callable[[str, str, bytes], AsyncIterator[bytes]]


class RawServer(_LoopServer):
    """Answers each request (one per connection) with the bytes ``script`` yields.

    ``script(method, path, body)`` is an async generator of raw bytes (status line and
    headers included); the connection is closed when it ends. ``served`` counts requests.
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.served = 0
        self.written = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._thread = _LoopThread("raw-server")
        self._server: asyncio.Server | None = None
        self.port = self._thread.call(self._start())

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
            body = await reader.readexactly(int(match.group(1))) if match else b""
            method, target = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
            self.served += 1
            async for data in self.script(method, target.split("?", 1)[0], body):
                writer.write(data)
                self.written += len(data)
                await writer.drain()
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            OSError,
            asyncio.CancelledError,
        ):
            pass
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.transport.abort()


def http_response(
    status: int, body: bytes, content_type: str = "application/json", extra: str = ""
) -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    ).encode() + body


# ---------------------------------------------------------------------------
# The dev server as a real subprocess


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = ROOT
    if "RENDER_DEV_NO_FORK" in os.environ:  # the mode the suite runs in
        env["RENDER_DEV_NO_FORK"] = os.environ["RENDER_DEV_NO_FORK"]
    env.update(extra)
    return env


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (Linux ``/proc``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux ``/proc``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (Linux ``/proc``).

    A killed orphan may stay a zombie when nothing reaps it (an init that does not
    wait, in a container): it runs no code and holds nothing, so it counts as gone.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[-1].split()
    except OSError:
        return False
    return bool(fields) and fields[0] not in ("Z", "X")


def watchdog_of(pid: int) -> int | None:
    """The dev server ``pid``'s watchdog helper, if it has one (Linux ``/proc``)."""
    for child in children_of(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if any(arg.endswith(b"render_devserver/processes.py") for arg in argv):
            return child
    return None


class DevServerProcess:
    """``python -m render_devserver --port 0 ...`` started in ``cwd``; ``url`` once it listens."""

    def __init__(
        self,
        cwd: str,
        command: list[str],
        *,
        db: str,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.cwd = cwd
        argv = [sys.executable, "-m", "render_devserver", "--port", "0", "--db", db]
        argv += [*(args or []), "--", *command]
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env if env is not None else clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.banner: list[str] = []
        self.errors: list[str] = []
        self._readers = [threading.Thread(target=self._read_stderr, daemon=True)]
        self._readers[0].start()
        self.url = self._wait_for_url()
        # Keep reading the output so the server never blocks on a full pipe.
        self._readers.append(threading.Thread(target=self._read_stdout, daemon=True))
        self._readers[1].start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_for_url(self) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + HANG_GUARD
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.banner.append(line)
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                return match.group(1)
        self.kill()
        raise RuntimeError(f"the dev server did not start: {''.join(self.banner + self.errors)}")

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.banner.append(line)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.errors.append(line)

    def _reap(self) -> None:
        self.process.wait(HANG_GUARD)
        for reader in self._readers:
            reader.join(HANG_GUARD)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def kill_hard(self) -> list[int]:
        """SIGKILL the server as a crash would; returns the task processes it left behind.

        The server is frozen first (SIGSTOP) so that it cannot start another process
        between the listing of its children and its death.
        """
        os.kill(self.pid, signal.SIGSTOP)
        orphans = children_of(self.pid)
        os.kill(self.pid, signal.SIGKILL)
        self._reap()
        return orphans

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self._reap()

    def stop(self) -> int:
        """SIGINT (Ctrl-C) and wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(HANG_GUARD)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._reap()
        return int(self.process.returncode)


def socket_dirs_of(pids: list[int]) -> set[str]:
    """The task-socket directories named in the environment of processes ``pids``."""
    dirs = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"RENDER_SDK_SOCKET_PATH="):
                dirs.add(os.path.dirname(item.split(b"=", 1)[1].decode()))
    return dirs


def kill_groups(pids: list[int]) -> None:
    """SIGKILL the process groups of task processes we caused to exist (each leads one)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


@contextlib.contextmanager
def dev_server_process(
    cwd: str, command: list[str], *, db: str, args: list[str] | None = None
) -> Iterator[DevServerProcess]:
    server = DevServerProcess(cwd, command, db=db, args=args)
    try:
        yield server
    finally:
        server.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = HANG_GUARD) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)
