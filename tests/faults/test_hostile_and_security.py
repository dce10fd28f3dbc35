"""Hostile input on the REST port and the task sockets; the security properties.

The dev server answers every client mistake with a 4xx JSON ``{"message": ...}`` and
keeps serving; no request path reaches the file system; task sockets are private
(0600 in a 0700 directory) and each answers only for its own run. Clients keep the
token out of every ``repr``, message and log line, never send it in clear text to
another host without an opt-in, and verify TLS certificates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pathlib
import random
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import requests

from render_core.config import resolve_config
from render_core.errors import ConfigurationError, NetworkError, RenderError
from render_devserver.cli import _parser
from render_devserver.server import DevServer
from render_sdk import Render, RenderAsync
from tests.faults.support import DevServerProcess, address_of, clean_env, wait_until
from tests.support.fake_render import FakeRender

HERE = pathlib.Path(__file__).resolve().parent
SENTINEL = "rnd_SENTINEL-3f9c2a7b-never-show-me"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("probe")
    shutil.copy(HERE / "probe_worker.py", directory / "worker.py")
    return directory


@pytest.fixture(scope="module")
def server(project: pathlib.Path) -> Iterator[DevServer]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    dev = DevServer(
        [sys.executable, "-S", "worker.py"],
        port=0,
        cwd=str(project),
        env=env,
        db=":memory:",
        workflow_slug="wf",
    )
    with dev.run_in_thread() as running:
        yield running


def _is_json_error(answer: requests.Response, status: int) -> bool:
    return (
        answer.status_code == status
        and answer.headers["Content-Type"].startswith("application/json")
        and isinstance(answer.json()["message"], str)
    )


JSON = {"Content-Type": "application/json"}
HOSTILE: list[tuple[str, str, dict[str, Any], int]] = [
    ("POST", "/v1/task-runs", {"data": b"{not json", "headers": JSON}, 400),
    ("POST", "/v1/task-runs", {"data": b"\xff\xfe\x00", "headers": JSON}, 400),
    ("POST", "/v1/task-runs", {"json": [1, 2]}, 400),
    ("POST", "/v1/task-runs", {"json": {"task": 5, "input": []}}, 400),
    ("POST", "/v1/task-runs", {"json": {"task": "wf/noop", "input": 5}}, 400),
    ("POST", "/v1/task-runs", {"json": {"task": "wf/nope", "input": []}}, 404),
    ("POST", "/v1/task-runs", {"data": b"x" * (17 * 1024 * 1024), "headers": JSON}, 413),
    ("GET", "/v1/task-runs?limit=abc", {}, 400),
    ("GET", "/v1/task-runs?limit=-1", {}, 400),
    ("GET", "/v1/task-runs/events", {}, 400),
    ("GET", "/v1/logs?startTime=yesterday", {}, 400),
    ("PUT", "/v1/task-runs", {}, 405),
    ("PATCH", "/v1/tasks/x", {}, 405),
    ("GET", "/v2/everything", {}, 404),
    ("GET", "/v1/task-runs/..%2F..%2Fetc%2Fpasswd", {}, 404),
    ("GET", "/v1/tasks/..%2F..%2Fetc%2Fpasswd", {}, 404),
    ("GET", "/dashboard/..%2F..%2F..%2Fetc%2Fpasswd", {}, 404),
    ("GET", "/dashboard/%2e%2e/server.py", {}, 404),
    ("GET", "/dashboard/__init__.py", {}, 404),
]


@pytest.mark.parametrize(("method", "path", "options", "status"), HOSTILE)
def test_rest_port_answers_hostile_requests_with_4xx_json(
    server: DevServer, method: str, path: str, options: dict[str, Any], status: int
) -> None:
    answer = requests.request(method, server.url + path, timeout=30, **options)
    assert _is_json_error(answer, status), (answer.status_code, answer.text[:200])
    assert b"root:" not in answer.content
    # ...and the server keeps serving.
    assert requests.get(server.url + "/v1/tasks", timeout=10).status_code == 200


def test_slow_and_broken_clients_do_not_hold_the_server_up(server: DevServer) -> None:
    port = server.port
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(b"POST /v1/task-runs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        with socket.create_connection(("127.0.0.1", port)) as garbage:
            garbage.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
            garbage.settimeout(10)
            # Not HTTP at all: refused by the HTTP parser itself, before any route.
            assert garbage.recv(100).split(b" ")[1] == b"400"
        started = time.monotonic()
        with Render(base_url=server.url) as render:
            assert render.workflows.run_task("wf/noop", [1], timeout=60).results == [1]
        assert time.monotonic() - started < 30
    finally:
        for sock in slow:
            sock.close()


def test_task_socket_refuses_hostile_and_misdirected_requests(server: DevServer) -> None:
    with Render(base_url=server.url) as render:
        other = render.workflows.run_task("wf/noop", [7], timeout=60)
        probe = render.workflows.run_task("wf/probe", [other.id], timeout=60)
    (seen,) = probe.results
    assert isinstance(seen, dict)
    assert seen["bad_json"] == [400, True]
    assert seen["wrong_types"] == [400, True]
    assert seen["unknown_path"] == [404, True]
    assert seen["wrong_method"] == [405, True]
    assert seen["register_on_run_socket"] == [409, True]
    assert seen["other_runs_result"] == [404, True]  # another run's result: not on this socket
    assert seen["not_http"][0] == 400
    assert seen["oversize"][0] == 413
    assert seen["socket_mode"] == "0o600"
    assert seen["dir_mode"] == "0o700"
    assert seen["api_key"] is None  # no token configured: none handed out


# -- dev server binding and its bearer token ------------------------------------------------


def test_loopback_is_the_default_binding() -> None:
    assert _parser().parse_args(["--", "x"]).host == "127.0.0.1"
    assert DevServer(["x"]).host == "127.0.0.1"


def test_bound_elsewhere_warns_and_the_token_guards_every_data_route(
    project: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    env = clean_env(RENDER_DEV_AUTH_TOKEN=SENTINEL)
    server = DevServerProcess(
        str(project),
        [sys.executable, "-S", "worker.py"],
        db=str(tmp_path / "dev.sqlite3"),
        args=["--host", "0.0.0.0", "--workflow-slug", "wf"],
        env=env,
    )
    try:
        url = server.url.replace("0.0.0.0", "127.0.0.1")
        for path in ("/v1/tasks", "/v1/task-runs", "/v1/task-runs/trn-x", "/v1/nope", "/dev/tasks"):
            answer = requests.get(url + path, timeout=10)
            assert _is_json_error(answer, 401), (path, answer.status_code)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            wrong = requests.get(url + path, headers={"Authorization": "Bearer nope"}, timeout=10)
            assert wrong.status_code == 401
        # The dashboard's static shell carries no data and needs no token.
        assert requests.get(url + "/", timeout=10).status_code == 200
        with Render(base_url=url) as anonymous, pytest.raises(RenderError) as caught:
            anonymous.workflows.list_tasks()
        assert caught.value.status == 401
        with Render(base_url=url, token=SENTINEL) as render:
            probe = render.workflows.run_task("wf/probe", ["trn-none"], timeout=60)
        (seen,) = probe.results
        assert isinstance(seen, dict)
        assert seen["api_key"] == SENTINEL  # tasks can call the API back
        assert seen["api_url"].startswith("http://127.0.0.1:")
    finally:
        server.stop()
    warning = "".join(server.errors)
    assert "warning: binding to 0.0.0.0" in warning
    assert SENTINEL not in warning + "".join(server.banner)


# -- clients and the token -----------------------------------------------------------------


def test_token_never_appears_in_repr_messages_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with FakeRender(token=SENTINEL) as fake:
        fake.add_task("square", lambda a: a * a)
        fake.fail_next(2, 503, method="GET")
        fake.fail_next(1, 429, method="GET", retry_after="0")
        with Render(base_url=fake.url, token=SENTINEL) as render:
            texts += [repr(render), str(render), repr(render._config), repr(render.workflows)]
            run = render.workflows.start_task("my-workflow/square", [3])
            texts.append(repr(render.workflows.wait_for_run(run.id, timeout=30)))
            for call in (
                lambda: render.workflows.get_task_run("trn-missing"),
                lambda: render.workflows.start_task("my-workflow/nope", []),
            ):
                with pytest.raises(RenderError) as caught:
                    call()
                texts += [str(caught.value), repr(caught.value), repr(caught.value.args)]
        with Render(base_url=fake.url, token="wrong-" + SENTINEL[::-1]) as render:
            with pytest.raises(RenderError) as caught:
                render.workflows.get_task_run(run.id)
            texts += [str(caught.value), repr(caught.value)]

        async def use_async() -> None:
            async with RenderAsync(base_url=fake.url, token=SENTINEL) as client:
                texts.append(repr(client))
                with pytest.raises(RenderError) as caught:
                    await client.workflows.get_task_run("trn-missing")
                texts.append(str(caught.value))

        asyncio.run(use_async())
    with pytest.raises(ConfigurationError) as refused:
        Render(base_url="http://render.example", token=SENTINEL)
    texts.append(str(refused.value))
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    assert caplog.records, "debug logging was captured"
    for text in texts:
        assert SENTINEL not in text
        assert SENTINEL[::-1] not in text


@pytest.mark.parametrize(
    "url", ["http://localhost:8120", "http://127.0.0.1:9", "http://[::1]:8120", "localhost:8120"]
)
def test_loopback_http_needs_no_opt_in(url: str) -> None:
    assert resolve_config(token=SENTINEL, base_url=url).token == SENTINEL


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8120", "http://render.example", "http://0.0.0.0:80"]
)
def test_plain_http_to_another_host_needs_an_opt_in(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Render(base_url=url, token=SENTINEL)
    assert "plain http" in str(caught.value)
    assert "allow_insecure_http" in str(caught.value)
    with pytest.raises(ConfigurationError):
        RenderAsync(base_url=url, token=SENTINEL)
    # Opt-in, by argument or environment; a token-less client has nothing to leak.
    Render(base_url=url, token=SENTINEL, allow_insecure_http=True).close()
    env = {"RENDER_ALLOW_INSECURE_HTTP": "1"}
    assert resolve_config(token=SENTINEL, base_url=url, env=env).token == SENTINEL
    with pytest.raises(ConfigurationError):
        resolve_config(token=SENTINEL, base_url=url, env={"RENDER_ALLOW_INSECURE_HTTP": "0"})
    with pytest.raises(ConfigurationError):
        resolve_config(env={"RENDER_API_KEY": SENTINEL, "RENDER_LOCAL_DEV_URL": url})


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate nobody trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
    assert hits == [], "no request got through an unverified TLS connection"


def test_tls_certificates_are_verified_by_default(tls_server: str) -> None:
    with Render(base_url=tls_server, token=SENTINEL) as render:
        with pytest.raises(NetworkError) as caught:
            render.workflows.get_task_run("trn-1")
        assert "certificate" in str(caught.value).lower()
        assert SENTINEL not in str(caught.value)

    async def use_async() -> None:
        async with RenderAsync(base_url=tls_server, token=SENTINEL) as client:
            await client.workflows.get_task_run("trn-1")

    with pytest.raises(NetworkError) as caught_async:
        asyncio.run(use_async())
    assert "certificate" in str(caught_async.value).lower()


# -- pages in the developer's browser: forged requests and DNS rebinding ------------------
#
# Requests are written byte by byte on a socket: an HTTP library would "fix" the Host
# or refuse a malformed request before it reached the server.


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_exchange(port: int, data: bytes) -> RawAnswer:
    """Send ``data`` and read the whole answer (the server closes after it).

    An answer still open after 20 s (an event stream that should never have been
    served) ends the read: what arrived by then is checked.
    """
    deadline = time.monotonic() + 20
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data)
        received = b""
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    answer = RawAnswer(int(lines[0].split(" ")[1]), headers, body)
    # Nothing ever grants another origin access to these answers.
    assert not [name for name in headers if name.startswith("access-control-")], headers
    return answer


def raw_request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    host: str | None = None,
) -> RawAnswer:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return raw_exchange(port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def is_json_refusal(answer: RawAnswer, status: int) -> bool:
    return (
        answer.status == status
        and answer.headers.get("content-type", "").startswith("application/json")
        and isinstance(answer.json()["message"], str)
    )


@pytest.fixture(scope="module")
def browser_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A dev server with the stdlib worker (its ``nap`` task keeps a run going)."""
    directory = tmp_path_factory.mktemp("browser")
    shutil.copy(HERE / "tiny_worker.py", directory / "worker.py")
    dev = DevServer(
        [sys.executable, "-S", "worker.py"],
        port=0,
        cwd=str(directory),
        env=clean_env(),
        db=":memory:",
        workflow_slug="wf",
    )
    with dev.run_in_thread() as running:
        yield running


