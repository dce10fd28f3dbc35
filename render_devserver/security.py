"""Which requests the dev server's REST port answers at all (see ``docs/security.md``).

A server on 127.0.0.1 is reachable from every web page its developer opens, so
each request is checked before it has any effect, in this order:

1. **Host.** The ``Host`` header must name this server: a loopback name or address
   (``localhost``, ``127.0.0.1``, ``[::1]``), the address it was bound to, or a name
   given with ``--allowed-host``; with this server's port or none. Anything else is
   refused with 421: a page whose own name was re-pointed at 127.0.0.1 (DNS
   rebinding) sends its own name, never one of these.
2. **Origin.** A request that carries ``Origin`` (browsers add it to every
   cross-origin and every non-GET request) must come from this server's own
   dashboard, ``http://HOST:PORT`` for an accepted host; otherwise 403. Clients
   that send no ``Origin`` (the SDKs, curl) are not browsers acting for a page.
   ``Sec-Fetch-Site: cross-site`` / ``same-site`` on anything but a navigation is
   refused the same way.
3. **Body type.** A request with a body (and every POST, PUT, PATCH) must send
   ``Content-Type: application/json``; the types a page may send without asking
   first (``text/plain``, forms, multipart) get 415.

:class:`RequestPolicy` decides; the aiohttp layer (``api.py``) only asks it. The
module knows nothing of HTTP libraries, so the decisions are tested as plain data.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

import attrs

__all__ = [
    "DEFAULT_ALLOWED_HOSTS",
    "AllowedHost",
    "Refusal",
    "RequestPolicy",
    "parse_allowed_host",
    "parse_authority",
]

# The names every loopback client uses; ``::1`` appears as ``[::1]`` in a Host.
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "::1")
# Binding to these means "every address": they are not names a client sends.
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})
# Methods whose purpose is to send a body; JSON is the only body the API reads.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_JSON = "application/json"
# How much of a refused header value is quoted back.
_QUOTE_LIMIT = 100


@attrs.frozen
class AllowedHost:
    """A name the server answers to; ``port`` None means "this server's port, or none"."""

    name: str
    port: int | None = None

    def __str__(self) -> str:
        name = f"[{self.name}]" if ":" in self.name else self.name
        return name if self.port is None else f"{name}:{self.port}"


@attrs.frozen
class Refusal:
    """Why a request is refused: the status and the message of the JSON error."""

    status: int
    message: str


def _normal_name(name: str) -> str:
    name = name.lower()
    try:
        return str(ipaddress.ip_address(name))  # one spelling per address
    except ValueError:
        return name


def _port(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        return None
    value = int(text)
    return value if 0 < value < 65536 else None


def parse_authority(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` (``[v6]`` in brackets) -> ``(name, port)``, or None if malformed.

    The name comes back lower-case, addresses in their canonical spelling.
    """
    value = value.strip()
    if not value or not value.isascii() or any(c in value for c in "/\\@?# \t"):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        try:
            if ipaddress.ip_address(name).version != 6:
                return None
        except ValueError:
            return None
        if not rest:
            return _normal_name(name), None
        if not rest.startswith(":"):
            return None
        port = _port(rest[1:])
        return None if port is None else (_normal_name(name), port)
    if value.count(":") > 1:
        return None  # a bare IPv6 address: not a valid Host
    name, colon, port_text = value.partition(":")
    if not name:
        return None
    if not colon:
        return _normal_name(name), None
    port = _port(port_text)
    return None if port is None else (_normal_name(name), port)


def parse_allowed_host(value: str) -> AllowedHost:
    """An ``--allowed-host`` value: ``NAME``, ``NAME:PORT``, ``ADDRESS`` or ``[V6]:PORT``.

    Raises :class:`ValueError` naming the problem.
    """
    text = value.strip()
    if "://" in text:
        raise ValueError(f"--allowed-host takes a host name, not a URL: {value!r}")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        parsed = parse_authority(text)
    else:
        parsed = (_normal_name(text), None)  # a bare IPv6 address is fine here
    if parsed is None:
        raise ValueError(f"--allowed-host: not a host name or address: {value!r}")
    name, port = parsed
    if name in _WILDCARD_BINDS or name == "*":
        raise ValueError(f"--allowed-host: {value!r} is not a name a client can send")
    return AllowedHost(name, port)


