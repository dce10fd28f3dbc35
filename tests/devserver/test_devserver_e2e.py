"""The dev server end to end: real worker processes, real sockets, real SQLite, our clients."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import select
import socket
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from render_core.errors import ClientError, NotFoundError, TaskRunError
from render_devserver.server import DevServer
from render_sdk import Render, RenderAsync

WORKFLOW = """
import asyncio, os, sys, time
from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))

@app.task
def square(a: int) -> int:
    return a * a

@app.task
def add(a: int, b: int = 2) -> int:
    return a + b

@app.task
async def fan_out(n: int) -> list[int]:
    return list(await asyncio.gather(*(square(i) for i in range(n))))

@app.task(retry=Retry(max_retries=2, wait_duration_ms=50, backoff_scaling=2.0))
def flaky(marker: str) -> str:
    count = int(open(marker).read()) if os.path.exists(marker) else 0
    with open(marker, "w") as f:
        f.write(str(count + 1))
    if count < 2:
        raise RuntimeError(f"attempt {count} failed")
    return f"ok after {count} failures"

@app.task(retry=Retry(max_retries=1, wait_duration_ms=10))
def always_fails() -> None:
    raise ValueError("nope")

@app.task
def chatty(n: int) -> int:
    for i in range(n):
        print(f"line {i}", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    return n

@app.task
def sleeper(seconds: float) -> str:
    time.sleep(seconds)
    return "woke up"

@app.task(timeout_seconds=30, retry=Retry(max_retries=0, wait_duration_ms=0))
def too_slow() -> str:
    time.sleep(600)
    return "never"

@app.task
def crash() -> None:
    print("about to crash", flush=True)
    os._exit(3)

@app.task
async def parent_of_sleepers() -> list[str]:
    return list(await asyncio.gather(sleeper(600), sleeper(600)))

@app.task(retry=Retry(max_retries=1, wait_duration_ms=10))
def only_slow_first_time(marker: str) -> str:
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(600)
    return "second attempt"

if __name__ == "__main__":
    app.start()
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("proj")
    (directory / "main.py").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    return directory


def _server(project: pathlib.Path, **kwargs: Any) -> DevServer:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = str(pathlib.Path(__file__).resolve().parents[2])
    kwargs.setdefault("db", ":memory:")
    return DevServer(
        [sys.executable, "main.py"],
        port=0,
        cwd=str(project),
        env=env,
        workflow_slug="wf",
        ping_interval=0.5,
        timeout_scale=0.02,  # 30 s timeouts last 0.6 s here
        **kwargs,
    )


@pytest.fixture(scope="module")
def server(project: pathlib.Path) -> Iterator[DevServer]:
    with _server(project, concurrency=8).run_in_thread() as running:
        yield running


@pytest.fixture
def render(server: DevServer) -> Iterator[Render]:
    with Render(base_url=server.url, env={}) as client:
        yield client


def test_tasks_are_registered(render: Render) -> None:
    names = {task.name for task in render.workflows.list_tasks()}
    assert {"square", "add", "fan_out", "flaky", "crash"} <= names
    square = render.workflows.get_task("wf/square")
    assert square.id.startswith("tsk-")
    assert len(square.id) == 24


def test_run_task_positional_and_named(render: Render) -> None:
    assert render.workflows.run_task("wf/square", [12]).results == [144]
    assert render.workflows.run_task("wf/add", {"a": 40}).results == [42]
    details = render.workflows.run_task("other-prefix/add:v1", [1, 1])
    assert details.results == [2]
    assert details.parent_task_run_id == ""
    assert details.root_task_run_id == details.id
    assert details.attempts[0].attempt == 0
    assert details.attempts[0].started_at is not None


def test_subtasks_fan_out_and_record_their_parent(render: Render) -> None:
    details = render.workflows.run_task("wf/fan_out", [6])
    assert details.results == [[0, 1, 4, 9, 16, 25]]
    children = [
        run
        for run in render.workflows.iter_task_runs()
        if run.root_task_run_id == details.id and run.id != details.id
    ]
    assert len(children) == 6
    assert all(child.parent_task_run_id == details.id for child in children)
    assert all(child.parent_task_attempt == 0 for child in children)


def test_retries_are_reported_truthfully(render: Render, tmp_path: pathlib.Path) -> None:
    details = render.workflows.run_task("wf/flaky", [str(tmp_path / "count")])
    assert details.results == ["ok after 2 failures"]
    assert details.retries == 2
    assert [a.attempt for a in details.attempts] == [0, 1, 2]
    assert [str(a.status) for a in details.attempts] == ["failed", "failed", "completed"]
    assert "attempt 0 failed" in (details.attempts[0].error or "")


def test_final_failure_after_retries(render: Render) -> None:
    with pytest.raises(TaskRunError) as info:
        render.workflows.run_task("wf/always_fails", [])
    assert str(info.value) == "ValueError: nope"
    assert info.value.details is not None
    assert info.value.details.retries == 1


def test_crash_without_callback_fails_with_exit_status_and_output(render: Render) -> None:
    started = render.workflows.start_task("wf/crash", [])
    details = render.workflows.wait_for_runs([started.id], timeout=60)[0]
    assert details.status == "failed"
    assert "exited with status 3" in (details.error or "")
    assert "about to crash" in (details.error or "")


def test_timeout_is_enforced(render: Render) -> None:
    began = time.monotonic()
    with pytest.raises(TaskRunError, match="timed out"):
        render.workflows.run_task("wf/too_slow", [], timeout=60)
    assert time.monotonic() - began < 20


def test_cancel_running_tree(render: Render, server: DevServer) -> None:
    parent = render.workflows.start_task("wf/parent_of_sleepers", [])
    deadline = time.monotonic() + 30
    children: list[Any] = []
    while time.monotonic() < deadline and len(children) < 2:
        children = [
            r
            for r in render.workflows.list_task_runs()
            if r.root_task_run_id == parent.id and r.id != parent.id and r.status == "running"
        ]
        time.sleep(0.1)
    assert len(children) == 2
    render.workflows.cancel_task_run(parent.id)
    final = render.workflows.wait_for_runs([parent.id, *(c.id for c in children)], timeout=30)
    assert [str(r.status) for r in final] == ["canceled"] * 3
    with pytest.raises(ClientError) as info:
        render.workflows.cancel_task_run(parent.id)
    assert info.value.status == 409


def test_logs_are_captured_line_by_line(render: Render, server: DevServer) -> None:
    details = render.workflows.run_task("wf/chatty", [3])
    deadline = time.monotonic() + 10
    messages: list[str] = []
    while time.monotonic() < deadline and "to stderr" not in messages:
        body = requests.get(
            f"{server.url}/v1/logs", params={"taskRunID": details.id}, timeout=10
        ).json()
        messages = [log["message"] for log in body["logs"]]
        time.sleep(0.1)
    # In order within a stream; stdout and stderr are two pipes, read as they come.
    assert [m for m in messages if m.startswith("line ")] == ["line 0", "line 1", "line 2"]
    assert "to stderr" in messages


def test_pagination(render: Render) -> None:
    ids = {render.workflows.start_task("wf/square", [i]).id for i in range(25)}
    render.workflows.wait_for_runs(sorted(ids), timeout=60)
    from render_sdk.client import ListTaskRunsParams

    seen = [
        run.id
        for run in render.workflows.iter_task_runs(
            ListTaskRunsParams(limit=10, task_slug="wf/square")
        )
    ]
    assert len(seen) == len(set(seen))
    assert ids <= set(seen)


def test_async_client_shares_streams(server: DevServer) -> None:
    async def main() -> tuple[list[int], int]:
        async with RenderAsync(base_url=server.url, env={}) as client:
            started = [await client.workflows.start_task("wf/square", [i]) for i in range(40)]
            finished = await asyncio.gather(*started)
            return [d.results[0] for d in finished], client.streams_opened

    results, streams = asyncio.run(main())
    assert results == [i * i for i in range(40)]
    assert streams <= 2


def test_sse_framing_and_replay(render: Render, server: DevServer) -> None:
    done = render.workflows.run_task("wf/square", [3])
    with requests.get(
        f"{server.url}/v1/task-runs/events",
        params={"taskRunIds": f"{done.id},trn-unknown"},
        stream=True,
        timeout=10,
    ) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        buffer = b""
        for chunk in response.iter_content(chunk_size=None):
            buffer += chunk
            if buffer.count(b"\n\n") >= 2 and b": ping" in buffer:
                break
        pinged = b": ping" in buffer
    frames = buffer.decode().split("\n\n")
    assert frames[0] == "retry: 2000"
    lines = frames[1].split("\n")
    assert lines[0].startswith("id: ")
    assert int(lines[0][4:]) > 0
    assert lines[1] == "event: task.completed"
    payload = json.loads(lines[2][len("data: ") :])
    assert payload["id"] == done.id
    assert payload["results"] == [9]
    assert pinged  # an id of no run never ends: the stream stays open


def test_an_event_stream_whose_client_left_is_dropped_at_once(project: pathlib.Path) -> None:
    # Not at its next ping: every run's event would otherwise be offered to each stream
    # a waiting client closed since, and each would hold a task until then.
    with (
        DevServer(
            [sys.executable, "main.py"],
            port=0,
            cwd=str(project),
            env=_server(project).env,
            db=":memory:",
            workflow_slug="wf",
            ping_interval=120.0,
        ).run_in_thread() as server,
        Render(base_url=server.url, env={}) as render,
    ):
        hub = server._hub
        for _ in range(10):
            run = render.workflows.start_task("wf/square", [2])
            with requests.get(
                f"{server.url}/v1/task-runs/events",
                params={"taskRunIds": run.id},
                stream=True,
                timeout=10,
            ) as response:
                assert response.status_code == 200
                next(response.iter_content(chunk_size=None))  # "retry:", or the event
            render.workflows.run_task("wf/square", [1])  # a waiter of our own, also closed
        deadline = time.monotonic() + 10
        while hub._subscribers and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not hub._subscribers


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/task-runs", b"{not json", 400),
        ("POST", "/v1/task-runs", b'{"task": "wf/square"}', 400),
        ("POST", "/v1/task-runs", b'{"task": "wf/square", "input": 5}', 400),
        ("POST", "/v1/task-runs", b'{"task": "wf/nope", "input": []}', 404),
        ("GET", "/v1/task-runs/trn-00000000000000000000", b"", 404),
        ("DELETE", "/v1/task-runs/trn-00000000000000000000", b"", 404),
        ("GET", "/v1/nothing-here", b"", 404),
        ("PUT", "/v1/task-runs", b"", 405),
        ("GET", "/v1/task-runs?limit=zero", b"", 400),
        ("GET", "/v1/task-runs/events", b"", 400),
    ],
)
def test_client_mistakes_get_json_4xx(
    server: DevServer, method: str, path: str, body: bytes, status: int
) -> None:
    headers = {"Content-Type": "application/json"} if body else {}
    response = requests.request(method, server.url + path, data=body, headers=headers, timeout=10)
    assert response.status_code == status
    document = response.json()
    assert document["message"]
    assert document["id"]


