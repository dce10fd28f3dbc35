"""Scenario 2: blocking call overhead, ``start_task`` + ``get_task_run`` in a loop.

``--side``: ``ours-requests`` (``Render()``, default transport), ``ours-h11``
(``Render`` over the h11 transport, a connection per call), ``ours-keepalive``
(``Render`` over ``KeepAliveTransport``: ``http.client`` with keep-alive),
``official`` (0.6.1 ``Render``, httpx), or a raw floor doing the same HTTP by hand:
``raw-requests``, ``raw-httpx``, ``raw-http.client``. Every side decodes the JSON
answers. Prints ``{"calls_per_s": ...}`` (one call = one request).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from _common import BODY, HEADERS, TASK, TOKEN, arg, emit


def side_ours(url: str, transport: str) -> Callable[[], None]:
    from render_sdk import Render

    if transport == "h11":
        from render_transports.h11_transport import TCPTransport

        host, port = url.rsplit("//", 1)[1].split(":")
        render = Render(token=TOKEN, base_url=url, transport=TCPTransport(host, int(port)))  # type: ignore[arg-type]
    elif transport == "keepalive":
        from render_transports.keepalive_transport import KeepAliveTransport

        render = Render(token=TOKEN, base_url=url, transport=KeepAliveTransport())
    else:
        render = Render(token=TOKEN, base_url=url)

    def once() -> None:
        run = render.workflows.start_task(TASK, [3])
        render.workflows.get_task_run(run.id)

    return once


def side_official(url: str) -> Callable[[], None]:
    from render_sdk import Render

    render = Render(token=TOKEN, base_url=url)

    def once() -> None:
        run = render.workflows.start_task(TASK, [3])
        render.workflows.get_task_run(run.id)

    return once


def side_requests(url: str) -> Callable[[], None]:
    import requests

    session = requests.Session()

    def once() -> None:
        run: dict[str, Any] = session.post(url + "/v1/task-runs", data=BODY, headers=HEADERS).json()
        session.get(url + "/v1/task-runs/" + run["id"], headers=HEADERS).json()

    return once


def side_httpx(url: str) -> Callable[[], None]:
    import httpx

    client = httpx.Client()

    def once() -> None:
        run = client.post(url + "/v1/task-runs", content=BODY, headers=HEADERS).json()
        client.get(url + "/v1/task-runs/" + run["id"], headers=HEADERS).json()

    return once


def side_http_client(url: str) -> Callable[[], None]:
    import http.client

    host, port = url.rsplit("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port))

    def once() -> None:
        connection.request("POST", "/v1/task-runs", body=BODY, headers=HEADERS)
        run = json.loads(connection.getresponse().read())
        connection.request("GET", "/v1/task-runs/" + run["id"], headers=HEADERS)
        json.loads(connection.getresponse().read())

    return once


def main() -> None:
    side = arg("side")
    url = arg("url")
    count = int(arg("n", "2000"))
    makers: dict[str, Callable[[], Callable[[], None]]] = {
        "ours-requests": lambda: side_ours(url, "requests"),
        "ours-h11": lambda: side_ours(url, "h11"),
        "ours-keepalive": lambda: side_ours(url, "keepalive"),
        "official": lambda: side_official(url),
        "raw-requests": lambda: side_requests(url),
        "raw-httpx": lambda: side_httpx(url),
        "raw-http.client": lambda: side_http_client(url),
    }
    once = makers[side]()
    for _ in range(max(20, count // 20)):  # warm-up: connections, caches
        once()
    began = time.perf_counter()
    for _ in range(count):
        once()
    elapsed = time.perf_counter() - began
    emit({"side": side, "calls": 2 * count, "seconds": elapsed, "calls_per_s": 2 * count / elapsed})


if __name__ == "__main__":
    main()
