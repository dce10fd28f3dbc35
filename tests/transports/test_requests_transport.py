"""The requests transport's remembered environment settings, over real loopback servers.

requests reads the proxy variables for every request; the transport remembers the
answer per origin and must still notice when those variables change.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from render_core.http import Request
from render_transports.requests_transport import RequestsTransport


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers every request with its own request target (absolute through a proxy)."""

    def do_GET(self) -> None:
        body = f"{self.server.server_port} {self.path}".encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[int, int]]:
    """Two loopback servers: one plays the API, the other a proxy."""
    running = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in running]
    for thread in threads:
        thread.start()
    try:
        yield running[0].server_port, running[1].server_port
    finally:
        for server in running:
            server.shutdown()
            server.server_close()


@pytest.fixture
def clean_proxies(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def _get(transport: RequestsTransport, port: int) -> str:
    response = transport.send(Request(method="GET", url=f"http://127.0.0.1:{port}/x"))
    assert response.status == 200
    return response.body.decode()


def test_proxy_variables_set_later_take_effect_on_the_next_request(
    servers: tuple[int, int], clean_proxies: pytest.MonkeyPatch
) -> None:
    api, proxy = servers
    transport = RequestsTransport()
    try:
        assert _get(transport, api) == f"{api} /x"  # straight to the API
        clean_proxies.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy}")
        assert _get(transport, api) == f"{proxy} http://127.0.0.1:{api}/x"  # through the proxy
        clean_proxies.setenv("NO_PROXY", "127.0.0.1")
        assert _get(transport, api) == f"{api} /x"
        clean_proxies.delenv("NO_PROXY")
        assert _get(transport, api) == f"{proxy} http://127.0.0.1:{api}/x"
    finally:
        transport.close()


def test_the_environment_is_merged_once_per_origin_and_settings(
    servers: tuple[int, int], clean_proxies: pytest.MonkeyPatch
) -> None:
    api, proxy = servers
    session = requests.Session()
    merges: list[str] = []
    merge = session.merge_environment_settings

    def counting(url: str, *args: Any) -> Any:
        merges.append(url)
        return merge(url, *args)

    session.merge_environment_settings = counting  # type: ignore[method-assign]
    transport = RequestsTransport(session)
    for _ in range(3):
        assert _get(transport, api) == f"{api} /x"
    assert len(merges) == 1
    assert _get(transport, proxy) == f"{proxy} /x"  # another origin
    assert len(merges) == 2
    session.proxies = {"http": f"http://127.0.0.1:{proxy}"}  # the session's own setting
    assert _get(transport, api) == f"{proxy} http://127.0.0.1:{api}/x"
    assert len(merges) == 3
    session.trust_env = False
    assert _get(transport, api) == f"{proxy} http://127.0.0.1:{api}/x"
    assert len(merges) == 4
    session.close()
