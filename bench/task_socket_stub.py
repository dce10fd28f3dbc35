"""A minimal task-socket server for the cold-path benchmark (standard library only).

It answers what one run-mode attempt asks, one request per connection, on a Unix
socket: ``GET /input`` with ``square(7)`` and an empty 200 for everything else
(``/callback``). It runs on a thread of the benchmark driver, so the measured
process is only the worker.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading

INPUT = json.dumps({"task_name": "square", "input": base64.b64encode(b"[7]").decode()}).encode()


def _answer(conn: socket.socket) -> None:
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return
            body += chunk
        out = INPUT if head.split(b" ")[1].startswith(b"/input") else b""
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(out), out)
        )


class TaskSocketStub:
    """``with TaskSocketStub(path):`` serves ``path`` until the block ends."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def __enter__(self) -> TaskSocketStub:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._listener.bind(self.path)
        self._listener.listen(64)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=_answer, args=(conn,), daemon=True).start()

    def __exit__(self, *exc_info: object) -> None:
        self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
