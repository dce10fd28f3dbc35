"""The exception hierarchy of the SDK, and nothing else.

Every failure the SDK can report is one of these classes. The documented roots
(``RenderError``, ``ClientError``, ``RateLimitError``, ``ServerError``,
``TimeoutError``, ``TaskRunError``; see the reference docs)
keep their official names and parents, so code written against the official SDK
catches the same things. Finer subclasses carry machine-readable attributes:

- ``status``: the HTTP status code, when a response was received;
- ``request_id``: the server's error id (``Error.id``) or ``X-Request-Id`` header;
- ``operation``: the SDK operation that failed (``"get task run"``...);
- ``retry_after``: seconds the server asked us to wait (rate limits).

``str(exc)`` is always a sentence a human can act on: it names the operation and
the server's own message. No exception here ever holds an API token.

Transport adapters raise only :class:`NetworkError` (the connection failed) and
:class:`TimeoutError` subclasses; ``request_sent`` tells the retry logic whether
the request may have reached the server (a POST is only retried when it did not).
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from render_core.models import TaskRunDetails

__all__ = [
    "ClientError",
    "ConfigurationError",
    "ConnectTimeout",
    "ConnectionFailed",
    "NetworkError",
    "NotFoundError",
    "ProtocolError",
    "RateLimitError",
    "ReadTimeout",
    "RenderError",
    "ServerError",
    "TaskRunError",
    "TimeoutError",
    "UnexpectedResponseError",
    "ValidationError",
]


def _describe(
    operation: str | None,
    message: str,
    status: int | None,
    request_id: str | None,
) -> str:
    text = f"{operation} failed: {message}" if operation else message
    extras = []
    if status is not None:
        extras.append(f"HTTP {status}")
    if request_id:
        extras.append(f"ID: {request_id}")
    if extras:
        text = f"{text} ({', '.join(extras)})"
    return text


class RenderError(Exception):
    """Base class of every exception the SDK raises.

    ``message`` is the bare reason (usually the server's message); ``str()``
    prefixes the operation and appends the status and request id.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message
        self.operation = operation
        self.status = status
        self.request_id = request_id
        super().__init__(_describe(operation, message, status, request_id))

    def _state(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "status": self.status,
            "request_id": self.request_id,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor arguments would otherwise be lost on pickling
        # (multiprocessing, concurrent.futures).
        return (_rebuild, (type(self), self.message, self._state()))


def _rebuild(cls: type[RenderError], message: str, state: dict[str, Any]) -> RenderError:
    return cls(message, **state)


class ClientError(RenderError):
    """The request was rejected as invalid (HTTP 4xx), or never sent because it was."""


class ValidationError(ClientError, builtins.ValueError):
    """An argument was rejected before any request was sent.

    Also a ``ValueError``, so code that validates input the Pythonic way catches it.
    """


class ConfigurationError(ClientError, builtins.ValueError):
    """The client cannot be configured: no token, an unsafe URL, a bad setting."""


class NotFoundError(ClientError):
    """HTTP 404: the task, task run or route does not exist."""


class RateLimitError(ClientError):
    """HTTP 429. ``retry_after`` is the wait the server asked for, in seconds, if any."""

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        status: int | None = 429,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, operation=operation, status=status, request_id=request_id)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "retry_after": self.retry_after}


class ServerError(RenderError):
    """HTTP 5xx, or the connection to the server failed."""


class NetworkError(ServerError):
    """The connection failed (refused, reset, closed early, DNS, TLS).

    ``request_sent`` is False only when the request provably never left this
    process (for example, the TCP connection was refused); a non-idempotent call
    is retried only then.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        request_sent: bool = True,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.request_sent = request_sent
        super().__init__(message, operation=operation, status=status, request_id=request_id)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "request_sent": self.request_sent}


class ConnectionFailed(NetworkError):
    """The connection could not be established; the request was never sent."""

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        request_sent: bool = False,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            operation=operation,
            request_sent=request_sent,
            status=status,
            request_id=request_id,
        )


class TimeoutError(RenderError, builtins.TimeoutError):
    """A request, a stream or a wait took longer than allowed.

    Also the builtin ``TimeoutError``, so ``except TimeoutError`` catches it whichever
    name is in scope.
    """

    request_sent = True


class ConnectTimeout(TimeoutError):
    """Connecting took too long; the request was never sent."""

    request_sent = False


class ReadTimeout(TimeoutError):
    """The server accepted the request but sent nothing for too long."""


class UnexpectedResponseError(RenderError):
    """The server answered something the protocol does not allow.

    A redirect, an undocumented success status, a body that is not the documented
    JSON shape: the request may or may not have had an effect.
    """


class ProtocolError(RenderError):
    """A stream broke the framing rules (for example an event line over the size limit)."""


class TaskRunError(RenderError):
    """A task run ended without success (``failed`` or ``canceled``).

    ``details`` holds the run's final :class:`~render_core.models.TaskRunDetails`
    when known; ``task_run_id`` always names the run. ``str()`` is the run's error
    message as the task reported it.
    """

    def __init__(
        self,
        message: str,
        *,
        details: TaskRunDetails | None = None,
        task_run_id: str | None = None,
        operation: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.details = details
        self.task_run_id = (
            task_run_id
            if task_run_id is not None
            else (details.id if details is not None else None)
        )
        super().__init__(message, operation=operation, status=status, request_id=request_id)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "details": self.details, "task_run_id": self.task_run_id}


def with_operation(exc: RenderError, operation: str) -> RenderError:
    """A copy of a transport error that names ``operation`` in its message."""
    if exc.operation is not None:
        return exc
    state = exc._state()
    state["operation"] = operation
    return type(exc)(exc.message, **state)