def test_oversize_body_is_413(server: DevServer) -> None:
    big = b'{"task": "wf/square", "input": ["' + b"x" * (17 * 1024 * 1024) + b'"]}'
    headers = {"Content-Type": "application/json"}
    response = requests.post(server.url + "/v1/task-runs", data=big, headers=headers, timeout=30)
    assert response.status_code == 413
    assert "too large" in response.json()["message"]


def test_unknown_run_via_client(render: Render) -> None:
    with pytest.raises(NotFoundError):
        render.workflows.get_task_run("trn-00000000000000000000")


def test_a_mistyped_run_id_fails_fast_through_both_faces(server: DevServer) -> None:
    # The stream accepts any id: only the early confirming GET tells a typo apart.
    # 5 s is far under the 30 s the safety net would take.
    typo = "trn-d2k4l6o2j5r3ldc4k0ug"
    with Render(base_url=server.url, env={}) as render:
        real = render.workflows.start_task("wf/square", [2]).id
        for wait in (
            lambda: render.workflows.wait_for_run(typo, timeout=5),
            lambda: render.workflows.wait_for_runs([real, typo], timeout=5),
            lambda: list(render.workflows.as_completed([typo, real], timeout=5)),
        ):
            with pytest.raises(NotFoundError, match=typo):
                wait()

    async def use_async() -> None:
        async with RenderAsync(base_url=server.url, env={}) as client:
            started = await client.workflows.start_task("wf/square", [3])
            with pytest.raises(NotFoundError, match=typo):
                await client.workflows.wait_for_run(typo, timeout=5)
            with pytest.raises(NotFoundError, match=typo):
                await client.workflows.wait_for_runs([started.id, typo], timeout=5)
            with pytest.raises(NotFoundError, match=typo):
                async for _ in client.workflows.as_completed([typo], timeout=5):
                    pass
            assert (await started).results == [9]

    asyncio.run(use_async())


