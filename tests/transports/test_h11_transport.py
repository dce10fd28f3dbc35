"""The h11 socket transports (both colours) and the fake task-socket server.

Transports are tested against two servers on real sockets: :class:`FakeTaskSocket`
for the protocol, and :class:`RawServer` (a few lines of asyncio that write exactly
the bytes a test chooses) for everything a well-behaved server would never do.
The ``colour`` fixture runs a test once with the sync transport and once with the
asyncio one, so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from render_core.errors import (
    ConnectionFailed,
    ConnectTimeout,
    NetworkError,
    ReadTimeout,
    ValidationError,
)
from render_core.http import Request, Response
from render_transports.h11_transport import (
    DEFAULT_SOCKET_TIMEOUT,
    AsyncTCPTransport,
    AsyncUnixSocketTransport,
    TCPTransport,
    UnixSocketTransport,
    request_target,
)
from tests.support.fake_task_socket import BackgroundLoop, FakeTaskSocket, b64json

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

# A generous ceiling for "it gave up at about the timeout": CI machines stall.
SLOW = 3.0
SHORT = 0.3


# ---------------------------------------------------------------------- helpers


class RawServer:
    """Serve each connection with ``handler(reader, writer)`` on a background loop.

    Unix socket by default (in a fresh short directory), loopback TCP with ``tcp=True``.
    The connection is closed when the handler returns, and on exit whatever is left.
    """

    def __init__(self, handler: Handler, *, tcp: bool = False) -> None:
        self._handler = handler
        self._tcp = tcp
        self._loop = BackgroundLoop("raw-server")
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.directory = tempfile.mkdtemp(prefix="rts-", dir="/tmp")
        self.path = os.path.join(self.directory, "raw.sock")
        self.port = 0

    def __enter__(self) -> RawServer:
        self._loop.start()
        self._loop.run(self._astart())
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._loop.run(self._astop())
        finally:
            self._loop.stop()
            shutil.rmtree(self.directory, ignore_errors=True)

    async def _astart(self) -> None:
        if self._tcp:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
        else:
            self._server = await asyncio.start_unix_server(self._handle, path=self.path)

    async def _astop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._handler(reader, writer)
        except OSError:
            pass  # the client gave up first
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """The raw bytes of one Content-Length-framed request."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