def _run_count(server: DevServer) -> int:
    with Render(base_url=server.url) as render:
        return sum(1 for _ in render.workflows.iter_task_runs())


EVIL = "https://evil.example"
START = json.dumps({"task": "wf/noop", "input": [1]}).encode()
FORGED: dict[str, tuple[str, str, dict[str, str], bytes, int]] = {
    # A page POSTs without a preflight: "simple" content types, its own Origin.
    "csrf text/plain": (
        "POST",
        "/v1/task-runs",
        {"Origin": EVIL, "Content-Type": "text/plain"},
        START,
        403,
    ),
    "csrf json": (
        "POST",
        "/v1/task-runs",
        {"Origin": EVIL, "Content-Type": "application/json"},
        START,
        403,
    ),
    "csrf form": (
        "POST",
        "/v1/task-runs",
        {"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"},
        b"task=wf%2Fnoop",
        403,
    ),
    "csrf null origin": (
        "POST",
        "/v1/task-runs",
        {"Origin": "null", "Content-Type": "application/json"},
        START,
        403,
    ),
    "csrf other local page": (
        "POST",
        "/v1/task-runs",
        {"Origin": "http://localhost:3000", "Content-Type": "application/json"},
        START,
        403,
    ),
    "csrf same host, port 80": (
        "POST",
        "/v1/task-runs",
        {"Origin": "http://127.0.0.1", "Content-Type": "application/json"},
        START,
        403,
    ),
    "cross-site, no origin": (
        "POST",
        "/v1/task-runs",
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
        START,
        403,
    ),
    "text/plain body": ("POST", "/v1/task-runs", {"Content-Type": "text/plain"}, START, 415),
    "form body": (
        "POST",
        "/v1/task-runs",
        {"Content-Type": "application/x-www-form-urlencoded"},
        START,
        415,
    ),
    "multipart body": (
        "POST",
        "/v1/task-runs",
        {"Content-Type": "multipart/form-data; boundary=b"},
        b"--b\r\n\r\n" + START + b"\r\n--b--\r\n",
        415,
    ),
    "untyped body": ("POST", "/v1/task-runs", {}, START, 415),
    "preflight": (
        "OPTIONS",
        "/v1/task-runs",
        {"Origin": EVIL, "Access-Control-Request-Method": "POST"},
        b"",
        403,
    ),
    "events from a page": (
        "GET",
        "/v1/task-runs/events?taskRunIds=trn-x",
        {"Origin": EVIL},
        b"",
        403,
    ),
    "list from a page": ("GET", "/v1/task-runs", {"Origin": EVIL}, b"", 403),
}
REBOUND = [
    "/",
    "/dashboard/app.js",
    "/v1/task-runs",
    "/v1/tasks",
    "/v1/logs",
    "/dev/tasks",
    "/v1/task-runs/events?taskRunIds=trn-x",
    "/v1/task-runs/trn-x",
    "/v2/nothing",
]