def test_concurrency_limit_and_fifo(project: pathlib.Path) -> None:
    with (
        _server(project, concurrency=2).run_in_thread() as running,
        Render(base_url=running.url, env={}) as client,
    ):
        ids = [client.workflows.start_task("wf/sleeper", [0.4]).id for _ in range(6)]
        finished = client.workflows.wait_for_runs(ids, timeout=120)
    spans = [(r.attempts[0].started_at, r.attempts[0].completed_at) for r in finished]
    assert all(start is not None and end is not None for start, end in spans)
    for start, _ in spans:
        overlapping = sum(1 for s, e in spans if s <= start < e)  # type: ignore[operator]
        assert overlapping <= 2
    starts = [s for s, _ in spans]
    assert starts == sorted(starts), "runs must start in the order they were created"


def test_restart_recovers_in_flight_runs(project: pathlib.Path, tmp_path: pathlib.Path) -> None:
    db = str(tmp_path / "dev.sqlite3")
    marker = str(tmp_path / "marker")
    with (
        _server(project, db=db).run_in_thread() as running,
        Render(base_url=running.url, env={}) as client,
    ):
        started = client.workflows.start_task("wf/only_slow_first_time", [marker])
        deadline = time.monotonic() + 30
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.workflows.get_task_run(started.id).status == "running"
    # The server stopped with the attempt in flight; a new one on the same database
    # fails it as interrupted and retries it per the task's policy.
    with (
        _server(project, db=db).run_in_thread() as running,
        Render(base_url=running.url, env={}) as client,
    ):
        details = client.workflows.wait_for_run(started.id, timeout=60)
    assert details.results == ["second attempt"]
    assert "interrupted" in (details.attempts[0].error or "")
    assert details.retries == 1