def respond(*chunks: bytes, received: list[bytes] | None = None, pause: float = 0.0) -> Handler:
    """A handler that reads the request, then writes ``chunks`` (pausing between)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = await read_request(reader)
        if received is not None:
            received.append(raw)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)

    return handler


def http_response(status: int, body: bytes = b"", *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", *headers, f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


OK = http_response(200, b'{"ok":true}', "Content-Type: application/json")

Send = Callable[..., Response]


@pytest.fixture(params=["sync", "async"])
def colour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def send(colour: str) -> Send:
    """``send(path, request, **transport_kwargs)`` with the transport of this colour."""

    def call(path: str, request: Request, **kwargs: Any) -> Response:
        if colour == "sync":
            transport = UnixSocketTransport(path, **kwargs)
            try:
                return transport.send(request)
            finally:
                transport.close()

        async def go() -> Response:
            transport = AsyncUnixSocketTransport(path, **kwargs)
            try:
                return await transport.send(request)
            finally:
                await transport.aclose()

        return asyncio.run(go())

    return call


def get(path: str = "/input", **kwargs: Any) -> Request:
    return Request(method="GET", url=f"http://localhost{path}", **kwargs)


def post(path: str, payload: Any = None, **kwargs: Any) -> Request:
    body = b"" if payload is None else json.dumps(payload).encode()
    return Request(
        method="POST",
        url=f"http://localhost{path}",
        headers={"Content-Type": "application/json"},
        body=body,
        **kwargs,
    )


# ---------------------------------------------------------------------- transports: bytes


def test_default_timeout_is_the_official_sdks() -> None:
    assert DEFAULT_SOCKET_TIMEOUT == 15.0


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://localhost/input", "/input"),
        ("http://localhost/input?sdk_started_at=1&b=2", "/input?sdk_started_at=1&b=2"),
        ("http://localhost", "/"),
        ("http://localhost?x=1", "/?x=1"),
        ("http://localhost/a#frag", "/a"),
        ("http+unix://%2Ftmp%2Fs.sock/callback", "/callback"),
        ("/run-subtask", "/run-subtask"),
        ("input", "/input"),
    ],
)
def test_request_target_is_path_and_query(url: str, target: str) -> None:
    assert request_target(url) == target


def test_get_writes_exact_bytes_and_reads_the_response(send: Send) -> None:
    received: list[bytes] = []
    answer = http_response(200, b'{"task_name":"a"}', "Content-Type: application/json", "X-A: 1")
    with RawServer(respond(answer, received=received)) as server:
        response = send(
            server.path,
            Request(
                method="GET",
                url="http://ignored.example:8080/input?sdk_started_at=1",
                headers=(("User-Agent", "ua/1"), ("Accept", "application/json")),
            ),
        )
    assert received == [
        b"GET /input?sdk_started_at=1 HTTP/1.1\r\n"
        b"Host: localhost\r\n"
        b"User-Agent: ua/1\r\n"
        b"Accept: application/json\r\n"
        b"Connection: close\r\n"
        b"\r\n"
    ]
    assert response.status == 200
    assert response.body == b'{"task_name":"a"}'
    assert response.headers == (
        ("Content-Type", "application/json"),
        ("X-A", "1"),
        ("Content-Length", "17"),
        ("Connection", "close"),
    )
    assert response.header("x-a") == "1"


def test_post_writes_content_length_and_body(send: Send) -> None:
    received: list[bytes] = []
    with RawServer(respond(http_response(200), received=received)) as server:
        response = send(server.path, post("/callback", {"complete": {"output": "WzVd"}}))
    body = b'{"complete": {"output": "WzVd"}}'
    assert received == [
        b"POST /callback HTTP/1.1\r\n"
        b"Host: localhost\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n"
        b"\r\n" + body
    ]
    assert (response.status, response.body) == (200, b"")


def test_empty_post_says_content_length_zero(send: Send) -> None:
    received: list[bytes] = []
    with RawServer(respond(http_response(200), received=received)) as server:
        send(server.path, Request(method="POST", url="http://localhost/x"))
    assert b"\r\nContent-Length: 0\r\n" in received[0]


def test_own_host_kept_and_framing_headers_replaced(send: Send) -> None:
    received: list[bytes] = []
    request = Request(
        method="POST",
        url="http://localhost/x",
        headers=(
            ("Host", "render"),
            ("Content-Length", "999"),
            ("Connection", "keep-alive"),
            ("X-B", "2"),
        ),
        body=b"abc",
    )
    with RawServer(respond(http_response(200), received=received)) as server:
        send(server.path, request)
    assert received == [
        b"POST /x HTTP/1.1\r\nHost: render\r\nX-B: 2\r\n"
        b"Content-Length: 3\r\nConnection: close\r\n\r\nabc"
    ]


def test_server_errors_are_responses_not_exceptions(send: Send) -> None:
    answer = http_response(500, b'{"message":"boom"}', "Content-Type: application/json")
    with RawServer(respond(answer)) as server:
        response = send(server.path, get())
    assert (response.status, json.loads(response.body)) == (500, {"message": "boom"})


def test_response_split_into_many_small_writes(send: Send) -> None:
    body = json.dumps({"still_running": False, "complete": {"output": "x" * 40}}).encode()
    answer = http_response(200, body, "Content-Type: application/json")
    pieces = [answer[i : i + 3] for i in range(0, len(answer), 3)]
    with RawServer(respond(*pieces, pause=0.001)) as server:
        response = send(server.path, get())
    assert (response.status, response.body) == (200, body)


def test_informational_response_skipped_and_chunked_body_decoded(send: Send) -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    with RawServer(respond(answer)) as server:
        response = send(server.path, get())
    assert (response.status, response.body) == (200, b"abcde")


def test_body_delimited_by_close_is_read_to_the_end(send: Send) -> None:
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"
    with RawServer(respond(answer)) as server:
        response = send(server.path, get())
    assert response.body == b"until the end"


def test_one_mebibyte_each_way(send: Send) -> None:
    payload = os.urandom(1024 * 1024)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = await read_request(reader)
        body = raw.partition(b"\r\n\r\n")[2]
        writer.write(http_response(200, body))
        await writer.drain()

    with RawServer(echo) as server:
        response = send(server.path, Request(method="POST", url="/echo", body=payload))
    assert response.body == payload


# ---------------------------------------------------------------------- transports: failures


def test_missing_socket_file_is_connection_failed(send: Send, tmp_path: Any) -> None:
    with pytest.raises(ConnectionFailed) as caught:
        send(str(tmp_path / "absent.sock"), get())
    assert caught.value.request_sent is False
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_socket_nobody_listens_on_is_connection_failed(send: Send) -> None:
    directory = tempfile.mkdtemp(prefix="rts-", dir="/tmp")
    path = os.path.join(directory, "dead.sock")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bound:
            bound.bind(path)  # bound, never listening: ECONNREFUSED
            with pytest.raises(ConnectionFailed) as caught:
                send(path, get())
    finally:
        shutil.rmtree(directory)
    assert caught.value.request_sent is False


def test_silent_server_is_a_read_timeout_at_about_the_deadline(send: Send) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # until the client gives up

    with RawServer(silent) as server:
        started = time.monotonic()
        with pytest.raises(ReadTimeout) as caught:
            send(server.path, get(), timeout=SHORT)
        elapsed = time.monotonic() - started
    assert SHORT * 0.8 <= elapsed < SLOW
    assert caught.value.request_sent is True


def test_the_deadline_covers_the_whole_call_not_each_read(send: Send) -> None:
    async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):  # one byte every 50 ms: each read is quick, the call is not
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    with RawServer(dribble) as server:
        started = time.monotonic()
        with pytest.raises(ReadTimeout):
            send(server.path, get(), timeout=SHORT)
    assert time.monotonic() - started < SLOW


def test_a_request_that_cannot_be_written_in_time_is_a_connect_timeout(send: Send) -> None:
    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(SLOW * 2)  # never reads: the socket buffers fill up

    body = b"x" * (16 * 1024 * 1024)
    with RawServer(deaf) as server:
        started = time.monotonic()
        with pytest.raises(ConnectTimeout) as caught:
            send(server.path, Request(method="POST", url="/big", body=body), timeout=SHORT)
        # Giving up must not wait for the unsent bytes to drain (the server never reads).
        assert time.monotonic() - started < SLOW
    assert caught.value.request_sent is False


@pytest.mark.skipif(sys.platform != "linux", reason="Linux blocks connect on a full backlog")
def test_a_full_backlog_is_connection_failed(send: Send) -> None:
    # Linux answers EAGAIN to a non-blocking connect on a full Unix backlog (asyncio
    # then wrongly reports success): the request was never sent.
    directory = tempfile.mkdtemp(prefix="rts-", dir="/tmp")
    path = os.path.join(directory, "full.sock")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(0)
            queued = []
            try:
                for _ in range(2):  # fill the backlog (0 lets one through on Linux)
                    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    queued.append(client)
                    client.setblocking(False)
                    try:
                        client.connect(path)
                    except BlockingIOError:
                        break
                with pytest.raises(ConnectionFailed) as caught:
                    send(path, get(), timeout=SHORT)
                assert caught.value.request_sent is False
            finally:
                for client in queued:
                    client.close()
    finally:
        shutil.rmtree(directory)


def test_close_without_answer_is_a_network_error(send: Send) -> None:
    with RawServer(respond()) as server, pytest.raises(NetworkError) as caught:
        send(server.path, get())
    assert not isinstance(caught.value, ConnectionFailed)
    assert caught.value.request_sent is True


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 2000 No\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
    ],
    ids=["garbage", "bad-status", "bad-length", "cut-short", "bad-chunk", "huge-header"],
)
def test_malformed_or_truncated_responses_are_network_errors(send: Send, answer: bytes) -> None:
    with RawServer(respond(answer)) as server, pytest.raises(NetworkError) as caught:
        send(server.path, get())
    assert caught.value.request_sent is True
    assert not isinstance(caught.value, ConnectionFailed)


@pytest.mark.parametrize(
    "answer",
    [
        http_response(200, b"x" * 2000),
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 2000,
    ],
    ids=["declared", "undeclared"],
)
def test_a_response_over_the_bound_is_a_network_error(send: Send, answer: bytes) -> None:
    with RawServer(respond(answer)) as server, pytest.raises(NetworkError, match="limit"):
        send(server.path, get(), max_response_bytes=1000)


@pytest.mark.parametrize(
    "headers",
    [(("X-Bad", "a\r\nInjected: 1"),), (("X-Snow", "\u2603"),), (("Bad Name", "v"),)],
    ids=["crlf", "non-latin-1", "bad-name"],
)
def test_an_unsendable_request_is_refused_before_connecting(
    send: Send, tmp_path: Any, headers: Any
) -> None:
    # The socket does not exist: a ValidationError proves nothing was dialled.
    with pytest.raises(ValidationError):
        send(str(tmp_path / "absent.sock"), get(headers=headers))


def test_tcp_transport_sync() -> None:
    received: list[bytes] = []
    with RawServer(respond(OK, received=received), tcp=True) as server:
        response = TCPTransport("127.0.0.1", server.port, timeout=5).send(get("/p?q=1"))
    assert response.status == 200
    assert received[0].startswith(
        b"GET /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:" + str(server.port).encode() + b"\r\n"
    )


async def test_tcp_transport_async() -> None:
    received: list[bytes] = []
    with RawServer(respond(OK, received=received), tcp=True) as server:
        transport = AsyncTCPTransport("127.0.0.1", server.port, timeout=5)
        response = await transport.send(post("/p", {"a": 1}))
        await transport.aclose()
    assert (response.status, json.loads(response.body)) == (200, {"ok": True})
    assert received[0].endswith(b'Connection: close\r\n\r\n{"a": 1}')


def test_tcp_connection_refused_is_connection_failed() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionFailed):
        TCPTransport("127.0.0.1", port, timeout=5).send(get())


async def test_async_sends_run_concurrently_each_on_its_own_connection() -> None:
    with FakeTaskSocket() as fake:
        fake.serve_input("square", [3])
        transport = AsyncUnixSocketTransport(fake.path, timeout=5)
        responses = await asyncio.gather(*(transport.send(get()) for _ in range(8)))
    assert {r.status for r in responses} == {200}
    assert len(fake.requests) == 8


async def test_async_cancellation_closes_the_connection() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    with RawServer(silent) as server:
        task = asyncio.create_task(AsyncUnixSocketTransport(server.path).send(get()))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_deadline_of_the_caller_s_own_stays_the_caller_s() -> None:
    """The call's deadline cancels only itself: an outer timeout that fires first is
    the caller's (a cancellation, not a ReadTimeout), and a call that times out
    leaves no cancellation pending on the task."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    with RawServer(silent) as server:
        outer = AsyncUnixSocketTransport(server.path, timeout=30)
        task = asyncio.create_task(outer.send(get()))
        await asyncio.sleep(0.05)
        task.cancel()  # someone else's cancel, long before the call's own deadline
        with pytest.raises(asyncio.CancelledError):
            await task
        inner = AsyncUnixSocketTransport(server.path, timeout=SHORT)
        with pytest.raises(ReadTimeout):
            await inner.send(get())
        current = asyncio.current_task()
        assert current is not None
        if sys.version_info >= (3, 11):
            assert current.cancelling() == 0
            with pytest.raises(TimeoutError) as caught:  # the caller's own, from asyncio
                async with asyncio.timeout(0.1):
                    await outer.send(get())
            assert not isinstance(caught.value, ReadTimeout)
        await asyncio.sleep(0)  # still runnable: nothing cancels this task later