@pytest.mark.parametrize("case", sorted(FORGED))
def test_forged_browser_requests_are_refused_and_start_nothing(
    browser_server: DevServer, case: str
) -> None:
    method, path, headers, body, status = FORGED[case]
    before = _run_count(browser_server)
    answer = raw_request(browser_server.port, method, path, headers, body)
    assert is_json_refusal(answer, status), (answer.status, answer.body[:300])
    assert _run_count(browser_server) == before


@pytest.mark.parametrize("path", REBOUND)
@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "evil.example", "127.0.0.1:1", "localhost.evil.example:{port}"]
)
def test_dns_rebinding_is_refused_on_every_route(
    browser_server: DevServer, path: str, host: str
) -> None:
    port = browser_server.port
    answer = raw_request(port, "GET", path, host=host.format(port=port))
    assert is_json_refusal(answer, 421), (answer.status, answer.body[:300])
    assert b"taskRun" not in answer.body
    assert b"<html" not in answer.body.lower()


def test_a_rebound_post_starts_nothing(browser_server: DevServer) -> None:
    before = _run_count(browser_server)
    answer = raw_request(
        browser_server.port,
        "POST",
        "/v1/task-runs",
        {"Content-Type": "application/json"},
        START,
        host=f"evil.example:{browser_server.port}",
    )
    assert is_json_refusal(answer, 421)
    assert _run_count(browser_server) == before


