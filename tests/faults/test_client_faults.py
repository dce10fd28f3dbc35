"""The clients under HTTP faults and garbage from the server.

Faults come from the loopback fake of Render (``fail_next``: 429 and 5xx bursts),
from a :class:`FaultProxy` in front of it (resets mid-response, half-open peers that
never answer) and from a :class:`RawServer` (invalid UTF-8, non-JSON, missing keys,
unknown statuses, endless lines and bodies). Each case checks the documented
outcome: recovery within the retry budget, no duplicate run, or a ``RenderError``
subclass that names the operation, without a hang and with bounded memory.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import resource
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from render_core.config import Timeouts
from render_core.errors import (
    NetworkError,
    RateLimitError,
    ReadTimeout,
    RenderError,
    ServerError,
    TimeoutError,
    UnexpectedResponseError,
)
from render_core.models import TaskRunStatus
from render_sdk import Render, RenderAsync
from tests.faults.support import FaultProxy, RawServer, address_of, http_response
from tests.support.fake_render import FAST_RETRY, FakeRender

RUN_PATH = "/v1/task-runs/"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeRender]:
    with FakeRender(ping_interval=0.2) as server:
        server.add_task("square", lambda a: a * a)
        yield server


@pytest.fixture
def proxy(fake: FakeRender) -> Iterator[FaultProxy]:
    with FaultProxy(address_of(fake.url)) as running:
        yield running


def _runs(fake: FakeRender, tag: int) -> list[dict[str, Any]]:
    return [fake.run(run_id) for run_id in fake.run_ids() if fake.run(run_id)["input"] == [tag]]


def _get_both_faces(url: str, run_id: str, before: Any = None, **options: Any) -> list[Any]:
    """``get_task_run`` through the sync and the async client; ``before()`` ahead of each."""
    if before is not None:
        before()
    with Render(base_url=url, **options) as render:
        sync_result = render.workflows.get_task_run(run_id)

    async def get() -> Any:
        async with RenderAsync(base_url=url, **options) as render:
            return await render.workflows.get_task_run(run_id)

    if before is not None:
        before()
    return [sync_result, asyncio.run(get())]


# -- 429 and 5xx bursts ---------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504, 429])
def test_idempotent_calls_recover_from_a_burst_within_their_budget(
    fake: FakeRender, status: int
) -> None:
    run_id = fake.start_run("square", [3])

    def burst() -> None:
        fake.fail_next(3, status, method="GET", path_prefix=RUN_PATH)  # budget: 4 attempts

    for details in _get_both_faces(fake.url, run_id, burst, retry=FAST_RETRY):
        assert details.id == run_id


@pytest.mark.parametrize("status", [502, 503, 504, 429])
def test_a_burst_longer_than_the_budget_is_a_documented_error(
    fake: FakeRender, status: int
) -> None:
    run_id = fake.start_run("square", [3])
    fake.fail_next(4, status, method="GET", path_prefix=RUN_PATH)
    with (
        Render(base_url=fake.url, retry=FAST_RETRY) as render,
        pytest.raises(RenderError) as caught,
    ):
        render.workflows.get_task_run(run_id)
    expected = RateLimitError if status == 429 else ServerError
    assert isinstance(caught.value, expected)
    assert caught.value.status == status
    assert "get task run" in str(caught.value)


def test_retry_after_in_seconds_is_honoured(fake: FakeRender, proxy: FaultProxy) -> None:
    run_id = fake.start_run("square", [4])
    fake.fail_next(1, 429, method="GET", path_prefix=RUN_PATH, retry_after="1")
    with Render(base_url=proxy.url, retry=FAST_RETRY) as render:
        assert render.workflows.get_task_run(run_id).id == run_id
    first, second = [r for r in proxy.records if r.path.startswith(RUN_PATH)]
    assert second.at - first.at >= 1.0


def test_retry_after_as_an_http_date_is_honoured(fake: FakeRender, proxy: FaultProxy) -> None:
    run_id = fake.start_run("square", [5])
    not_before = math.floor(time.time()) + 2
    date = email.utils.formatdate(not_before, usegmt=True)
    fake.fail_next(1, 503, method="GET", path_prefix=RUN_PATH, retry_after=date)
    with Render(base_url=proxy.url, retry=FAST_RETRY) as render:
        assert render.workflows.get_task_run(run_id).id == run_id
    _, second = [r for r in proxy.records if r.path.startswith(RUN_PATH)]
    assert second.wall >= not_before - 0.05  # the date has one-second resolution


def test_rate_limited_post_is_retried_and_creates_one_run(fake: FakeRender) -> None:
    fake.fail_next(2, 429, method="POST", retry_after="0")
    with Render(base_url=fake.url, retry=FAST_RETRY) as render:
        run = render.workflows.start_task("my-workflow/square", [101])
    assert [r["id"] for r in _runs(fake, 101)] == [run.id]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_post_is_not_retried_on_5xx(fake: FakeRender, status: int) -> None:
    before = len(fake.run_ids())
    fake.fail_next(1, status, method="POST")
    with (
        Render(base_url=fake.url, retry=FAST_RETRY) as render,
        pytest.raises(ServerError) as caught,
    ):
        render.workflows.start_task("my-workflow/square", [status])
    assert caught.value.status == status
    assert "start task" in str(caught.value)
    assert len(fake.run_ids()) == before
    posts = [r for r in fake.requests if r.method == "POST" and r.json().get("input") == [status]]
    assert len(posts) == 1


# -- resets and half-open connections -----------------------------------------------------


@pytest.mark.parametrize("after", [0, 10, 40, 200])
def test_get_recovers_from_resets_mid_response(
    fake: FakeRender, proxy: FaultProxy, after: int
) -> None:
    run_id = fake.start_run("square", [6])
    proxy.add("reset", method="GET", path_prefix=RUN_PATH, after=after, count=2)
    with Render(base_url=proxy.url, retry=FAST_RETRY) as render:
        assert render.workflows.get_task_run(run_id).id == run_id
    assert [r.fault for r in proxy.records] == ["reset", "reset", None]


@pytest.mark.parametrize("kind", ["reset", "cut", "blackhole"])
def test_post_that_reached_the_server_is_never_repeated(
    fake: FakeRender, proxy: FaultProxy, kind: str
) -> None:
    """The run is created, the answer is lost: one run, one documented error."""
    tag = {"reset": 201, "cut": 202, "blackhole": 203}[kind]
    if kind == "blackhole":
        proxy.add(kind, method="POST")
    else:
        proxy.add(kind, method="POST", after=5)
    timeouts = Timeouts(read=0.5)
    with (
        Render(base_url=proxy.url, retry=FAST_RETRY, timeouts=timeouts) as render,
        pytest.raises((NetworkError, TimeoutError)) as caught,
    ):
        render.workflows.start_task("my-workflow/square", [tag])
    assert isinstance(caught.value, RenderError)
    assert "start task" in str(caught.value)
    assert len([r for r in proxy.records if r.method == "POST"]) == 1
    assert len(_runs(fake, tag)) <= 1  # the blackhole never forwarded it: zero


def test_post_with_an_idempotency_key_is_retried_without_a_duplicate(
    fake: FakeRender, proxy: FaultProxy
) -> None:
    proxy.add("reset", method="POST", after=5)
    with Render(base_url=proxy.url, retry=FAST_RETRY) as render:
        run = render.workflows.start_task("my-workflow/square", [204], idempotency_key="k-204")
    assert [r["id"] for r in _runs(fake, 204)] == [run.id]
    assert len([r for r in proxy.records if r.method == "POST"]) == 2


def test_half_open_get_times_out_and_recovers(fake: FakeRender, proxy: FaultProxy) -> None:
    run_id = fake.start_run("square", [7])

    def half_open() -> None:
        proxy.add("blackhole", method="GET", path_prefix=RUN_PATH, count=2)

    started = time.monotonic()
    faces = _get_both_faces(
        proxy.url, run_id, half_open, retry=FAST_RETRY, timeouts=Timeouts(read=0.3)
    )
    for details in faces:
        assert details.id == run_id
    assert time.monotonic() - started < 30  # bounded: two read timeouts and retries


def test_half_open_get_beyond_the_budget_is_a_read_timeout(
    fake: FakeRender, proxy: FaultProxy
) -> None:
    run_id = fake.start_run("square", [8])
    proxy.add("blackhole", method="GET", path_prefix=RUN_PATH, count=4)
    with (
        Render(base_url=proxy.url, retry=FAST_RETRY, timeouts=Timeouts(read=0.3)) as render,
        pytest.raises(ReadTimeout) as caught,
    ):
        render.workflows.get_task_run(run_id)
    assert isinstance(caught.value, TimeoutError)
    assert "get task run" in str(caught.value)


def test_silent_event_stream_hits_the_idle_timeout_and_reconnects(
    fake: FakeRender, proxy: FaultProxy
) -> None:
    run_id = fake.start_run("square", [9])
    proxy.add("blackhole", path_prefix="/v1/task-runs/events")
    with Render(base_url=proxy.url, timeouts=Timeouts(stream_idle=0.5)) as render:
        details = render.workflows.wait_for_run(run_id, timeout=30)
    assert details.status is TaskRunStatus.COMPLETED
    assert details.results == [81]
    faults = [r.fault for r in proxy.records if r.path == "/v1/task-runs/events"]
    assert faults[0] == "blackhole"


# -- garbage from the server ------------------------------------------------------------

RUN = {
    "id": "trn-1",
    "taskId": "tsk-1",
    "status": "completed",
    "attempts": [],
    "results": [1],
    "input": [],
    "parentTaskRunId": "",
    "rootTaskRunId": "trn-1",
    "retries": 0,
}


def _serve(body: bytes, status: int = 200, content_type: str = "application/json") -> RawServer:
    async def script(method: str, path: str, _: bytes) -> AsyncIterator[bytes]:
        yield http_response(status, body, content_type)

    return RawServer(script)


GARBAGE = {
    "invalid utf-8": b'{"id": "trn-1", "status": "\xff\xfe"}',
    "not json": b"<html><body>502 Bad Gateway</body></html>",
    "truncated json": json.dumps(RUN).encode()[:-7],
    "missing keys": b'{"taskId": "tsk-1"}',
    "wrong types": json.dumps({**RUN, "attempts": "many", "results": 5}).encode(),
    "a list": b"[1, 2, 3]",
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_bodies_become_render_errors(name: str) -> None:
    with _serve(GARBAGE[name]) as server, Render(base_url=server.url, retry=FAST_RETRY) as render:
        with pytest.raises(RenderError) as caught:
            render.workflows.get_task_run("trn-1")
        assert isinstance(caught.value, UnexpectedResponseError)
        assert "get task run" in str(caught.value)


@pytest.mark.parametrize("name", ["not json", "invalid utf-8"])
def test_garbage_error_pages_become_documented_errors(name: str) -> None:
    with _serve(GARBAGE[name], status=503, content_type="text/html") as server:
        with Render(base_url=server.url, retry=FAST_RETRY) as render, pytest.raises(ServerError):
            render.workflows.get_task_run("trn-1")
        assert server.served == FAST_RETRY.max_attempts


def test_unknown_status_is_kept_and_never_taken_for_terminal() -> None:
    document = json.dumps({**RUN, "status": "teleported"}).encode()
    with _serve(document) as server, Render(base_url=server.url, retry=FAST_RETRY) as render:
        details = render.workflows.get_task_run("trn-1")
        assert details.status.value == "teleported"
        assert not details.status.is_terminal
        # Waiting on it ends at the deadline with the documented TimeoutError.
        with pytest.raises(TimeoutError):
            render.workflows.wait_for_run("trn-1", timeout=1.0)


def _max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_endless_body_is_refused_with_bounded_memory() -> None:
    chunk = b"x" * (1 << 20)

    async def script(method: str, path: str, _: bytes) -> AsyncIterator[bytes]:
        yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        yield b"Transfer-Encoding: chunked\r\n\r\n"
        while True:
            yield b"%x\r\n%s\r\n" % (len(chunk), chunk)

    with RawServer(script) as server, Render(base_url=server.url, retry=FAST_RETRY) as render:
        with pytest.raises(NetworkError) as caught:
            render.workflows.get_task_run("trn-1")
        assert "limit" in str(caught.value)

        async def get() -> None:
            async with RenderAsync(base_url=server.url, retry=FAST_RETRY) as client:
                await client.workflows.get_task_run("trn-1")

        with pytest.raises(NetworkError):
            asyncio.run(get())
    # 64 MiB is the documented cap; the process never held much more than that.
    assert _max_rss_kib() < 600 * 1024


def test_endless_event_line_is_a_protocol_error_not_a_memory_leak() -> None:
    written: list[int] = []

    async def script(method: str, path: str, _: bytes) -> AsyncIterator[bytes]:
        if path.endswith("/events"):
            yield b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: "
            total = 0
            while total < 64 << 20:
                yield b"y" * (1 << 16)
                total += 1 << 16
                written.append(total)
        else:
            yield http_response(200, json.dumps({**RUN, "status": "running"}).encode())

    before = _max_rss_kib()
    with RawServer(script) as server, Render(base_url=server.url, retry=FAST_RETRY) as render:
        with pytest.raises(TimeoutError):
            render.workflows.wait_for_run("trn-1", timeout=2.0)
        assert server.served >= 2  # the stream was dropped and reopened
    assert max(written) > 2 << 20  # the server tried to send far more than a line may hold
    assert _max_rss_kib() - before < 256 * 1024