def test_module_import_does_not_load_asyncio() -> None:
    import subprocess

    code = "import sys; import render_transports.h11_transport; sys.exit('asyncio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ---------------------------------------------------------------------- the fake


@pytest.fixture
def fake() -> Iterator[FakeTaskSocket]:
    with FakeTaskSocket() as server:
        yield server


def call(fake: FakeTaskSocket, request: Request) -> tuple[int, Any]:
    """Send through the sync transport; (status, decoded JSON body or None)."""
    response = UnixSocketTransport(fake.path, timeout=5).send(request)
    return response.status, json.loads(response.body) if response.body else None


def b64decode_json(text: str) -> Any:
    return json.loads(base64.b64decode(text))


def test_fake_socket_lives_in_a_private_short_directory() -> None:
    fake = FakeTaskSocket()
    with pytest.raises(RuntimeError):
        _ = fake.path
    with fake:
        directory = os.path.dirname(fake.path)
        assert len(fake.path.encode()) < 100
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert stat.S_ISSOCK(os.stat(fake.path).st_mode)
        with pytest.raises(RuntimeError):
            fake.start()
    assert not os.path.exists(directory)
    fake.stop()  # idempotent


def test_fake_serves_input_and_ignores_the_query(fake: FakeTaskSocket) -> None:
    assert call(fake, get()) == (200, {"input": None, "task_name": ""})
    fake.serve_input("add", [2, 3])
    status, body = call(fake, get("/input?sdk_started_at=2026-01-01T00%3A00%3A00Z"))
    assert (status, body["task_name"], b64decode_json(body["input"])) == (200, "add", [2, 3])
    assert body["input"] == "WzIsIDNd"  # b64 of '[2, 3]'
    last = fake.requests[-1]
    assert (last.method, last.path) == ("GET", "/input")
    assert last.query_values("sdk_started_at") == ["2026-01-01T00:00:00Z"]
    assert last.header("host") == "localhost"
    assert last.header("CONNECTION") == "close"