def test_reload_registers_new_tasks(tmp_path: pathlib.Path) -> None:
    main = tmp_path / "main.py"
    main.write_text(
        "from render_sdk import Workflows\napp = Workflows()\n\n"
        "@app.task\ndef one() -> int:\n    return 1\n\n"
        "if __name__ == '__main__':\n    app.start()\n",
        encoding="utf-8",
    )
    server = _server(tmp_path, reload=True, reload_interval=0.1)
    with server.run_in_thread() as running, Render(base_url=running.url, env={}) as client:
        assert [t.name for t in client.workflows.list_tasks()] == ["one"]
        text = main.read_text(encoding="utf-8").replace(
            "if __name__", "@app.task\ndef two() -> int:\n    return 2\n\nif __name__"
        )
        main.write_text(text, encoding="utf-8")
        later = time.time() + 5
        os.utime(main, (later, later))
        deadline = time.monotonic() + 30
        names: list[str] = []
        while time.monotonic() < deadline and "two" not in names:
            names = [t.name for t in client.workflows.list_tasks()]
            time.sleep(0.1)
        assert names == ["one", "two"]
        assert client.workflows.run_task("wf/two", []).results == [2]


def test_last_event_id_skips_what_the_client_already_has(render: Render, server: DevServer) -> None:
    done = render.workflows.run_task("wf/square", [4])

    def first_frames(headers: dict[str, str]) -> list[str]:
        with requests.get(
            f"{server.url}/v1/task-runs/events",
            params={"taskRunIds": done.id},
            headers=headers,
            stream=True,
            timeout=10,
        ) as response:
            buffer = b""
            for chunk in response.iter_content(chunk_size=None):
                buffer += chunk
                if buffer.count(b"\n\n") >= 2:
                    break
        return buffer.decode().split("\n\n")[:2]

    replayed = first_frames({})
    event_id = replayed[1].split("\n")[0][len("id: ") :]
    resumed = first_frames({"Last-Event-ID": event_id})
    # Nothing newer to replay, and the run has ended: the stream ends at once.
    assert resumed == ["retry: 2000", ""]


