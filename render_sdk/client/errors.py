"""The SDK's exceptions at their documented path (``render_sdk.client.errors``)."""

from render_core.errors import (
    ClientError,
    ConfigurationError,
    ConnectionFailed,
    ConnectTimeout,
    NetworkError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    ReadTimeout,
    RenderError,
    ServerError,
    TaskRunError,
    TimeoutError,
    UnexpectedResponseError,
    ValidationError,
)

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