def _quote(value: str) -> str:
    shown = value if len(value) <= _QUOTE_LIMIT else value[:_QUOTE_LIMIT] + "..."
    return repr(shown)


_ALLOWED_HOSTS_KEPT = 16


class RequestPolicy:
    """The Host, Origin and body-type rules of the REST port (module docstring).

    ``port`` is the port the server listens on; set it once the socket is bound
    (port 0 picks one then).
    """

    def __init__(
        self,
        allowed_hosts: Iterable[str | AllowedHost] = (),
        *,
        bind_host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        hosts = [AllowedHost(_normal_name(name)) for name in DEFAULT_ALLOWED_HOSTS]
        bound = bind_host.strip("[]")
        if bound not in _WILDCARD_BINDS:
            hosts.append(AllowedHost(_normal_name(bound)))  # the name it was told to use
        for item in allowed_hosts:
            hosts.append(item if isinstance(item, AllowedHost) else parse_allowed_host(item))
        self.allowed: tuple[AllowedHost, ...] = tuple(dict.fromkeys(hosts))
        self.port = port
        # Host values found allowed, with the port they were checked against: every
        # request sends one, nearly always the same. Only allowed ones are kept, a
        # bounded few, so a client sending many different values cannot grow it.
        self._allowed_host_values: dict[str, int] = {}

    def _matches(self, name: str, port: int | None, *, implied_port: int | None) -> bool:
        effective = port if port is not None else implied_port
        for host in self.allowed:
            wanted = host.port if host.port is not None else self.port
            if host.name == name and (effective is None or effective == wanted):
                return True
        return False

    def host_allowed(self, value: str) -> bool:
        """Whether a ``Host`` header names this server."""
        if self._allowed_host_values.get(value) == self.port:
            return True
        parsed = parse_authority(value)
        allowed = parsed is not None and self._matches(*parsed, implied_port=None)
        if allowed and len(self._allowed_host_values) < _ALLOWED_HOSTS_KEPT:
            self._allowed_host_values[value] = self.port
        return allowed

    def origin_allowed(self, value: str) -> bool:
        """Whether an ``Origin`` is this server's dashboard (``http://HOST[:PORT]``)."""
        scheme, sep, authority = value.strip().partition("://")
        if not sep or scheme.lower() != "http":
            return False
        parsed = parse_authority(authority)
        # An origin without a port is port 80, not "whatever port this is".
        return parsed is not None and self._matches(*parsed, implied_port=80)

    @property
    def own_origin(self) -> str:
        """The dashboard's origin as most people open it."""
        return f"http://127.0.0.1:{self.port}"

    def check(
        self,
        *,
        method: str,
        target: str,
        headers: Mapping[str, str],
        host_values: Sequence[str],
        has_body: bool,
        routed: bool,
    ) -> Refusal | None:
        """The refusal for a request, or None to let it through.

        ``host_values`` are every ``Host`` header sent; ``routed`` says whether the
        path and method name an endpoint (the body rule only applies then, so an
        unknown path still gets its 404 and a wrong method its 405).
        """
        if len(host_values) != 1:
            return Refusal(400, "exactly one Host header is required")
        host = host_values[0]
        if not self.host_allowed(host):
            names = ", ".join(str(h) for h in self.allowed)
            return Refusal(
                421,
                f"Host {_quote(host)} is not a name this server answers to "
                f"(it answers to {names}; add names with --allowed-host)",
            )
        if not target.startswith("/"):
            return Refusal(400, "the request target must be a path (this server is no proxy)")
        origin = headers.get("Origin")
        if origin is not None and not self.origin_allowed(origin):
            return Refusal(
                403,
                f"cross-origin request refused: Origin {_quote(origin)} is not this "
                f"server's dashboard ({self.own_origin})",
            )
        site = headers.get("Sec-Fetch-Site", "").strip().lower()
        if site in ("cross-site", "same-site"):
            navigation = headers.get("Sec-Fetch-Mode", "").strip().lower() == "navigate"
            if not (navigation and method in ("GET", "HEAD")):
                return Refusal(403, f"cross-site request refused (Sec-Fetch-Site: {site})")
        if routed and (has_body or method in _BODY_METHODS):
            given = headers.get("Content-Type", "")
            if given.split(";", 1)[0].strip().lower() != _JSON:
                return Refusal(
                    415,
                    f"Content-Type must be {_JSON}, got {_quote(given) if given else 'none'}",
                )
        return None