def test_fake_subtask_lifecycle(fake: FakeTaskSocket) -> None:
    request = post(
        "/run-subtask",
        {
            "task_name": "square",
            "input": b64json([4]),
            "idempotency_key": "k1",
            "created_at": "2026-08-20T12:34:56.789012+00:00",
        },
    )
    fake.subtask_handler = lambda name, args: args[0] ** 2
    status, body = call(fake, request)
    assert (status, body) == (200, {"task_run_id": "trn-sub-1"})
    poll = post("/get-subtask-result", {"task_run_id": "trn-sub-1"})
    assert call(fake, poll) == (200, {"still_running": True})
    assert call(fake, poll) == (200, {"still_running": True})
    status, body = call(fake, poll)
    assert body["still_running"] is False
    assert b64decode_json(body["complete"]["output"]) == [16]
    assert call(fake, poll) == (200, body)  # final answers repeat
    (run,) = fake.subtasks
    assert (run.task_name, run.input, run.polls, run.created_at) == (
        "square",
        [4],
        4,
        "2026-08-20T12:34:56.789012+00:00",
    )


def test_fake_subtask_default_handler_echoes_and_no_input_is_empty(fake: FakeTaskSocket) -> None:
    fake.subtask_polls = 0
    _, started = call(fake, post("/run-subtask", {"task_name": "echo"}))
    _, body = call(fake, post("/get-subtask-result", started))
    assert b64decode_json(body["complete"]["output"]) == [[]]