def test_a_forged_cancel_leaves_the_run_alone(browser_server: DevServer) -> None:
    port = browser_server.port
    with Render(base_url=browser_server.url) as render:
        run = render.workflows.start_task("wf/nap", [1, 30])
        wait_until(lambda: render.workflows.get_task_run(run.id).status.value == "running")
        for headers, host in (({"Origin": EVIL}, None), ({}, f"evil.example:{port}")):
            answer = raw_request(port, "DELETE", f"/v1/task-runs/{run.id}", headers, host=host)
            assert answer.status in (403, 421), answer.body
        assert render.workflows.get_task_run(run.id).status.value == "running"
        # The dashboard's own origin may cancel it.
        own = raw_request(
            port, "DELETE", f"/v1/task-runs/{run.id}", {"Origin": f"http://localhost:{port}"}
        )
        assert own.status == 204
        assert render.workflows.get_task_run(run.id).status.value == "canceled"


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("127.0.0.1:{port}", "http://127.0.0.1:{port}"),
        ("localhost:{port}", "http://localhost:{port}"),
        ("[::1]:{port}", "http://[::1]:{port}"),
        ("localhost:{port}", None),
        ("127.0.0.1", None),
    ],
)
def test_the_dashboards_own_origin_and_headerless_clients_work(
    browser_server: DevServer, host: str, origin: str | None
) -> None:
    port = browser_server.port
    headers = {"Content-Type": "application/json"}
    if origin is not None:
        headers["Origin"] = origin.format(port=port)
    answer = raw_request(port, "POST", "/v1/task-runs", headers, START, host=host.format(port=port))
    assert answer.status == 202, answer.body
    run_id = answer.json()["id"]
    page = raw_request(port, "GET", "/", host=host.format(port=port))
    assert page.status == 200
    assert b"<html" in page.body.lower()
    with Render(base_url=browser_server.url) as render:
        assert render.workflows.wait_for_run(run_id, timeout=60).results == [1]


