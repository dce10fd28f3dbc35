"""The request policy of the REST port as plain data: Host, Origin and body type.

The real server is attacked with raw HTTP in tests/faults/test_hostile_and_security.py;
these tables pin each rule on its own.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import pytest

from render_devserver.security import (
    AllowedHost,
    RequestPolicy,
    parse_allowed_host,
    parse_authority,
)

PORT = 8120


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("localhost", ("localhost", None)),
        ("LocalHost:8120", ("localhost", 8120)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("[::1]", ("::1", None)),
        ("[::1]:8120", ("::1", 8120)),
        ("[0:0:0:0:0:0:0:1]:8120", ("::1", 8120)),  # one spelling per address
        ("devbox.lan:65535", ("devbox.lan", 65535)),
        ("", None),
        (":8120", None),
        ("::1", None),  # IPv6 without brackets is not a Host
        ("::1:8120", None),
        ("[::1", None),
        ("[127.0.0.1]:80", None),
        ("[::1]8120", None),
        ("localhost:0", None),
        ("localhost:65536", None),
        ("localhost:80x", None),
        ("localhost:", None),
        ("localhost:\uff18\uff10", None),  # non-ASCII digits
        ("evil.example/x", None),
        ("user@localhost", None),
        ("local host", None),
        ("l\u043ecalhost", None),  # a Cyrillic o
    ],
)
def test_parse_authority(value: str, parsed: tuple[str, int | None] | None) -> None:
    assert parse_authority(value) == parsed


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("devbox.lan", AllowedHost("devbox.lan")),
        ("DevBox.LAN:9000", AllowedHost("devbox.lan", 9000)),
        ("192.168.1.5", AllowedHost("192.168.1.5")),
        ("fd00::5", AllowedHost("fd00::5")),
        ("[fd00::5]:9000", AllowedHost("fd00::5", 9000)),
    ],
)
def test_allowed_host_values(value: str, allowed: AllowedHost) -> None:
    assert parse_allowed_host(value) == allowed


@pytest.mark.parametrize(
    "value", ["http://devbox.lan", "", "0.0.0.0", "::", "*", "devbox.lan:x", "a/b", "[::1"]
)
def test_allowed_host_values_refused(value: str) -> None:
    with pytest.raises(ValueError, match="allowed-host"):
        parse_allowed_host(value)


def policy(*allowed: str, bind_host: str = "127.0.0.1", port: int = PORT) -> RequestPolicy:
    return RequestPolicy(allowed, bind_host=bind_host, port=port)


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8120", True),
        ("localhost:8120", True),
        ("LOCALHOST:8120", True),
        ("[::1]:8120", True),
        ("127.0.0.1", True),  # no port: fine
        ("localhost", True),
        ("127.0.0.1:8121", False),  # another port
        ("evil.example:8120", False),  # DNS rebinding
        ("evil.example", False),
        ("localhost.evil.example:8120", False),
        ("sub.localhost:8120", False),
        ("127.0.0.2:8120", False),
        ("0.0.0.0:8120", False),
        ("", False),
    ],
)
def test_default_hosts_are_the_loopback_names(host: str, ok: bool) -> None:
    assert policy().host_allowed(host) is ok


def test_a_host_value_found_allowed_is_checked_again_when_the_port_changes() -> None:
    checked = policy()
    assert checked.host_allowed("127.0.0.1:8120")
    assert checked.host_allowed("127.0.0.1:8120")  # from what was kept
    checked.port = 9999  # bound again elsewhere
    assert not checked.host_allowed("127.0.0.1:8120")
    assert checked.host_allowed("127.0.0.1:9999")


def test_many_different_host_values_keep_a_bounded_few() -> None:
    checked = policy()
    spellings = []
    for n in range(200):
        bits = f"{n:09b}"  # which letters of "localhost" to write in capitals
        spellings.append(
            "".join(c.upper() if b == "1" else c for c, b in zip("localhost", bits, strict=True))
        )
    for value in spellings:
        assert checked.host_allowed(f"{value}:8120")
        assert not checked.host_allowed(f"{value}.evil.example:8120")
    assert len(checked._allowed_host_values) <= 16


def test_the_bound_address_and_allowed_hosts_are_accepted() -> None:
    lan = policy("devbox.lan", "proxy.test:9000", bind_host="192.168.1.5")
    assert lan.host_allowed("192.168.1.5:8120")
    assert lan.host_allowed("devbox.lan:8120")
    assert lan.host_allowed("DEVBOX.lan")
    assert lan.host_allowed("proxy.test:9000")  # a published port (a container)
    assert not lan.host_allowed("proxy.test:8120")
    assert not lan.host_allowed("devbox.lan:9000")
    assert lan.host_allowed("localhost:8120")  # loopback names always work
    everywhere = policy(bind_host="0.0.0.0")
    assert not everywhere.host_allowed("0.0.0.0:8120")
    assert not everywhere.host_allowed("192.168.1.5:8120")
    assert [str(h) for h in policy(bind_host="::").allowed] == [
        "localhost",
        "127.0.0.1",
        "[::1]",
    ]


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("http://127.0.0.1:8120", True),
        ("http://localhost:8120", True),
        ("http://[::1]:8120", True),
        ("HTTP://LOCALHOST:8120", True),
        ("http://localhost", False),  # port 80, another server
        ("http://localhost:3000", False),  # another local page
        ("https://localhost:8120", False),
        ("http://evil.example:8120", False),
        ("https://evil.example", False),
        ("null", False),
        ("", False),
        ("http://localhost:8120/", False),
        ("http://localhost:8120/path", False),
        ("localhost:8120", False),
    ],
)
def test_only_the_dashboards_own_origin(origin: str, ok: bool) -> None:
    assert policy().origin_allowed(origin) is ok


def test_an_origin_on_port_80_when_the_server_is_there() -> None:
    assert policy(port=80).origin_allowed("http://localhost")
    assert policy("proxy.test:9000").origin_allowed("http://proxy.test:9000")


def check(
    *,
    method: str = "GET",
    target: str = "/v1/task-runs",
    host: str | None = "127.0.0.1:8120",
    has_body: bool = False,
    routed: bool = True,
    **headers: str,
) -> tuple[int, str] | None:
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    refusal = policy().check(
        method=method,
        target=target,
        headers=named,
        host_values=[] if host is None else [host],
        has_body=has_body,
        routed=routed,
    )
    return None if refusal is None else (refusal.status, refusal.message)


JSON = "application/json"


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({}, None),
        ({"method": "POST", "has_body": True, "Content_Type": JSON}, None),
        (
            {"method": "POST", "has_body": True, "Content_Type": "application/json; charset=utf-8"},
            None,
        ),
        ({"method": "POST", "has_body": True, "Content_Type": "Application/JSON"}, None),
        (
            {
                "method": "POST",
                "has_body": True,
                "Origin": "http://localhost:8120",
                "Content_Type": JSON,
            },
            None,
        ),
        ({"method": "DELETE", "Origin": "http://127.0.0.1:8120"}, None),
        ({"Sec_Fetch_Site": "same-origin"}, None),
        ({"Sec_Fetch_Site": "none"}, None),
        ({"Sec_Fetch_Site": "cross-site", "Sec_Fetch_Mode": "navigate"}, None),
        ({"host": None}, 400),
        ({"host": "evil.example:8120"}, 421),
        ({"target": "http://evil.example/v1/task-runs"}, 400),
        ({"method": "POST", "has_body": True, "Content_Type": "text/plain"}, 415),
        (
            {
                "method": "POST",
                "has_body": True,
                "Content_Type": "application/x-www-form-urlencoded",
            },
            415,
        ),
        (
            {"method": "POST", "has_body": True, "Content_Type": "multipart/form-data; boundary=x"},
            415,
        ),
        ({"method": "POST", "has_body": True, "Content_Type": "application/jsonx"}, 415),
        ({"method": "POST", "has_body": True}, 415),  # a Blob body has no type
        ({"method": "POST"}, 415),
        ({"method": "DELETE", "has_body": True, "Content_Type": "text/plain"}, 415),
        (
            {
                "method": "POST",
                "has_body": True,
                "Origin": "https://evil.example",
                "Content_Type": JSON,
            },
            403,
        ),
        ({"method": "DELETE", "Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Sec_Fetch_Site": "cross-site"}, 403),
        ({"Sec_Fetch_Site": "same-site", "Sec_Fetch_Mode": "cors"}, 403),
        ({"method": "POST", "Sec_Fetch_Site": "cross-site", "Sec_Fetch_Mode": "navigate"}, 403),
        ({"method": "PUT", "routed": False}, None),  # the router answers 405 itself
    ],
)
def test_check(kwargs: dict[str, object], status: int | None) -> None:
    refusal = check(**kwargs)  # type: ignore[arg-type]
    assert (None if refusal is None else refusal[0]) == status, refusal
    if refusal is not None:
        assert refusal[1]


def test_the_host_is_checked_before_anything_else() -> None:
    refusal = check(host="evil.example", method="POST", has_body=True, Origin="https://x")
    assert refusal is not None
    assert refusal[0] == 421
    assert "--allowed-host" in refusal[1]
    assert check(host="a" * 5000) is not None  # quoted back, but not whole
    long = check(host="a" * 5000)
    assert long is not None
    assert len(long[1]) < 400


def test_attempt_sockets_go_to_a_private_runtime_directory() -> None:
    from render_devserver.scheduler import socket_parent

    # Short, as runtime directories are (a long one is not used: socket paths are short).
    runtime = pathlib.Path(tempfile.mkdtemp(dir="/tmp" if os.path.isdir("/tmp") else None))
    assert socket_parent({"XDG_RUNTIME_DIR": str(runtime)}) == str(runtime)
    runtime.chmod(0o770)  # others could reach it: not used
    assert socket_parent({"XDG_RUNTIME_DIR": str(runtime)}) != str(runtime)
    assert socket_parent({"XDG_RUNTIME_DIR": "relative/run"}) in ("/dev/shm", "/tmp", None)
    fallback = socket_parent({})
    assert fallback in ("/dev/shm", "/tmp", None)
    if fallback is not None:
        assert os.access(fallback, os.W_OK | os.X_OK)
    long = runtime / ("x" * 60)
    long.mkdir(mode=0o700)
    assert socket_parent({"XDG_RUNTIME_DIR": str(long)}) != str(long)
    shutil.rmtree(runtime)