def test_fake_subtask_failure_carries_the_message(fake: FakeTaskSocket) -> None:
    def boom(name: str, value: Any) -> Any:
        raise ValueError(f"{name} exploded")

    fake.subtask_handler = boom
    fake.subtask_polls = 1
    _, started = call(fake, post("/run-subtask", {"task_name": "t", "input": b64json({"a": 1})}))
    poll = post("/get-subtask-result", started)
    assert call(fake, poll) == (200, {"still_running": True})
    assert call(fake, poll) == (
        200,
        {"still_running": False, "error": {"details": "t exploded"}},
    )


def test_fake_subtask_idempotency_key_dedupes(fake: FakeTaskSocket) -> None:
    first = {"task_name": "t", "input": b64json([1]), "idempotency_key": "same"}
    assert call(fake, post("/run-subtask", first))[1] == {"task_run_id": "trn-sub-1"}
    assert call(fake, post("/run-subtask", first))[1] == {"task_run_id": "trn-sub-1"}
    other = {**first, "idempotency_key": "other"}
    assert call(fake, post("/run-subtask", other))[1] == {"task_run_id": "trn-sub-2"}
    assert [run.id for run in fake.subtasks] == ["trn-sub-1", "trn-sub-2"]


def test_fake_callbacks_are_recorded_and_idempotent(fake: FakeTaskSocket) -> None:
    with pytest.raises(TimeoutError):
        fake.wait_for_callback(timeout=0.05)
    done = {"complete": {"output": b64json([5])}}
    assert call(fake, post("/callback", done)) == (200, None)
    assert fake.wait_for_callback() == done
    failed = {"error": {"details": "boom"}}
    assert call(fake, post("/callback", failed)) == (200, None)
    assert fake.callbacks == [done, failed]
    assert fake.wait_for_callback(count=2) == failed


