"""The fake Render server itself, checked with clients that are not our SDK.

``requests`` for the REST calls and for reading event streams, raw sockets where the
bytes on the wire matter (abrupt closes, stop with an open stream). No timing assert is
tight: waits poll with generous deadlines, and only upper bounds far from the expected
value are asserted.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from .fake_render import EVENTS_PATH, FakeRender

TIMEOUT = (5.0, 5.0)  # (connect, read) for every requests call: a bug fails, never hangs
RUN_KEYS = {"id", "taskId", "status", "parentTaskRunId", "rootTaskRunId", "retries", "attempts"}
DETAILS_KEYS = RUN_KEYS | {"results", "input"}


@pytest.fixture
def fake() -> Iterator[FakeRender]:
    with FakeRender() as server:
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)


def start_run(
    fake: FakeRender, http: requests.Session, task: str = "add", input_: Any = (2, 3)
) -> str:
    response = http.post(
        f"{fake.url}/v1/task-runs",
        json={"task": task, "input": list(input_) if isinstance(input_, tuple) else input_},
        timeout=TIMEOUT,
    )
    assert response.status_code == 202, response.text
    run_id: str = response.json()["id"]
    return run_id


def wait_status(fake: FakeRender, run_id: str, *statuses: str) -> dict[str, Any]:
    run: dict[str, Any] = wait_for(lambda: (r := fake.run(run_id))["status"] in statuses and r)
    return run


class EventStream:
    """An SSE connection read with ``requests`` (stream=True), split into blocks simply."""

    def __init__(
        self,
        fake: FakeRender,
        params: list[tuple[str, str]],
        headers: dict[str, str] | None = None,
    ) -> None:
        self.session = requests.Session()
        self.response = self.session.get(
            fake.url + EVENTS_PATH, params=params, headers=headers, stream=True, timeout=TIMEOUT
        )
        self._chunks = self.response.iter_content(chunk_size=None)
        self.raw = b""
        self._buffer = b""

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.response.close()
        self.session.close()

    def block(self) -> bytes:
        """The next block up to a blank line (``StopIteration`` at the end of the stream)."""
        while b"\n\n" not in self._buffer:
            chunk = next(self._chunks)
            self.raw += chunk
            self._buffer += chunk
        block, self._buffer = self._buffer.split(b"\n\n", 1)
        return block

    def event(self) -> tuple[int, str, dict[str, Any]]:
        """The next event as ``(id, event name, data)``, skipping retry lines and pings."""
        while True:
            fields = {}
            for line in self.block().decode().split("\n"):
                name, _, value = line.partition(": ")
                fields[name] = value
            if "data" in fields:
                return int(fields["id"]), fields["event"], json.loads(fields["data"])


def raw_get(fake: FakeRender, target: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(fake.url.rsplit(":", 1)[1])), timeout=5)
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return sock


def read_until(sock: socket.socket, marker: bytes, data: bytes = b"") -> bytes:
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            pytest.fail(f"connection closed before {marker!r}; got {data!r}")
        data += chunk
    return data


def read_to_eof(sock: socket.socket, data: bytes = b"") -> bytes:
    while chunk := sock.recv(65536):
        data += chunk
    return data


# --------------------------------------------------------------------------- lifecycle


def test_start_stop_url_and_idempotent_stop() -> None:
    server = FakeRender()
    server.stop()  # before start: nothing to do
    with pytest.raises(RuntimeError):
        _ = server.url
    server.start()
    assert server.url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError):
        server.start()
    with requests.get(server.url + "/v1/tasks", timeout=TIMEOUT) as response:
        assert response.status_code == 200
        assert response.json() == []
    server.stop()
    server.stop()
    with pytest.raises(RuntimeError):
        server.finish("trn-x")


@pytest.mark.parametrize("stall", [False, True])
def test_stop_with_an_open_stream_returns_quickly(stall: bool) -> None:
    server = FakeRender().start()
    server.stall_streams = stall
    try:
        with raw_get(server, EVENTS_PATH + "?taskRunIds=trn-unknown") as sock:
            read_until(sock, b"retry: 2000\n\n" if not stall else b"\r\n\r\n")
            wait_for(lambda: server.open_streams == 1)
            started = time.monotonic()
            server.stop()
            assert time.monotonic() - started < 2.0
            read_to_eof(sock)  # the server closed the connection
    finally:
        server.stop()


async def test_usable_from_an_async_test(fake: FakeRender) -> None:
    port = int(fake.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /v1/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
        await writer.wait_closed()
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert reply.endswith(b"[]")


# --------------------------------------------------------------------------- runs


def test_post_answers_202_pending_with_every_required_key(
    fake: FakeRender, http: requests.Session
) -> None:
    task_id = fake.add_task("add", lambda a, b: a + b, duration=math.inf)
    response = http.post(
        f"{fake.url}/v1/task-runs",
        json={"task": "my-workflow/add", "input": [2, 3]},
        timeout=TIMEOUT,
    )
    assert response.status_code == 202
    assert response.headers["Content-Type"].startswith("application/json")
    run = response.json()
    assert run.keys() >= RUN_KEYS
    assert run["id"].startswith("trn-")
    assert len(run["id"]) == 24
    assert task_id.startswith("tsk-")
    assert run["taskId"] == task_id
    assert run["status"] == "pending"
    assert run["parentTaskRunId"] == ""
    assert run["rootTaskRunId"] == run["id"]
    assert run["retries"] == 0
    [attempt] = run["attempts"]
    assert attempt["attempt"] == 0
    assert "startedAt" in attempt
    assert fake.run_ids() == [run["id"]]
    # "running" right after the answer, and it stays so (duration inf) with no results.
    details = wait_status(fake, run["id"], "running")
    assert details.keys() >= DETAILS_KEYS
    assert details["results"] == []
    assert details["input"] == [2, 3]
    assert "startedAt" in details
    assert "completedAt" not in details


def test_run_completes_after_its_duration(fake: FakeRender, http: requests.Session) -> None:
    fake.add_task("add", lambda a, b: a + b, duration=0.2)
    run_id = start_run(fake, http, "add", {"a": 2, "b": 3})
    response = http.get(f"{fake.url}/v1/task-runs/{run_id}", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json()["status"] in {"pending", "running"}

    def completed() -> dict[str, Any] | None:
        body: dict[str, Any] = http.get(f"{fake.url}/v1/task-runs/{run_id}", timeout=TIMEOUT).json()
        return body if body["status"] == "completed" else None

    details = wait_for(completed)
    assert details.keys() >= DETAILS_KEYS
    assert details["results"] == [5]
    assert details["input"] == {"a": 2, "b": 3}
    assert details["completedAt"].endswith("Z")
    assert details["startedAt"].endswith("Z")
    assert details["attempts"][0]["status"] == "completed"
    assert "error" not in details


def test_results_are_always_wrapped_and_failures_carry_the_error(
    fake: FakeRender, http: requests.Session
) -> None:
    fake.add_task("pair", lambda: [1, 2])
    fake.add_task("none")
    fake.add_task("div", lambda a, b: a / b)
    fake.add_task("quiet", lambda: (_ for _ in ()).throw(KeyError()))
    fake.add_task("nan", lambda: math.nan)
    pair, none = start_run(fake, http, "pair", []), start_run(fake, http, "none", [])
    div, quiet = start_run(fake, http, "div", [1, 0]), start_run(fake, http, "quiet", [])
    nan = start_run(fake, http, "nan", [])
    assert wait_status(fake, pair, "completed")["results"] == [[1, 2]]
    assert wait_status(fake, none, "completed")["results"] == [None]
    failed = wait_status(fake, div, "failed")
    assert failed["error"] == "division by zero"
    assert failed["results"] == []
    assert wait_status(fake, quiet, "failed")["error"] == "KeyError"
    assert "JSON" in wait_status(fake, nan, "failed")["error"]


def test_task_slugs_and_404s(fake: FakeRender, http: requests.Session) -> None:
    task_id = fake.add_task("add", lambda a, b: a + b)
    for slug in ("my-workflow/add", "add", "my-workflow/add:sha123", task_id):
        start_run(fake, http, slug)
    for slug in ("my-workflow/nope", "other-workflow/add"):
        response = http.post(
            f"{fake.url}/v1/task-runs", json={"task": slug, "input": []}, timeout=TIMEOUT
        )
        assert response.status_code == 404
        assert response.json()["message"] == f"task not found: {slug}"
        assert response.json()["id"]
    for path in ("/v1/task-runs/trn-nope", "/v1/tasks/nope", "/v1/nothing", "/"):
        response = http.get(fake.url + path, timeout=TIMEOUT)
        assert response.status_code == 404, path
        assert response.json()["message"]
    response = http.delete(f"{fake.url}/v1/task-runs/trn-nope", timeout=TIMEOUT)
    assert response.status_code == 404
    response = http.put(f"{fake.url}/v1/task-runs", timeout=TIMEOUT)
    assert response.status_code == 405
    assert "PUT" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        (b"{not json", "JSON"),
        (b"[1]", "object"),
        (b'{"input": []}', "task"),
        (b'{"task": 5, "input": []}', "task"),
        (b'{"task": "add"}', "input"),
        (b'{"task": "add", "input": 5}', "input"),
        (b'{"task": "add", "input": [], "idempotencyKey": 5}', "idempotencyKey"),
    ],
)
def test_bad_create_requests_are_400_naming_the_field(
    fake: FakeRender, http: requests.Session, body: bytes, mentions: str
) -> None:
    fake.add_task("add")
    response = http.post(f"{fake.url}/v1/task-runs", data=body, timeout=TIMEOUT)
    assert response.status_code == 400
    assert mentions in response.json()["message"]
    assert fake.run_ids() == []


def test_idempotency_key_answers_the_same_run(fake: FakeRender, http: requests.Session) -> None:
    fake.add_task("add", lambda a, b: a + b)
    url = f"{fake.url}/v1/task-runs"
    body = {"task": "add", "input": [1, 2], "idempotencyKey": "k-1"}
    first = http.post(url, json=body, timeout=TIMEOUT)
    wait_status(fake, first.json()["id"], "completed")
    again = http.post(url, json={**body, "task": "my-workflow/add"}, timeout=TIMEOUT)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "completed"
    other = http.post(url, json={**body, "input": [9, 9]}, timeout=TIMEOUT)
    assert other.status_code == 409
    assert fake.run_ids() == [first.json()["id"]]
    unkeyed = http.post(url, json={"task": "add", "input": [1, 2]}, timeout=TIMEOUT)
    assert unkeyed.json()["id"] != first.json()["id"]


def test_cancel_answers_204_then_409(fake: FakeRender, http: requests.Session) -> None:
    fake.add_task("slow", duration=math.inf)
    run_id = start_run(fake, http, "slow", [])
    wait_status(fake, run_id, "running")
    response = http.delete(f"{fake.url}/v1/task-runs/{run_id}", timeout=TIMEOUT)
    assert response.status_code == 204
    assert response.content == b""
    details = http.get(f"{fake.url}/v1/task-runs/{run_id}", timeout=TIMEOUT).json()
    assert details["status"] == "canceled"
    assert "completedAt" in details
    assert details["results"] == []
    again = http.delete(f"{fake.url}/v1/task-runs/{run_id}", timeout=TIMEOUT)
    assert again.status_code == 409
    assert again.json()["message"].startswith(f"task run {run_id} is not active")


def test_finish_forces_a_terminal_state(fake: FakeRender, http: requests.Session) -> None:
    fake.add_task("add", lambda a, b: a + b, duration=math.inf)
    runs = [start_run(fake, http) for _ in range(4)]
    fake.finish(runs[0])
    fake.finish(runs[1], result={"x": 1}, status="succeeded")
    fake.finish(runs[2], error="boom")
    fake.finish(runs[3], status="canceled")
    outcome = [(r["status"], r["results"], r.get("error")) for r in map(fake.run, runs)]
    assert outcome == [
        ("completed", [5], None),
        ("succeeded", [{"x": 1}], None),
        ("failed", [], "boom"),
        ("canceled", [], None),
    ]
    with pytest.raises(ValueError, match="already"):
        fake.finish(runs[0])
    with pytest.raises(KeyError):
        fake.finish("trn-unknown")
    with pytest.raises(ValueError, match="terminal"):
        fake.finish(runs[0], status="running")
    with pytest.raises(ValueError, match="Out of range float"):
        fake.finish(runs[0], result=math.inf)


# --------------------------------------------------------------------------- listing


def test_pagination_over_45_runs(fake: FakeRender, http: requests.Session) -> None:
    fake.add_task("add", lambda a, b: a + b, duration=math.inf)
    created = [start_run(fake, http) for _ in range(45)]
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": 20}
    while True:
        response = http.get(f"{fake.url}/v1/task-runs", params=params, timeout=TIMEOUT)
        assert response.status_code == 200
        pages.append(response.json())
        if len(pages[-1]) < 20:
            break
        params["cursor"] = pages[-1][-1]["cursor"]
    assert [len(page) for page in pages] == [20, 20, 5]
    seen = [item["taskRun"]["id"] for page in pages for item in page]
    assert seen == created[::-1]  # newest first, no duplicates, nothing missing
    assert all(item["taskRun"].keys() >= RUN_KEYS for page in pages for item in page)
    assert all(item["cursor"] == item["taskRun"]["id"] for page in pages for item in page)
    default = http.get(f"{fake.url}/v1/task-runs", timeout=TIMEOUT).json()
    assert len(default) == 20
    capped = http.get(f"{fake.url}/v1/task-runs", params={"limit": 500}, timeout=TIMEOUT)
    assert len(capped.json()) == 45
    for bad in ({"limit": "0"}, {"limit": "x"}, {"cursor": "trn-unknown"}):
        response = http.get(f"{fake.url}/v1/task-runs", params=bad, timeout=TIMEOUT)
        assert response.status_code == 400
        assert next(iter(bad)) in response.json()["message"]


def test_run_filters(fake: FakeRender, http: requests.Session) -> None:
    fake.add_task("a", duration=math.inf)
    fake.add_task("b", duration=math.inf)
    a1, b1, a2 = (
        start_run(fake, http, "a", []),
        start_run(fake, http, "b", []),
        start_run(fake, http, "a", []),
    )

    def ids(params: list[tuple[str, str]]) -> list[str]:
        items = http.get(f"{fake.url}/v1/task-runs", params=params, timeout=TIMEOUT).json()
        return [item["taskRun"]["id"] for item in items]

    assert ids([("taskSlug", "my-workflow/a")]) == [a2, a1]
    assert ids([("taskSlug", "b"), ("taskSlug", "a")]) == [a2, b1, a1]
    assert ids([("taskSlug", "nope")]) == []
    assert ids([("rootTaskRunId", b1)]) == [b1]
    assert ids([("ownerId", "tea-anything"), ("taskSlug", "b")]) == [b1]
    assert ids([("workflowId", fake.workflow_id)]) == [a2, b1, a1]
    assert ids([("workflowId", "wfl-other")]) == []


def test_tasks_list_and_get(fake: FakeRender, http: requests.Session) -> None:
    ids = [fake.add_task(name) for name in ("one", "two", "three")]
    assert fake.add_task("two", lambda: 2) == ids[1]  # re-registration keeps the id
    first = http.get(f"{fake.url}/v1/tasks", params={"limit": 2}, timeout=TIMEOUT).json()
    rest = http.get(
        f"{fake.url}/v1/tasks", params={"limit": 2, "cursor": first[-1]["cursor"]}, timeout=TIMEOUT
    ).json()
    assert [item["task"]["id"] for item in first + rest] == ids
    assert [item["task"]["name"] for item in first + rest] == ["one", "two", "three"]
    assert {"id", "name", "createdAt"} <= first[0]["task"].keys()
    for ref in (ids[2], "three", "my-workflow/three"):
        response = http.get(f"{fake.url}/v1/tasks/{ref}", timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.json()["id"] == ids[2]


# --------------------------------------------------------------------------- events


def test_stream_framing_and_live_events(fake: FakeRender, http: requests.Session) -> None:
    fake.add_task("add", lambda a, b: a + b, duration=math.inf)
    first, second = start_run(fake, http), start_run(fake, http, input_=[10, 20])
    with EventStream(fake, [("taskRunIds", first), ("taskRunIds", second)]) as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["Content-Type"] == "text/event-stream"
        assert stream.response.headers["Cache-Control"] == "no-cache"
        assert stream.block() == b"retry: 2000"
        wait_for(lambda: fake.open_streams == 1)
        fake.finish(second)
        fake.finish(first, error="boom")
        (id_a, name_a, data_a), (id_b, name_b, data_b) = stream.event(), stream.event()
    assert id_a < id_b
    assert name_a == name_b == "task.completed"
    assert (data_a["id"], data_a["status"], data_a["results"]) == (second, "completed", [30])
    assert (data_b["id"], data_b["status"], data_b["error"]) == (first, "failed", "boom")
    assert data_a.keys() >= DETAILS_KEYS
    for line in stream.raw.split(b"\n"):  # one line per field: the data is compact JSON
        assert line == b"" or line.split(b":", 1)[0] in {b"retry", b"id", b"event", b"data"}
    assert b'"status":"completed"' in stream.raw
    assert fake.stream_connections == 1
    wait_for(lambda: fake.open_streams == 0)  # the client left: the handler noticed


def test_replay_includes_canceled_and_accepts_both_id_forms(
    fake: FakeRender, http: requests.Session
) -> None:
    fake.add_task("add", lambda a, b: a + b, duration=math.inf)
    done, canceled, running = (start_run(fake, http) for _ in range(3))
    fake.finish(done)
    assert http.delete(f"{fake.url}/v1/task-runs/{canceled}", timeout=TIMEOUT).status_code == 204
    forms = [
        [("taskRunIds", f"{done},{canceled},{running},trn-unknown")],
        [("taskRunIds", done), ("taskRunIds", canceled), ("taskRunIds", running)],
        [("taskRunIds", f"{canceled},{running}"), ("taskRunIds", done)],
    ]
    for params in forms:
        with EventStream(fake, params) as stream:
            events = [stream.event(), stream.event()]
        assert [(data["id"], data["status"]) for _, _, data in events] == [
            (done, "completed"),
            (canceled, "canceled"),
        ]
        assert events[0][0] < events[1][0]  # replayed in event-id order, ids kept
    response = http.get(fake.url + EVENTS_PATH, timeout=TIMEOUT)
    assert response.status_code == 400
    assert "taskRunIds" in response.json()["message"]


def test_last_event_id_replays_only_later_terminal_events(
    fake: FakeRender, http: requests.Session
) -> None:
    fake.add_task("add", lambda a, b: a + b, duration=math.inf)
    runs = [start_run(fake, http) for _ in range(4)]
    for run_id in runs[:3]:
        fake.finish(run_id)
    params = [("taskRunIds", ",".join(runs))]
    with EventStream(fake, params) as stream:
        replayed = [stream.event() for _ in range(3)]
    first_id = replayed[0][0]
    assert [data["id"] for _, _, data in replayed] == runs[:3]
    with EventStream(fake, params, headers={"Last-Event-ID": str(first_id)}) as stream:
        assert stream.block() == b"retry: 2000"
        later = [stream.event(), stream.event()]
        assert [(i, data["id"]) for i, _, data in later] == [
            (i, data["id"]) for i, _, data in replayed[1:]
        ]
        fake.finish(runs[3])
        live_id, _, live = stream.event()
    assert live["id"] == runs[3]
    assert live_id > later[-1][0]
    fake.honour_last_event_id = False
    with EventStream(fake, params, headers={"Last-Event-ID": str(live_id)}) as stream:
        assert [stream.event()[2]["id"] for _ in range(4)] == runs


def test_pings_keep_the_stream_alive() -> None:
    with (
        FakeRender(ping_interval=0.05) as server,
        EventStream(server, [("taskRunIds", "trn-x")]) as stream,
    ):
        assert stream.block() == b"retry: 2000"
        assert stream.block() == b": ping"
        assert stream.block() == b": ping"


def test_drop_stream_after_closes_without_the_final_chunk(
    fake: FakeRender, http: requests.Session
) -> None:
    fake.add_task("add", lambda a, b: a + b, duration=math.inf)
    runs = [start_run(fake, http) for _ in range(3)]
    for run_id in runs:
        fake.finish(run_id)
    fake.drop_stream_after = 2
    with raw_get(fake, f"{EVENTS_PATH}?taskRunIds={','.join(runs)}") as sock:
        data = read_to_eof(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body.count(b"event: task.completed") == 2
    assert not body.endswith(b"0\r\n\r\n")  # no terminating chunk: an abrupt close
    with EventStream(fake, [("taskRunIds", ",".join(runs))]) as stream:
        stream.event()
        stream.event()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            stream.block()
    fake.drop_stream_after = 0
    with raw_get(fake, f"{EVENTS_PATH}?taskRunIds={runs[0]}") as sock:
        body = read_to_eof(sock).partition(b"\r\n\r\n")[2]
    assert b"retry: 2000" in body
    assert b"event:" not in body
    assert fake.stream_connections == 3
    wait_for(lambda: fake.open_streams == 0)


def test_stall_streams_sends_headers_then_nothing(fake: FakeRender) -> None:
    fake.stall_streams = True
    with raw_get(fake, EVENTS_PATH + "?taskRunIds=trn-x") as sock:
        head, _, body = read_until(sock, b"\r\n\r\n").partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert body == b""
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)
    assert fake.stream_connections == 1


def test_garbage_before_events(fake: FakeRender, http: requests.Session) -> None:
    fake.add_task("add", lambda a, b: a + b)
    run_id = start_run(fake, http)
    wait_status(fake, run_id, "completed")
    fake.garbage_before_events = b"\xff\xfe:\r\n"
    with raw_get(fake, f"{EVENTS_PATH}?taskRunIds={run_id}") as sock:
        data = read_until(sock, b"data: ")
    body = data.partition(b"\r\n\r\n")[2]
    assert b"retry: 2000\n\n\r\n5\r\n\xff\xfe:\r\n\r\n" in body  # chunk framing around it
    assert body.index(b"\xff\xfe:\r\n") < body.index(b"id: ")


# --------------------------------------------------------------------------- faults and auth


def test_fail_next_with_retry_after_and_counting_down(
    fake: FakeRender, http: requests.Session
) -> None:
    fake.fail_next(2, 429, retry_after="3")
    for _ in range(2):
        response = http.get(f"{fake.url}/v1/tasks", timeout=TIMEOUT)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "3"
        assert response.json()["message"] == "injected 429"
    assert http.get(f"{fake.url}/v1/tasks", timeout=TIMEOUT).status_code == 200


def test_fail_next_matching_and_custom_bodies(fake: FakeRender, http: requests.Session) -> None:
    fake.add_task("add")
    fake.fail_next(
        1, 502, method="POST", body=b"<html>bad gateway</html>", content_type="text/html"
    )
    fake.fail_next(1, 503, path_prefix=EVENTS_PATH)
    assert http.get(f"{fake.url}/v1/task-runs", timeout=TIMEOUT).status_code == 200
    create = {"task": "add", "input": []}
    response = http.post(f"{fake.url}/v1/task-runs", json=create, timeout=TIMEOUT)
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "text/html"
    assert response.content == b"<html>bad gateway</html>"
    assert "Retry-After" not in response.headers
    response = http.get(fake.url + EVENTS_PATH, params={"taskRunIds": "x"}, timeout=TIMEOUT)
    assert response.status_code == 503
    assert response.json()["message"] == "injected 503"
    assert fake.stream_connections == 0
    assert http.post(f"{fake.url}/v1/task-runs", json=create, timeout=TIMEOUT).ok


def test_token_is_required_when_set(http: requests.Session) -> None:
    with FakeRender(token="rnd_secret") as server:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "rnd_secret"}):
            for path in ("/v1/tasks", EVENTS_PATH + "?taskRunIds=x"):
                response = http.get(server.url + path, headers=headers, timeout=TIMEOUT)
                assert response.status_code == 401
                assert response.json()["message"]
        good = {"Authorization": "Bearer rnd_secret"}
        assert http.get(server.url + "/v1/tasks", headers=good, timeout=TIMEOUT).ok
    with FakeRender() as server:  # no token: any header, or none, is fine
        assert http.get(
            server.url + "/v1/tasks", headers={"Authorization": "x"}, timeout=TIMEOUT
        ).ok


def test_response_delay_slows_rest_calls(fake: FakeRender, http: requests.Session) -> None:
    fake.response_delay = 0.2
    started = time.monotonic()
    assert http.get(f"{fake.url}/v1/tasks", timeout=TIMEOUT).ok
    assert time.monotonic() - started >= 0.2


def test_requests_are_recorded(fake: FakeRender, http: requests.Session) -> None:
    fake.add_task("add")
    http.post(
        f"{fake.url}/v1/task-runs",
        json={"task": "add", "input": {"x": "é"}},
        headers={"X-Trace": "1"},
        timeout=TIMEOUT,
    )
    with EventStream(fake, [("taskRunIds", "a"), ("taskRunIds", "b,c")]) as stream:
        stream.block()
    post, events = fake.requests
    assert (post.method, post.path, post.query) == ("POST", "/v1/task-runs", [])
    assert post.headers["x-trace"] == "1"
    assert post.json() == {"task": "add", "input": {"x": "é"}}
    assert (events.method, events.path, events.body) == ("GET", EVENTS_PATH, b"")
    assert events.query == [("taskRunIds", "a"), ("taskRunIds", "b,c")]
    assert events.query_values("taskRunIds") == ["a", "b,c"]
