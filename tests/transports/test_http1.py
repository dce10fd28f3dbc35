"""The hand-written HTTP/1.1 framing: requests out, answers in, however bytes arrive."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render_core.errors import NetworkError, ValidationError
from render_core.http import Request, Response
from render_transports._http1 import ResponseParser, request_bytes

ANSWERS = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "GET", b"{}", True),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;x=y\r\n{"a"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\nTrailer: t\r\n\r\n',
        "GET",
        b'{"a": 1}',
        True,
    ),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET", b"", True),
    (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
        "POST",
        b"x",
        True,
    ),
    (b"HTTP/1.1 204 No Content\r\n\r\n", "DELETE", b"", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "HEAD", b"", True),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nz", "GET", b"z", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nz", "GET", b"z", False),
    (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nz", "GET", b"z", True),
]


def feed_all(parser: ResponseParser, pieces: list[bytes]) -> Response | None:
    for piece in pieces:
        response = parser.feed(piece)
        if response is not None:
            return response
    return parser.feed(b"")


@pytest.mark.parametrize(("raw", "method", "body", "reusable"), ANSWERS)
def test_whole_answers(raw: bytes, method: str, body: bytes, reusable: bool) -> None:
    parser = ResponseParser(method)
    response = parser.feed(raw)
    assert response is not None
    assert response.body == body
    assert parser.reusable is reusable


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, len(ANSWERS) - 1), cuts=st.lists(st.integers(0, 200), max_size=12))
def test_any_split_of_the_bytes_gives_the_same_answer(index: int, cuts: list[int]) -> None:
    raw, method, body, _ = ANSWERS[index]
    points = sorted({min(cut, len(raw)) for cut in cuts} | {0, len(raw)})
    pieces = [raw[a:b] for a, b in itertools.pairwise(points) if raw[a:b]]
    response = feed_all(ResponseParser(method), pieces)
    assert response is not None
    assert response.body == body


def test_a_body_that_ends_with_the_connection() -> None:
    parser = ResponseParser("GET")
    assert parser.feed(b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nsome") is None
    assert parser.feed(b" more") is None
    response = parser.feed(b"")
    assert response is not None
    assert response.body == b"some more"
    assert response.headers == (("X", "y"),)
    assert parser.reusable is False


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", "before the response began"),
        (b"HTTP/1.1 200 OK\r\n", "before the response began"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 099 Huh\r\n\r\n", "bad status line"),
        (b"HTTP/2.0 200 OK\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 200 OK\r\n no-name\r\n\r\n", "bad header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "before the response ended"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            "before the response ended",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY", "CRLF"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", "head over"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", "over the 10-byte limit"),
    ],
)
def test_malformed_answers_name_the_problem(raw: bytes, problem: str) -> None:
    parser = ResponseParser("GET", limit=10)
    with pytest.raises(NetworkError, match=problem):
        feed_all(parser, [raw])


def test_a_request_is_one_block() -> None:
    request = Request(
        method="POST",
        url="http://x/v1",
        headers=[("Content-Length", "99"), ("Connection", "keep-alive"), ("X-A", "b")],
        body=b"{}",
    )
    data = request_bytes(request, host="h:1", target="/v1?q=1", close=True)
    assert data == (
        b"POST /v1?q=1 HTTP/1.1\r\nHost: h:1\r\nX-A: b\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\n{}"
    )
    empty_post = Request(method="POST", url="http://x/", headers=[], body=b"")
    assert b"Content-Length: 0\r\n" in request_bytes(empty_post, host="h", target="/")
    get = Request(method="GET", url="http://x/", headers=[], body=b"")
    assert b"Content-Length" not in request_bytes(get, host="h", target="/")


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("GE T", "/", []),
        ("GET", "/a b", []),
        ("GET", "/\x01", []),
        ("GET", "/caf\u00e9", []),
        ("GET", "/", [("Bad:Name", "1")]),
        ("GET", "/", [("X", "1\r\nY: 2")]),
        ("GET", "/", [("X", "\u2603")]),
    ],
)
def test_what_http_cannot_carry_is_refused(
    method: str, target: str, headers: list[tuple[str, str]]
) -> None:
    request = Request(method=method, url="http://x/", headers=headers, body=b"")
    with pytest.raises(ValidationError, match=r"cannot be sent as HTTP/1\.1"):
        request_bytes(request, host="h", target=target)