def _whole_stream(url: str, run_ids: list[str], timeout: float = 10) -> bytes:
    """The body of an event stream read to its end (raises if it has not ended in time)."""
    with requests.get(
        f"{url}/v1/task-runs/events",
        params={"taskRunIds": ",".join(run_ids)},
        stream=True,
        timeout=timeout,
    ) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        return b"".join(response.iter_content(chunk_size=None))


def test_event_stream_ends_once_every_run_it_names_has_ended(
    render: Render, server: DevServer
) -> None:
    first = render.workflows.start_task("wf/square", [2])
    second = render.workflows.start_task("wf/square", [3])
    body = _whole_stream(server.url, [first.id, second.id]).decode()
    frames = [frame for frame in body.split("\n\n") if frame.startswith("id: ")]
    results = sorted(json.loads(frame.rsplit("data: ", 1)[1])["results"][0] for frame in frames)
    assert results == [4, 9]
    assert body.endswith("\n\n")


def test_an_ended_run_s_stream_opens_in_one_packet(render: Render, server: DevServer) -> None:
    """Headers, retry line and the replayed event leave in one write: a client waiting
    for a run that has already ended wakes once for all three, not once for each."""
    done = render.workflows.run_task("wf/square", [5])
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    request = (
        f"GET /v1/task-runs/events?taskRunIds={done.id} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    for _ in range(5):
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(request)
            select.select([conn], [], [], 10)
            first = conn.recv(65536)  # at once: whatever the first write carried
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
        assert b"retry: 2000" in first, first
        assert f'"id":"{done.id}"'.encode() in first, first


def test_requests_face_keeps_its_connection_across_run_task_calls(
    render: Render, server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dev server ends an event stream with the last event it was waiting for,
    so the default face reads the body to its end and pools the connection, instead
    of dialling a new one for every call."""
    import urllib3.connection

    render.workflows.run_task("wf/square", [1])  # the connection is open from here on
    dialled: list[object] = []
    real = urllib3.connection.connection.create_connection

    def counted(*args: Any, **kwargs: Any) -> Any:
        dialled.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(urllib3.connection.connection, "create_connection", counted)
    results = [render.workflows.run_task("wf/square", [n]).results for n in range(2, 6)]
    assert results == [[4], [9], [16], [25]]
    assert dialled == []


def test_keep_alive_face_keeps_one_connection_across_run_task_calls(
    server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its POST and its event stream share the pooled connection: the stream's end
    (sent with the last event) lets the stream give it back."""
    from render_transports.keepalive_transport import KeepAliveTransport

    transport = KeepAliveTransport()
    dialled: list[object] = []
    real = KeepAliveTransport._connect

    def counted(self: KeepAliveTransport, origin: Any) -> Any:
        dialled.append(origin)
        return real(self, origin)

    monkeypatch.setattr(KeepAliveTransport, "_connect", counted)
    with Render(base_url=server.url, env={}, transport=transport) as client:
        results = [client.workflows.run_task("wf/square", [n]).results for n in range(2, 6)]
    assert results == [[4], [9], [16], [25]]
    assert len(dialled) == 1