def test_sdk_clients_by_localhost_name_work(browser_server: DevServer) -> None:
    url = f"http://localhost:{browser_server.port}"
    with Render(base_url=url) as render:
        assert render.workflows.run_task("wf/noop", [2], timeout=60).results == [2]
        assert render.workflows.list_tasks()

    async def use_async() -> list[Any]:
        async with RenderAsync(base_url=url) as client:
            started = await client.workflows.start_task("wf/noop", [3])
            return list((await started).results)

    assert asyncio.run(use_async()) == [3]


def test_allowed_hosts_widen_the_names_and_nothing_else(
    tiny_project: tuple[str, list[str]],
) -> None:
    cwd, command = tiny_project
    dev = DevServer(
        command,
        port=0,
        cwd=cwd,
        env=clean_env(),
        db=":memory:",
        workflow_slug="wf",
        allowed_hosts=["devbox.test", "published.test:9000"],
    )
    with dev.run_in_thread() as server:
        port = server.port
        json_body = {"Content-Type": "application/json"}
        for host, origin in (
            (f"devbox.test:{port}", f"http://devbox.test:{port}"),
            ("published.test:9000", "http://published.test:9000"),
            (f"localhost:{port}", None),
        ):
            headers = dict(json_body, **({"Origin": origin} if origin else {}))
            answer = raw_request(port, "POST", "/v1/task-runs", headers, START, host=host)
            assert answer.status == 202, (host, answer.body)
        for host in (f"published.test:{port}", "devbox.test:9000", f"other.test:{port}"):
            assert raw_request(port, "GET", "/v1/tasks", host=host).status == 421, host
        # An allowed host is not an allowed origin on another port or scheme.
        for origin in (f"https://devbox.test:{port}", "http://devbox.test:9000"):
            headers = dict(json_body, Origin=origin)
            answer = raw_request(port, "POST", "/v1/task-runs", headers, START)
            assert answer.status == 403, origin
    with pytest.raises(ValueError, match="allowed-host"):
        DevServer(command, allowed_hosts=["http://devbox.test"])


