"""Values exchanged between the core and a transport.

The core builds a :class:`Request` (final URL, final headers, body bytes) and a
transport answers with a :class:`Response` for *any* status code. A transport
never interprets a status, never adds auth, never retries: those are protocol
decisions and live in the core. Headers are kept as an ordered tuple of pairs so
repeated headers survive; lookups are case-insensitive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from render_core.values import Value, init_fields

__all__ = ["Headers", "Request", "Response", "header_value", "normalize_headers", "redact_headers"]

Headers = tuple[tuple[str, str], ...]


def normalize_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Headers:
    """Turn a mapping or an iterable of pairs into the canonical tuple form."""
    if headers is None:
        return ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((str(name), str(value)) for name, value in items)


_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def redact_headers(headers: Headers) -> str:
    """``repr`` of headers with credentials masked, so a logged request leaks no token."""
    shown = tuple(
        (name, "<redacted>" if name.lower() in _SECRET_HEADERS else value)
        for name, value in headers
    )
    return repr(shown)


def header_value(headers: Headers, name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive), or None."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


class Request(Value):
    """An HTTP request, ready to be written on the wire (immutable).

    ``headers`` may be given as a mapping or pairs and is kept as a tuple of pairs;
    its ``repr`` masks credentials. ``stream`` marks a request whose response body
    must be read incrementally (Server-Sent Events) rather than buffered whole.
    """

    __slots__ = ("body", "headers", "method", "stream", "url")
    method: str
    url: str
    headers: Headers
    body: bytes
    stream: bool

    def __init__(
        self,
        *,
        method: str,
        url: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = (),
        body: bytes = b"",
        stream: bool = False,
    ) -> None:
        init_fields(
            self,
            method=method,
            url=url,
            headers=normalize_headers(headers),
            body=body,
            stream=stream,
        )

    def _show(self, name: str) -> str:
        return redact_headers(self.headers) if name == "headers" else super()._show(name)

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


class Response(Value):
    """An HTTP response as the transport received it, any status (immutable)."""

    __slots__ = ("body", "headers", "status")
    status: int
    headers: Headers
    body: bytes

    def __init__(
        self,
        *,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = (),
        body: bytes = b"",
    ) -> None:
        init_fields(self, status=status, headers=normalize_headers(headers), body=body)

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)
