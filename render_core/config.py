"""Client configuration: token, base URL and local-dev mode, resolved once.

Inputs are the constructor arguments and an environment *mapping* (the caller
passes ``os.environ``; tests pass a dict). Output is a frozen
:class:`ClientConfig`. The rules follow the official client's, with its
traps fixed (an environment variable overriding an explicit ``base_url``, a
scheme-less local URL becoming ``https://``, a token required in local-dev mode):

1. An explicit ``base_url`` argument wins over every environment variable.
2. Else ``RENDER_LOCAL_DEV_URL`` if non-empty, else ``RENDER_USE_LOCAL_DEV``
   truthy (``1``, ``t``, ``true``, ``y``, ``yes``, ``on``, in any case) gives
   ``http://localhost:8120``, else ``https://api.render.com``.
3. A URL without a scheme gets ``http://`` for loopback hosts and ``https://``
   otherwise; a trailing ``/`` or ``/v1`` is dropped (paths are added per call).
4. Local-dev mode (either variable set, or a loopback base URL) needs no token;
   otherwise a missing token is a :class:`ConfigurationError` raised when the
   client is built, never at import.
5. A token is never sent in clear text (``http://``) to a non-loopback host
   unless the caller opts in with ``allow_insecure_http=True`` or a truthy
   ``RENDER_ALLOW_INSECURE_HTTP`` (for a trusted network only).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from render_core import __version__
from render_core.errors import ConfigurationError
from render_core.values import Value, init_fields

if TYPE_CHECKING:
    from urllib.parse import SplitResult

# ``ipaddress`` and ``urllib.parse`` are imported where they are used: a worker's
# cold start reads only ``user_agent`` from this module.

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LOCAL_DEV_URL",
    "ClientConfig",
    "Timeouts",
    "is_loopback_host",
    "resolve_config",
    "user_agent",
]

DEFAULT_BASE_URL = "https://api.render.com"
# The official dev server's default port; ours listens there too.
DEFAULT_LOCAL_DEV_URL = "http://localhost:8120"

ENV_API_KEY = "RENDER_API_KEY"
ENV_USE_LOCAL_DEV = "RENDER_USE_LOCAL_DEV"
ENV_LOCAL_DEV_URL = "RENDER_LOCAL_DEV_URL"
ENV_ALLOW_INSECURE_HTTP = "RENDER_ALLOW_INSECURE_HTTP"

_TRUTHY = frozenset({"1", "t", "true", "y", "yes", "on"})


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUTHY


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``*.localhost``, 127.0.0.0/8 and ``::1``."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def user_agent(
    version: str = __version__,
    *,
    implementation: str | None = None,
    python_version: str | None = None,
    system: str | None = None,
    machine: str | None = None,
) -> str:
    """``render-sdk-python/<version> (<impl>/<pyver>; <os>/<arch>)``, lower-case.

    Read from ``sys`` and ``os.uname()`` (what ``platform`` reports on POSIX, without
    importing it: this runs on every worker's cold start); ``platform`` elsewhere.
    """
    impl = implementation or sys.implementation.name
    pyver = python_version or sys.version.split()[0]
    uname = getattr(os, "uname", None)
    if uname is None:  # pragma: no cover - Windows
        import platform

        system_name = system or platform.system() or sys.platform
        arch = machine or platform.machine() or "unknown"
    else:
        host = uname()
        system_name = system or host.sysname or sys.platform
        arch = machine or host.machine or "unknown"
    platform_part = f"{impl.lower()}/{pyver}; {system_name.lower()}/{arch.lower()}"
    return f"render-sdk-python/{version} ({platform_part})"


def _positive(name: str, value: float) -> float:
    if not value > 0:
        raise ConfigurationError(f"timeout {name} must be a positive number, got {value!r}")
    return value


_user_agent = user_agent  # the default of ClientConfig.user_agent (a field of that name)


# How much longer than ``stream_idle`` a stream's socket waits, at most.
_STREAM_READ_SLACK = 5.0


class Timeouts(Value):
    """Every network wait has a limit (the official client has none).

    ``connect``: establishing a connection; ``read``: the longest silence while a
    REST response is being received; ``stream_idle``: the longest silence on an
    event stream before it is treated as dead and reopened (longer than the 25 s
    keep-alive servers send).
    """

    __slots__ = ("connect", "read", "stream_idle")
    connect: float
    read: float
    stream_idle: float

    def __init__(
        self, *, connect: float = 10.0, read: float = 60.0, stream_idle: float = 60.0
    ) -> None:
        init_fields(
            self,
            connect=_positive("connect", connect),
            read=_positive("read", read),
            stream_idle=_positive("stream_idle", stream_idle),
        )

    @property
    def stream_read(self) -> float:
        """The socket read timeout a transport sets on an event stream: a little over
        ``stream_idle`` (a quarter more, 5 s at most). The waiter's own idle timer
        then fires first when another thread reads the stream, and a stream read by
        the waiting thread itself is still given up soon after ``stream_idle``."""
        return self.stream_idle + min(_STREAM_READ_SLACK, self.stream_idle / 4)


class ClientConfig(Value):
    """Everything a request builder needs to know about the client.

    ``base_url`` has a scheme, no trailing ``/`` and no ``/v1``; ``api_url`` is
    ``base_url + "/v1"``. ``token`` is None when requests go unauthenticated
    (local-dev mode); it is never shown by ``repr``.
    """

    __slots__ = ("base_url", "token", "local_dev", "user_agent")  # noqa: RUF023 - repr order
    base_url: str
    token: str | None
    local_dev: bool
    user_agent: str

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None = None,
        local_dev: bool = False,
        user_agent: str | None = None,
    ) -> None:
        init_fields(
            self,
            base_url=base_url,
            token=token,
            local_dev=local_dev,
            user_agent=_user_agent() if user_agent is None else user_agent,
        )

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__slots__ if name != "token"
        )
        return f"ClientConfig({shown})"

    @property
    def api_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def has_token(self) -> bool:
        return bool(self.token)


def _split(url: str, source: str) -> SplitResult:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL" and friends
        raise ConfigurationError(f"{source} is not a valid URL: {exc}") from None


def _normalize_url(raw: str, source: str) -> str:
    if not isinstance(raw, str):
        raise ConfigurationError(f"{source} must be a str, got {type(raw).__name__}")
    url = raw.strip()
    if not url:
        raise ConfigurationError(f"{source} is empty")
    if "://" not in url:
        host = _split("//" + url, source).hostname or ""
        url = ("http://" if is_loopback_host(host) else "https://") + url
    parts = _split(url, source)
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(
            f"{source} must be an http:// or https:// URL, got scheme {parts.scheme!r}"
        )
    # Checked before any message that quotes the URL, so a password never leaks.
    if "@" in parts.netloc:
        raise ConfigurationError(f"{source} must not embed credentials; pass token= instead")
    if not parts.hostname:
        raise ConfigurationError(f"{source} has no host: {raw!r}")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{source} must not have a query or fragment: {raw!r}")
    try:
        parts.port  # noqa: B018 - validates the port number
    except ValueError:
        raise ConfigurationError(f"{source} has an invalid port: {raw!r}") from None
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return f"{parts.scheme}://{parts.netloc}{path}"


def resolve_config(
    *,
    token: str | None = None,
    base_url: str | None = None,
    env: Mapping[str, str] | None = None,
    allow_insecure_http: bool = False,
    user_agent_string: str | None = None,
) -> ClientConfig:
    """Resolve the configuration from arguments and ``env`` (see the module docstring).

    Raises :class:`ConfigurationError` for a missing token outside local-dev mode,
    a malformed URL, or a token that would travel in clear text.
    """
    env = {} if env is None else env
    local_url = (env.get(ENV_LOCAL_DEV_URL) or "").strip()
    use_local = _truthy(env.get(ENV_USE_LOCAL_DEV))
    if base_url is not None:
        url = _normalize_url(base_url, "base_url")
    elif local_url:
        url = _normalize_url(local_url, ENV_LOCAL_DEV_URL)
    elif use_local:
        url = DEFAULT_LOCAL_DEV_URL
    else:
        url = DEFAULT_BASE_URL
    parts = _split(url, "the base URL")
    loopback = is_loopback_host(parts.hostname or "")
    local_dev = loopback or (base_url is None and bool(local_url or use_local))

    if token is not None and not isinstance(token, str):
        raise ConfigurationError(f"token must be a str, got {type(token).__name__}")
    # An empty explicit token falls back to the environment, as in the official client.
    resolved_token = (token or "").strip() or env.get(ENV_API_KEY, "").strip() or None
    if resolved_token is not None and any(ch in resolved_token for ch in "\r\n\x00"):
        raise ConfigurationError("the API token contains a line break or NUL; check how it is set")
    if resolved_token is None and not local_dev:
        raise ConfigurationError(
            "no API token: pass token=... or set RENDER_API_KEY "
            "(for the local dev server, set RENDER_USE_LOCAL_DEV=true or pass a localhost base_url)"
        )
    insecure_ok = allow_insecure_http or _truthy(env.get(ENV_ALLOW_INSECURE_HTTP))
    if resolved_token and parts.scheme == "http" and not loopback and not insecure_ok:
        raise ConfigurationError(
            f"refusing to send the API token over plain http to {parts.hostname}; "
            "use https, or pass allow_insecure_http=True (or set "
            f"{ENV_ALLOW_INSECURE_HTTP}=1) if this network is trusted"
        )
    return ClientConfig(
        base_url=url,
        token=resolved_token,
        local_dev=local_dev,
        user_agent=user_agent_string or user_agent(),
    )
