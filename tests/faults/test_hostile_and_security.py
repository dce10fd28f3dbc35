"""Hostile input on the REST port and the task sockets; the security properties.

The dev server answers every client mistake with a 4xx JSON ``{"message": ...}`` and
keeps serving; no request path reaches the file system; task sockets are private
(0600 in a 0700 directory) and each answers only for its own run. Clients keep the
token out of every ``repr``, message and log line, never send it in clear text to
another host without an opt-in, and verify TLS certificates.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import requests

from render_core.config import resolve_config
from render_core.errors import ConfigurationError, NetworkError, RenderError
from render_devserver.cli import _parser
from render_devserver.server import DevServer
from render_sdk import Render, RenderAsync
from tests.faults.support import DevServerProcess, clean_env
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


HOSTILE: list[tuple[str, str, dict[str, Any], int]] = [
    ("POST", "/v1/task-runs", {"data": b"{not json"}, 400),
    ("POST", "/v1/task-runs", {"data": b"\xff\xfe\x00"}, 400),
    ("POST", "/v1/task-runs", {"json": [1, 2]}, 400),
    ("POST", "/v1/task-runs", {"json": {"task": 5, "input": []}}, 400),
    ("POST", "/v1/task-runs", {"json": {"task": "wf/noop", "input": 5}}, 400),
    ("POST", "/v1/task-runs", {"json": {"task": "wf/nope", "input": []}}, 404),
    ("POST", "/v1/task-runs", {"data": b"x" * (17 * 1024 * 1024)}, 413),
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
