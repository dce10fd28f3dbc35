"""HTTP/1.1 for one request and its answer, written and read by hand (no I/O).

The task-socket transport and the keep-alive REST transport frame their own
requests and parse their own answers with this module: a request as one block of
bytes (:func:`request_bytes`), and a :class:`ResponseParser` fed what the socket
returns. Neither needs more of HTTP/1.1 than a client of one server does, and both
sit on paths where import time or CPU per call counts (a worker's cold start; a
busy blocking client), where h11 and ``http.client`` each cost more than the call.

What a request may hold: a method that is an HTTP token, a target without spaces or
control characters, header names that are tokens and values without CR, LF or NUL,
all of it Latin-1; anything else is a :class:`~render_core.errors.ValidationError`
before a byte is sent. The request's own framing headers are replaced: this module
writes ``Content-Length`` (when there is a body, or the method carries content) and,
when asked, ``Connection: close``.

What an answer may be: a status line ``HTTP/1.0`` or ``HTTP/1.1``, header lines
``name: value``, then a body framed by ``Transfer-Encoding: chunked``,
``Content-Length`` or the end of the connection; interim (1xx) answers before it
are skipped; ``HEAD``, 204 and 304 answers have no body. Anything else (another
coding, conflicting lengths, a bad chunk, an oversized head or body, the connection
ending early) is a :class:`~render_core.errors.NetworkError` naming the problem.
"""

from __future__ import annotations

from render_core.errors import NetworkError, ValidationError
from render_core.http import Request, Response
from render_transports._http11 import CONTENT_METHODS, FRAMING_HEADERS
from render_transports.base import MAX_RESPONSE_BYTES, BodyBuffer, check_declared_size

__all__ = ["MAX_HEAD_BYTES", "ResponseParser", "request_bytes"]

# No regular expressions: compiling them would cost a worker's cold start more than
# these few checks cost at each call.
_TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_HEX_DIGITS = b"0123456789abcdefABCDEF"
#: A response head (status line and headers) larger than this is refused.
MAX_HEAD_BYTES = 64 * 1024


def _is_token(text: str) -> bool:
    return bool(text) and not text.strip(_TOKEN_CHARS)


def _status(line: bytes) -> tuple[int, int] | None:
    """``(minor version, status)`` of a status line ``HTTP/1.x NNN reason``, or None."""
    if len(line) < 12 or line[:7] != b"HTTP/1." or line[7:8] not in (b"0", b"1"):
        return None
    code = line[9:12]
    if line[8:9] != b" " or not code.isdigit() or code[:1] == b"0" or line[12:13] not in b" ":
        return None
    if b"\r" in line or b"\n" in line:
        return None
    return line[7] - 48, int(code)


def _chunk_size(line: bytes) -> int | None:
    """The size on a chunk-size line (extensions ignored), or None if it is not one."""
    digits = line.partition(b";")[0].rstrip(b" \t")
    if not digits or len(digits) > 16 or digits.strip(_HEX_DIGITS):
        return None
    return int(digits, 16)


def _unsendable(what: str) -> ValidationError:
    return ValidationError(f"the request cannot be sent as HTTP/1.1: {what}")


def _malformed(what: str) -> NetworkError:
    return NetworkError(f"the server's response was cut off or malformed: {what}")


def request_bytes(request: Request, *, host: str, target: str, close: bool = False) -> bytes:
    """The whole request, head and body, as one write.

    ``host`` is the ``Host`` header unless the request has its own; ``target`` the
    request target (origin form). Raises :class:`ValidationError` for a request that
    HTTP/1.1 cannot carry (see the module docstring).
    """
    method = request.method
    if not _is_token(method):
        raise _unsendable(f"bad method {method!r}")
    if not (target.isascii() and target.isprintable()) or " " in target:
        raise _unsendable(f"bad characters in the target {target!r}")
    lines = [f"{method} {target} HTTP/1.1"]
    if request.header("host") is None:
        lines.append(f"Host: {host}")
    for name, value in request.headers:
        if name.lower() in FRAMING_HEADERS:
            continue
        if not _is_token(name) or "\r" in value or "\n" in value or "\x00" in value:
            raise _unsendable(f"bad header {name!r}: {value!r}")
        lines.append(f"{name}: {value}")
    body = request.body
    if body or method.upper() in CONTENT_METHODS:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    lines.append("\r\n")
    try:
        head = "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise _unsendable(str(exc)) from None
    return head + body if body else head


def _tokens(framing: dict[str, list[str]], name: str) -> list[str]:
    """The comma-separated values of header ``name``, lower-case, in order."""
    return [token.strip().lower() for value in framing.get(name, ()) for token in value.split(",")]


