"""KeepAliveTransport against raw loopback servers: reuse, stale connections, errors.

The client suite (tests/transports/test_clients.py) already runs every face test over
this transport; these tests check what only a keep-alive transport has to get right,
against servers written by hand so that each misbehaviour is exact.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from render_core.config import Timeouts
from render_core.errors import ConnectionFailed, NetworkError, ReadTimeout, ValidationError
from render_core.http import Request
from render_transports.keepalive_transport import KeepAliveTransport

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

Handler = Callable[[socket.socket, int], None]


class RawServer:
    """Accepts connections on 127.0.0.1 and hands each to ``handler(conn, index)``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._threads: list[threading.Thread] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            index = self.accepted
            self.accepted += 1
            thread = threading.Thread(target=self._serve, args=(conn, index), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket, index: int) -> None:
        with conn, contextlib.suppress(OSError):
            self.handler(conn, index)

    def url(self, path: str = "/v1/x") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._stop = True
        self.listener.close()


def read_request(conn: socket.socket) -> bytes:
    """One request head (and its Content-Length body), or b"" at end of file."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
            while len(body) < length:
                body += conn.recv(65536)
    return head


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Handler) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def get(url: str) -> Request:
    return Request(method="GET", url=url, headers=[("Accept", "application/json")], body=b"")


def keep_answering(conn: socket.socket, index: int) -> None:
    while read_request(conn):
        conn.sendall(OK)


def test_calls_share_one_connection(serve: Callable[[Handler], RawServer]) -> None:
    server = serve(keep_answering)
    transport = KeepAliveTransport()
    try:
        for _ in range(5):
            response = transport.send(get(server.url()))
            assert response.status == 200
            assert response.body == b"{}"
        post = Request(method="POST", url=server.url(), headers=[], body=b'{"a":1}')
        assert transport.send(post).status == 200
    finally:
        transport.close()
    assert server.accepted == 1


def test_connection_close_is_honoured(serve: Callable[[Handler], RawServer]) -> None:
    def once(conn: socket.socket, index: int) -> None:
        read_request(conn)
        conn.sendall(OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))

    server = serve(once)
    with_transport = KeepAliveTransport()
    for _ in range(3):
        assert with_transport.send(get(server.url())).status == 200
    with_transport.close()
    assert server.accepted == 3


def test_an_idle_connection_the_server_closed_is_not_reused(
    serve: Callable[[Handler], RawServer],
) -> None:
    def answer_then_hang_up(conn: socket.socket, index: int) -> None:
        read_request(conn)
        conn.sendall(OK)  # keep-alive by default, then the server closes it anyway

    server = serve(answer_then_hang_up)
    transport = KeepAliveTransport()
    assert transport.send(get(server.url())).status == 200
    time.sleep(0.1)  # let the server's FIN arrive
    assert transport.send(get(server.url())).status == 200
    transport.close()
    assert server.accepted == 2


def test_a_refused_connection_was_never_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionFailed) as info:
        KeepAliveTransport().send(get(f"http://127.0.0.1:{port}/v1/x"))
    assert info.value.request_sent is False


def test_a_silent_server_is_a_read_timeout(serve: Callable[[Handler], RawServer]) -> None:
    def silent(conn: socket.socket, index: int) -> None:
        read_request(conn)
        time.sleep(2)

    server = serve(silent)
    transport = KeepAliveTransport(timeouts=Timeouts(read=0.2))
    with pytest.raises(ReadTimeout):
        transport.send(get(server.url()))


def test_a_response_cut_short_is_a_network_error(serve: Callable[[Handler], RawServer]) -> None:
    def cut(conn: socket.socket, index: int) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")

    server = serve(cut)
    with pytest.raises(NetworkError) as info:
        KeepAliveTransport().send(get(server.url()))
    assert info.value.request_sent is True


def test_an_oversized_response_is_refused(serve: Callable[[Handler], RawServer]) -> None:
    def huge(conn: socket.socket, index: int) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n")

    server = serve(huge)
    with pytest.raises(NetworkError, match="limit"):
        KeepAliveTransport().send(get(server.url()))


def test_a_chunked_response_is_read_whole(serve: Callable[[Handler], RawServer]) -> None:
    def chunked(conn: socket.socket, index: int) -> None:
        while read_request(conn):
            conn.sendall(
                b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
                b'3\r\n{"a\r\n5\r\n": 1}\r\n0\r\n\r\n'
            )

    server = serve(chunked)
    transport = KeepAliveTransport()
    for _ in range(2):
        response = transport.send(get(server.url()))
        assert (response.status, response.body) == (500, b'{"a": 1}')
    transport.close()
    assert server.accepted == 1


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "http:///x", "http://user:pw@127.0.0.1/x", "http://h:port/"]
)
def test_bad_urls_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(ValidationError):
        KeepAliveTransport().send(get(url))


def test_a_stream_yields_chunks_and_closes_from_another_thread(
    serve: Callable[[Handler], RawServer],
) -> None:
    def events(conn: socket.socket, index: int) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
        conn.sendall(b"data: 1\n\n")
        time.sleep(30)

    server = serve(events)
    transport = KeepAliveTransport()
    stream = transport.stream(get(server.url()))
    assert stream.response.status == 200
    chunks = iter(stream)
    assert next(chunks) == b"data: 1\n\n"
    threading.Timer(0.2, stream.close).start()
    assert list(chunks) == []  # the blocked read ended when the stream was closed


def test_a_failed_stream_returns_its_error_body(serve: Callable[[Handler], RawServer]) -> None:
    def refuse(conn: socket.socket, index: int) -> None:
        read_request(conn)
        body = b'{"message": "nope"}'
        conn.sendall(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )

    server = serve(refuse)
    stream = KeepAliveTransport().stream(get(server.url()))
    assert stream.response.status == 401
    assert stream.response.body == b'{"message": "nope"}'
    assert list(stream) == []


# ------------------------------------------------------- framing, read by hand


def answer_each(*answers: bytes) -> Handler:
    """Answer the requests on one connection with ``answers`` in turn, then hang up."""

    def handler(conn: socket.socket, index: int) -> None:
        for answer in answers:
            if not read_request(conn):
                return
            conn.sendall(answer)

    return handler


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    b'4;ext=1\r\n{"a"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\nX-Trailer: yes\r\n\r\n'
)


def test_a_chunked_answer_is_decoded_and_the_connection_kept(
    serve: Callable[[Handler], RawServer],
) -> None:
    server = serve(answer_each(CHUNKED, OK))
    transport = KeepAliveTransport()
    try:
        response = transport.send(get(server.url()))
        assert response.body == b'{"a": 1}'
        assert response.header("content-type") == "application/json"
        assert transport.send(get(server.url())).body == b"{}"
    finally:
        transport.close()
    assert server.accepted == 1


def test_interim_answers_head_and_no_content_have_no_body(
    serve: Callable[[Handler], RawServer],
) -> None:
    server = serve(
        answer_each(
            b"HTTP/1.1 100 Continue\r\n\r\n" + OK,
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n",  # HEAD: the length, no body
            OK,
        )
    )
    transport = KeepAliveTransport()
    try:
        assert transport.send(get(server.url())).body == b"{}"
        assert transport.send(get(server.url())).status == 204
        head = Request(method="HEAD", url=server.url(), headers=[], body=b"")
        assert transport.send(head).body == b""
        assert transport.send(get(server.url())).body == b"{}"
    finally:
        transport.close()
    assert server.accepted == 1


def test_a_body_that_ends_with_the_connection_is_read_and_not_reused(
    serve: Callable[[Handler], RawServer],
) -> None:
    def until_close(conn: socket.socket, index: int) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")

    server = serve(until_close)
    transport = KeepAliveTransport()
    try:
        assert transport.send(get(server.url())).body == b"all of it"
        assert transport.send(get(server.url())).body == b"all of it"
    finally:
        transport.close()
    assert server.accepted == 2


def test_http_1_0_answers_close_unless_kept_alive(serve: Callable[[Handler], RawServer]) -> None:
    plain = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}"
    server = serve(answer_each(kept, kept, plain, OK))
    transport = KeepAliveTransport()
    try:
        for _ in range(4):
            assert transport.send(get(server.url())).body == b"{}"
    finally:
        transport.close()
    assert server.accepted == 2  # the plain HTTP/1.0 answer ended the first connection


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", "bad header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "transfer coding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "closed before the response ended"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n", "over the"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffff\r\n", "over the"),
    ],
)
def test_a_malformed_answer_is_a_network_error(
    serve: Callable[[Handler], RawServer], answer: bytes, problem: str
) -> None:
    server = serve(answer_each(answer))
    transport = KeepAliveTransport()
    try:
        with pytest.raises(NetworkError, match=problem):
            transport.send(get(server.url()))
    finally:
        transport.close()


@pytest.mark.parametrize(
    "request_",
    [
        Request(
            method="GET", url="http://127.0.0.1:9/x", headers=[("X-A", "1\r\nX-B: 2")], body=b""
        ),
        Request(method="GET", url="http://127.0.0.1:9/x", headers=[("Bad Name", "1")], body=b""),
        Request(
            method="GET", url="http://127.0.0.1:9/x", headers=[("X-A", "caf\u00e9\u2603")], body=b""
        ),
        Request(method="GET", url="http://127.0.0.1:9/a b", headers=[], body=b""),
        Request(method="GE T", url="http://127.0.0.1:9/x", headers=[], body=b""),
    ],
)
def test_a_request_http_cannot_carry_is_refused_before_connecting(request_: Request) -> None:
    # Port 9 (discard) is not listening: a connection attempt would be ConnectionFailed.
    with pytest.raises(ValidationError, match=r"cannot be sent as HTTP/1\.1"):
        KeepAliveTransport().send(request_)


def test_the_host_header_names_the_origin(serve: Callable[[Handler], RawServer]) -> None:
    heads: list[bytes] = []

    def record(conn: socket.socket, index: int) -> None:
        while head := read_request(conn):
            heads.append(head)
            conn.sendall(OK)

    server = serve(record)
    transport = KeepAliveTransport()
    try:
        transport.send(get(server.url()))
        own = Request(method="GET", url=server.url(), headers=[("Host", "example.test")], body=b"")
        transport.send(own)
        post = Request(method="POST", url=server.url(), headers=[], body=b"")
        transport.send(post)
    finally:
        transport.close()
    assert f"\r\nHost: 127.0.0.1:{server.port}\r\n".encode() in heads[0]
    assert b"\r\nHost: example.test" in heads[1]
    assert heads[1].count(b"Host:") == 1
    assert b"\r\nContent-Length: 0" in heads[2]
