"""The "effects and drivers" example of docs/transports.md, run against a loopback server.

The code block is read out of the page (so it cannot drift) and executed with the
server's address in place of the dev server's default one.
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

TRANSPORTS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "transports.md"


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]  # set per server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append(  # type: ignore[attr-defined]
            {"path": self.path, "headers": dict(self.headers), "body": body}
        )
        run = {
            "id": "trn-d2k4l6o2j5r3ldc4k0ug",
            "taskId": "tsk-d2k4l4g2j5r3ldc4k0t0",
            "status": "pending",
            "parentTaskRunId": "",
            "rootTaskRunId": "trn-d2k4l6o2j5r3ldc4k0ug",
            "retries": 0,
            "attempts": [],
        }
        payload = json.dumps(run).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _example() -> str:
    text = TRANSPORTS.read_text(encoding="utf-8")
    section = text.split("## Effects and drivers", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_readme_core_example_runs(server: ThreadingHTTPServer) -> None:
    host, port = server.server_address[:2]
    code = _example()
    assert "http://localhost:8120" in code
    code = code.replace("http://localhost:8120", f"http://{host}:{port}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "transports.md", "exec"), {"__name__": "readme_example"})
    assert out.getvalue().strip() == "trn-d2k4l6o2j5r3ldc4k0ug pending"
    (request,) = server.seen  # type: ignore[attr-defined]
    assert request["path"] == "/v1/task-runs"
    assert request["body"] == {"task": "my-workflow/calculate_square", "input": [3]}
    assert request["headers"]["User-Agent"].startswith("render-sdk-python/")
    assert "Authorization" not in request["headers"]
    assert request["headers"]["Content-Type"] == "application/json"
