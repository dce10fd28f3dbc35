"""A fast loopback stand-in for Render's REST + SSE API, for the benchmarks.

A raw ``asyncio.Protocol`` (no web framework) so that the server is never what a
client benchmark measures. It speaks just enough HTTP/1.1 for every client under
test: keep-alive, ``Content-Length`` request bodies, ``Connection: close`` when
asked, chunked Server-Sent Events.

Routes (JSON shapes are the documented ones, with every key the official 0.6.1
client requires):

- ``POST /v1/task-runs`` -> 202 ``TaskRun`` (``pending``); the run finishes
  ``--run-seconds`` later. The finish time is encoded in the run id, so nothing is
  stored per run;
- ``GET /v1/task-runs/{id}`` -> 200 ``TaskRunDetails`` (``completed`` once its
  finish time has passed, else ``running``);
- ``GET /v1/task-runs/events?taskRunIds=...`` (repeated or comma-joined) -> an
  event stream with one ``task.completed`` event per run, sent when it finishes
  (at once for finished runs); the stream then stays open;
- ``GET /_stats`` -> connection/request/stream counters and the latest finish time
  (``time.monotonic()``, comparable across processes on Linux);
  ``POST /_reset`` zeroes them.

Usage: ``python stub.py --port 0 --run-seconds 1.0``; prints ``PORT <n>`` once
listening, exits on SIGTERM/SIGINT or when stdin closes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import stat
import sys
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from _common import arg, run_details, run_summary

_REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found"}
_counter = itertools.count(1)


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.connections = 0
        self.requests = 0
        self.streams = 0
        self.events = 0
        self.last_finish = 0.0


STATS = Stats()
# How long a run lasts; set once from --run-seconds (a one-element list, not a global).
RUN_SECONDS = [0.0]


def _new_run_id() -> str:
    finish_us = int((time.monotonic() + RUN_SECONDS[0]) * 1_000_000)
    STATS.last_finish = max(STATS.last_finish, finish_us / 1_000_000)
    return f"trn-{finish_us:014x}{next(_counter) & 0xFFFFFF:06x}"


def _finish_time(run_id: str) -> float:
    try:
        return int(run_id[4:18], 16) / 1_000_000
    except ValueError:
        return 0.0


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _response(status: int, body: bytes = b"", close: bool = False) -> bytes:
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Server(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.timers: list[asyncio.TimerHandle] = []
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        STATS.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers = []

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while not self.streaming:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.handle(method, target, body, close)

    def handle(self, method: str, target: str, body: bytes, close: bool) -> None:
        assert self.transport is not None
        STATS.requests += 1
        path = urlsplit(target).path
        if method == "POST" and path == "/v1/task-runs":
            payload = json.loads(body)
            if not isinstance(payload.get("task"), str):
                answer = _response(400, _dumps({"message": "task is required"}), close)
            else:
                answer = _response(202, _dumps(run_summary(_new_run_id())), close)
        elif method == "GET" and path == "/v1/task-runs/events":
            self.stream(target)
            return
        elif method == "GET" and path.startswith("/v1/task-runs/"):
            run_id = path.rsplit("/", 1)[1]
            finished = time.monotonic() >= _finish_time(run_id)
            document = run_details(run_id, "completed" if finished else "running")
            answer = _response(200, _dumps(document), close)
        elif path == "/_stats":
            stats = dict(vars(STATS))
            answer = _response(200, _dumps(stats), close)
        elif path == "/_reset":
            STATS.reset()
            answer = _response(204, b"", close)
        else:
            answer = _response(404, _dumps({"message": "not found"}), close)
        self.transport.write(answer)
        if close:
            self.transport.close()

    def stream(self, target: str) -> None:
        assert self.transport is not None
        self.streaming = True
        STATS.streams += 1
        ids: list[str] = []
        for key, value in parse_qsl(urlsplit(target).query):
            if key == "taskRunIds":
                ids.extend(part for part in value.split(",") if part)
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
            + _chunk(b"retry: 2000\n\n")
        )
        loop = asyncio.get_running_loop()
        due: dict[float, list[str]] = {}
        for run_id in dict.fromkeys(ids):
            due.setdefault(_finish_time(run_id), []).append(run_id)
        now = time.monotonic()
        for when, group in sorted(due.items()):
            if when <= now:
                self.send_events(group)
            else:
                # loop.time() is time.monotonic() for the default event loop.
                self.timers.append(loop.call_at(when, self.send_events, group))

    def send_events(self, run_ids: list[str]) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        parts = []
        for run_id in run_ids:
            STATS.events += 1
            data = json.dumps(run_details(run_id), separators=(",", ":"))
            parts.append(f"id: {STATS.events}\nevent: task.completed\ndata: {data}\n\n".encode())
        self.transport.write(_chunk(b"".join(parts)))


async def main() -> None:
    RUN_SECONDS[0] = float(arg("run-seconds", "0"))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        Server, "127.0.0.1", int(arg("port", "0")), backlog=4096, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # Exit with the parent: stdin reaches EOF when the driver goes away.
    if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
        loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1(1) or stop.set())
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