class ResponseParser:
    """The answer to one request, from the bytes its connection delivers.

    :meth:`feed` what the socket returns, ``b""`` once it ends, until it returns the
    :class:`~render_core.http.Response`. Then :attr:`reusable` tells whether the
    connection may carry another request (HTTP/1.1 without ``Connection: close``, or
    HTTP/1.0 with ``keep-alive``; never after a body that ended with the connection,
    or with bytes left over). After raising, the parser is dead.
    """

    __slots__ = (
        "_body",
        "_buffer",
        "_chunked",
        "_length",
        "_limit",
        "_method",
        "_response",
        "reusable",
    )

    def __init__(self, method: str, *, limit: int = MAX_RESPONSE_BYTES) -> None:
        self._method = method.upper()
        self._limit = limit
        self._buffer = bytearray()
        self._response: tuple[int, tuple[tuple[str, str], ...]] | None = None
        self._length: int | None = None  # Content-Length, once the head is read
        self._chunked = False
        self._body = BodyBuffer(limit)
        self.reusable = False

    def feed(self, data: bytes) -> Response | None:
        """Take the next bytes (``b""`` at the end); the response once it is whole."""
        ended = not data
        self._buffer += data
        if self._response is None and not self._head(ended):
            return None
        assert self._response is not None
        status, headers = self._response
        if self._chunked:
            body = self._chunks(ended)
        elif self._length is not None:
            body = self._sized(ended)
        else:  # the body ends with the connection
            self._body.add(bytes(self._buffer))
            self._buffer.clear()
            body = self._body.value() if ended else None
            self.reusable = False
        if body is None:
            return None
        if self._buffer:
            self.reusable = False  # bytes nobody asked for: do not trust this connection
        return Response(status=status, headers=headers, body=body)

    def _head(self, ended: bool) -> bool:
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end > MAX_HEAD_BYTES or (end < 0 and len(self._buffer) > MAX_HEAD_BYTES):
                raise _malformed(f"a response head over {MAX_HEAD_BYTES} bytes")
            if end < 0:
                if ended:
                    raise _malformed("the connection closed before the response began")
                return False
            lines = bytes(self._buffer[:end]).split(b"\r\n")
            del self._buffer[: end + 4]
            parsed = _status(lines[0])
            if parsed is None:
                raise _malformed(f"bad status line {lines[0][:80]!r}")
            minor, status = parsed
            if not 100 <= status < 200 or status == 101:
                break  # an interim answer (100 Continue) comes before the real one
        headers: list[tuple[str, str]] = []
        framing: dict[str, list[str]] = {}
        for raw in lines[1:]:
            name, sep, value = raw.partition(b":")
            if not sep or not name or name[-1:] in b" \t" or name[:1] in b" \t":
                raise _malformed(f"bad header line {raw[:80]!r}")
            pair = (name.decode("latin-1"), value.strip(b" \t").decode("latin-1"))
            headers.append(pair)
            lower = pair[0].lower()
            if lower in FRAMING_HEADERS:
                framing.setdefault(lower, []).append(pair[1])
        tokens = set(_tokens(framing, "connection"))
        self.reusable = "close" not in tokens if minor == 1 else "keep-alive" in tokens
        codings = _tokens(framing, "transfer-encoding")
        lengths = {v.strip() for v in framing.get("content-length", ())}
        if self._method == "HEAD" or status in (204, 304):
            self._length = 0
        elif codings:
            if codings[-1] != "chunked":
                raise _malformed(f"unsupported transfer coding {codings[-1]!r}")
            self._chunked = True
        elif lengths:
            declared = lengths.pop()
            if lengths or not declared.isdigit():
                raise _malformed(f"bad Content-Length {framing['content-length']!r}")
            self._length = int(declared)
            check_declared_size(self._length, self._limit)
        self._response = (status, tuple(headers))
        return True

    def _sized(self, ended: bool) -> bytes | None:
        assert self._length is not None
        if len(self._buffer) >= self._length:
            body = bytes(self._buffer[: self._length])
            del self._buffer[: self._length]
            return body
        if ended:
            raise _malformed("the connection closed before the response ended")
        return None

    def _chunks(self, ended: bool) -> bytes | None:
        """Take every whole chunk in the buffer; the body after the last one."""
        buffer = self._buffer
        while True:
            end = buffer.find(b"\r\n")
            if end < 0:
                break
            size = _chunk_size(bytes(buffer[:end]))
            if size is None:
                raise _malformed("a bad chunk size")
            if size == 0:
                trailers = buffer.find(b"\r\n\r\n", end)
                if buffer[end : end + 4] == b"\r\n\r\n":
                    del buffer[: end + 4]  # no trailers
                elif trailers >= 0:
                    del buffer[: trailers + 4]
                else:
                    break
                return self._body.value()
            if len(buffer) < end + 2 + size + 2:
                check_declared_size(size, self._limit)  # before waiting for all of it
                break
            if buffer[end + 2 + size : end + 4 + size] != b"\r\n":
                raise _malformed("a chunk not followed by CRLF")
            self._body.add(bytes(buffer[end + 2 : end + 2 + size]))
            del buffer[: end + 4 + size]
        if len(buffer) > MAX_HEAD_BYTES and buffer.find(b"\r\n") < 0:
            raise _malformed("a chunk-size line that does not end")
        if ended:
            raise _malformed("the connection closed before the response ended")
        return None