def test_the_allowed_host_flag_and_its_variable(
    tiny_project: tuple[str, list[str]], tmp_path: pathlib.Path
) -> None:
    cwd, command = tiny_project
    env = clean_env(RENDER_DEV_ALLOWED_HOSTS="lan-a.test, lan-b.test")
    server = DevServerProcess(
        cwd,
        command,
        db=str(tmp_path / "dev.sqlite3"),
        args=["--allowed-host", "flag.test"],
        env=env,
    )
    try:
        port = address_of(server.url)[1]
        for name in ("lan-a.test", "lan-b.test", "flag.test", "localhost"):
            assert raw_request(port, "GET", "/v1/tasks", host=f"{name}:{port}").status == 200, name
        assert raw_request(port, "GET", "/v1/tasks", host=f"lan-c.test:{port}").status == 421
    finally:
        assert server.stop() == 0
    refused = subprocess.run(
        [sys.executable, "-m", "render_devserver", "--allowed-host", "http://x.test", "--", "x"],
        check=False,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert refused.returncode == 2
    assert "not a URL" in refused.stderr


# -- the bearer token on every route -----------------------------------------------------


def _concrete_paths(server: DevServer) -> list[tuple[str, str]]:
    """Every (method, path) the application routes, placeholders filled in."""
    assert server.app is not None
    found = []
    for route in server.app.router.routes():
        path = re.sub(r"\{[^}]+\}", "x", route.resource.canonical if route.resource else "")
        found.append((route.method, path))
    return sorted(set(found))


def test_the_token_guards_every_route_that_reads_or_changes_state(
    tiny_project: tuple[str, list[str]],
) -> None:
    cwd, command = tiny_project
    dev = DevServer(
        command,
        port=0,
        cwd=cwd,
        env=clean_env(),
        db=":memory:",
        workflow_slug="wf",
        auth_token=SENTINEL,
    )
    with dev.run_in_thread() as server:
        port = server.port
        routes = _concrete_paths(server)
        assert ("POST", "/v1/task-runs") in routes
        assert ("GET", "/dev/tasks") in routes
        public = []
        for method, path in routes:
            headers = {"Content-Type": "application/json"} if method == "POST" else {}
            body = START if method == "POST" else b""
            anonymous = raw_request(port, method, path, headers, body)
            wrong = raw_request(
                port, method, path, dict(headers, Authorization=f"Bearer {SENTINEL}x"), body
            )
            right = raw_request(
                port, method, path, dict(headers, Authorization=f"Bearer {SENTINEL}"), body
            )
            assert right.status != 401, (method, path)
            if anonymous.status != 401:
                public.append(path)
                continue
            assert is_json_refusal(anonymous, 401), (method, path)
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            assert is_json_refusal(wrong, 401), (method, path)
        # Only the dashboard's static shell (no data in it) loads without the token.
        assert set(public) == {
            "/",
            "/dashboard/",
            "/dashboard/app.js",
            "/dashboard/index.html",
            "/dashboard/style.css",
        }
        with Render(base_url=server.url) as anonymous_client, pytest.raises(RenderError) as caught:
            anonymous_client.workflows.list_task_runs()
        assert caught.value.status == 401
        assert _run_count_with(server, SENTINEL) == 1  # the one POST with the right token


def _run_count_with(server: DevServer, token: str) -> int:
    with Render(base_url=server.url, token=token) as render:
        return sum(1 for _ in render.workflows.iter_task_runs())


# -- bytes that are not HTTP -------------------------------------------------------------


def _garbage(port: int) -> dict[str, bytes]:
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    return {
        "tls hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)),
        "nul bytes": b"\x00" * 64 + b"\r\n\r\n",
        "random": bytes(random.Random(0).randrange(256) for _ in range(1024)),
        "no version": b"GET /v1/tasks\r\n\r\n",
        "http/9.9": b"GET /v1/tasks HTTP/9.9\r\n" + host + b"\r\n",
        "header without colon": b"GET /v1/tasks HTTP/1.1\r\n" + host + b"Bad Header\r\n\r\n",
        "control character": b"GET /v1/tasks HTTP/1.1\r\n" + host + b"X: a\x01b\r\n\r\n",
        "long header": b"GET /v1/tasks HTTP/1.1\r\n" + host + b"X: " + b"a" * 9000 + b"\r\n\r\n",
        "long target": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + host + b"\r\n",
        "two hosts": b"GET /v1/tasks HTTP/1.1\r\n" + host + host + b"\r\n",
        "negative length": b"GET /v1/tasks HTTP/1.1\r\n" + host + b"Content-Length: -1\r\n\r\n",
        "two lengths": b"POST /v1/task-runs HTTP/1.1\r\n"
        + host
        + b"Content-Type: application/json\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n{}",
        "length and chunked": b"POST /v1/task-runs HTTP/1.1\r\n"
        + host
        + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "bad chunk": b"POST /v1/task-runs HTTP/1.1\r\n"
        + host
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "unknown expectation": b"GET /v1/tasks HTTP/1.1\r\n"
        + host
        + b"Expect: teapot\r\nConnection: close\r\n\r\n",
        "unknown expectation, unknown path": b"GET /nope HTTP/1.1\r\n"
        + host
        + b"Expect: x\r\nConnection: close\r\n\r\n",
    }


def test_bytes_that_are_not_http_get_a_json_error_and_the_server_keeps_serving(
    browser_server: DevServer,
) -> None:
    port = browser_server.port
    before = _run_count(browser_server)
    for name, data in _garbage(port).items():
        answer = raw_exchange(port, data)
        assert 400 <= answer.status < 500, (name, answer.status)
        assert answer.headers["content-type"].startswith("application/json"), (name, answer.body)
        assert isinstance(answer.json()["message"], str), name
        assert answer.headers.get("x-content-type-options") == "nosniff"
    assert _run_count(browser_server) == before
    with Render(base_url=browser_server.url) as render:
        assert render.workflows.run_task("wf/noop", [5], timeout=60).results == [5]