def test_fake_registrations_are_recorded(fake: FakeTaskSocket) -> None:
    tasks = {"tasks": [{"name": "add", "options": {}}]}
    assert call(fake, post("/register-tasks", tasks)) == (200, None)
    assert fake.registrations == [tasks]


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (get("/nope"), 404),
        (post("/nope", {}), 404),
        (get("/callback"), 405),
        (post("/input", {}), 405),
        (Request(method="POST", url="/callback", body=b"{nope"), 400),
        (post("/callback", [1]), 400),
        (post("/callback", {}), 400),
        (post("/callback", {"complete": {"output": 1}}), 400),
        (post("/callback", {"error": {}}), 400),
        (post("/register-tasks", {"tasks": "add"}), 400),
        (post("/run-subtask", {"task_name": ""}), 400),
        (post("/run-subtask", {"task_name": "t", "input": "not base64!"}), 400),
        (post("/get-subtask-result", {}), 400),
        (post("/get-subtask-result", {"task_run_id": "trn-nope"}), 404),
    ],
)
def test_fake_refusals_are_json_messages(
    fake: FakeTaskSocket, request_: Request, status: int
) -> None:
    got, body = call(fake, request_)
    assert got == status
    assert isinstance(body["message"], str)
    assert fake.callbacks == fake.registrations == []


def test_fake_fail_next_injects_statuses_then_recovers(fake: FakeTaskSocket) -> None:
    fake.serve_input("t", [])
    fake.fail_next(2, 503, path="/input", body=b'{"message":"busy"}')
    assert call(fake, post("/callback", {"error": {"details": ""}}))[0] == 200  # other path
    assert call(fake, get()) == (503, {"message": "busy"})
    assert call(fake, get("/input?x=1")) == (503, {"message": "busy"})
    assert call(fake, get())[0] == 200
    fake.fail_next(1, 500)
    assert call(fake, get()) == (500, None)
    assert [r.path for r in fake.requests] == ["/callback", *["/input"] * 4]


def test_fake_status_zero_closes_without_answering(fake: FakeTaskSocket) -> None:
    fake.fail_next(1, 0)
    with pytest.raises(NetworkError) as caught:
        call(fake, post("/callback", {"complete": {"output": ""}}))
    assert caught.value.request_sent is True
    assert len(fake.requests) == 1  # it arrived whole
    assert fake.callbacks == []
    assert call(fake, post("/callback", {"complete": {"output": ""}}))[0] == 200


def test_fake_survives_a_client_that_hangs_up(fake: FakeTaskSocket) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(fake.path)
        client.sendall(b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(fake.path)
        client.sendall(b"nonsense\r\n\r\n")
        assert client.recv(100).startswith(b"HTTP/1.1 400 ")
    assert call(fake, get())[0] == 200
