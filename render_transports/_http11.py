"""What the two transports that frame HTTP/1.1 themselves share.

``render_transports.h11_transport`` (the task socket) and
``render_transports.keepalive_transport`` (REST on ``http.client``) write the
request head and body themselves and map socket errors from the phase an exchange
had reached; the framing rules and that mapping are written here once.
"""

from __future__ import annotations

from render_core.errors import (
    ConnectionFailed,
    ConnectTimeout,
    NetworkError,
    ReadTimeout,
    RenderError,
)

# Methods whose requests carry content by definition: an empty body is still framed
# with ``Content-Length: 0`` (RFC 9110 8.6), as requests and http.client do.
CONTENT_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Framing headers the transport owns; the request's own values are replaced.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

CONNECTING, WRITING, READING = "connecting", "writing", "reading"


class Progress:
    """How far one exchange got; decides what a failure means."""

    __slots__ = ("phase",)

    def __init__(self, phase: str = CONNECTING) -> None:
        self.phase = phase


def timeout_error(progress: Progress, read_message: str) -> RenderError:
    """A deadline passed: a ReadTimeout once the request was written, else a ConnectTimeout."""
    if progress.phase == READING:
        return ReadTimeout(read_message)
    return ConnectTimeout(f"the request could not be sent in time ({progress.phase})")


def os_error(exc: OSError, progress: Progress) -> RenderError:
    """A socket error: ConnectionFailed while connecting (nothing was sent), else NetworkError."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if progress.phase == CONNECTING:
        return ConnectionFailed(f"could not connect: {reason}")
    return NetworkError(f"the connection failed while {progress.phase}: {reason}")
