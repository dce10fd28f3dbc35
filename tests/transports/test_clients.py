"""Render and RenderAsync against a loopback fake of Render's REST + SSE API.

Every test runs once per face (see conftest.Face): the sync and async clients must
behave the same way on the wire and towards the caller.
"""

from __future__ import annotations

import builtins
import logging
import sys
import threading
import time
from typing import Any

import pytest

from render_core.backoff import Backoff
from render_core.config import Timeouts
from render_core.errors import (
    ClientError,
    NotFoundError,
    RateLimitError,
    RenderError,
    ServerError,
    TaskRunError,
    TimeoutError,
    ValidationError,
)
from render_core.models import ListTaskRunsParams, TaskRun, TaskRunDetails
from tests.support.fake_render import FakeRender
from tests.transports.conftest import Face, FaceFactory


def _wait_until(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_start_task_gives_id_and_status_at_once(face: Face, fake: FakeRender) -> None:
    started = face.start("my-workflow/square", [3])
    assert started.id.startswith("trn-")
    assert started.status in ("pending", "running")
    assert started.task_id.startswith("tsk-")
    if face.name == "sync":
        assert isinstance(started, TaskRun)
    details = face.wait(started)
    assert details.results == [9]
    assert details.input_ == [3]


def test_run_task_returns_details(face: Face) -> None:
    details = face.call("run_task", "my-workflow/add", {"a": 2, "b": 5})
    assert isinstance(details, TaskRunDetails)
    assert details.status == "completed"
    assert details.results == [7]
    assert details.input_ == {"a": 2, "b": 5}
    assert details.attempts[0].attempt == 0


def test_run_task_raises_task_run_error_for_a_failed_run(face: Face) -> None:
    with pytest.raises(TaskRunError) as info:
        face.call("run_task", "my-workflow/boom", [1])
    assert str(info.value) == "division by zero"
    assert info.value.details is not None
    assert info.value.details.status == "failed"
    assert info.value.task_run_id == info.value.details.id


def test_canceled_run_raises_task_run_error(face: Face, fake: FakeRender) -> None:
    started = face.start("my-workflow/forever", [])
    face.call("cancel_task_run", started.id)
    with pytest.raises(TaskRunError, match="cancel"):
        face.wait(started)
    assert face.call("get_task_run", started.id).status == "canceled"
    with pytest.raises(ClientError) as info:
        face.call("cancel_task_run", started.id)
    assert info.value.status == 409


def test_get_list_and_paginate(face: Face, fake: FakeRender) -> None:
    ids = [face.start("my-workflow/square", [i]).id for i in range(45)]
    details = face.call("get_task_run", ids[0])
    assert details.id == ids[0]
    page = face.call("list_task_runs", ListTaskRunsParams(limit=20))
    assert len(page) == 20
    assert all(run.cursor for run in page)
    assert page[0].task_run is page[0]
    everything = face.call("iter_task_runs", ListTaskRunsParams(limit=20))
    assert sorted(run.id for run in everything) == sorted(ids)
    assert len({run.id for run in everything}) == 45


def test_tasks(face: Face) -> None:
    tasks = face.call("list_tasks")
    names = {task.name for task in tasks}
    assert {"square", "add", "slow", "boom", "forever"} <= names
    one = next(task for task in tasks if task.name == "square")
    assert face.call("get_task", one.id).id == one.id


def test_unknown_task_is_not_found(face: Face) -> None:
    with pytest.raises(NotFoundError) as info:
        face.call("start_task", "my-workflow/nope", [])
    assert info.value.status == 404
    assert str(info.value).startswith("start task failed: task not found")


def test_unknown_run_is_not_found(face: Face) -> None:
    with pytest.raises(NotFoundError):
        face.call("get_task_run", "trn-00000000000000000000")


# A mistyped id: the event stream accepts any id and never speaks of it again, so
# without a confirming GET the wait would only end on the 30 s safety net. A
# ``timeout`` well under that turns "too slow" into a TimeoutError, not a pass.
TYPO = "trn-mistyped00000000000"


@pytest.mark.parametrize("method", ["wait_for_run", "wait_for_runs", "as_completed"])
def test_a_mistyped_run_id_fails_fast_with_not_found(face: Face, method: str) -> None:
    real = face.start("my-workflow/square", [4]).id
    argument: object = TYPO if method == "wait_for_run" else [real, TYPO]
    with pytest.raises(NotFoundError) as caught:
        face.call(method, argument, timeout=5)
    assert caught.value.status == 404
    assert TYPO in str(caught.value)


def _gets_of(fake: FakeRender, run_ids: list[str]) -> int:
    paths = {f"/v1/task-runs/{run_id}" for run_id in run_ids}
    return sum(1 for r in fake.requests if r.method == "GET" and r.path in paths)


def test_runs_the_client_started_cost_no_confirming_request(
    make_face: FaceFactory, fake: FakeRender
) -> None:
    face = make_face()
    ids = [face.start("my-workflow/slow", []).id for _ in range(5)]
    assert [d.results for d in face.call("wait_for_runs", ids, timeout=30)] == [["done"]] * 5
    assert [face.wait(face.start("my-workflow/slow", [])).results] == [["done"]]
    assert _gets_of(fake, ids) == 0
    # Another client did not start them: it confirms each running one exactly once.
    running = [face.start("my-workflow/forever", []).id for _ in range(3)]
    other = make_face()
    with pytest.raises(TimeoutError):
        other.call("wait_for_runs", running, timeout=2.5)
    assert _gets_of(fake, running) == 3


def test_bad_input_fails_before_sending(face: Face, fake: FakeRender) -> None:
    before = len(fake.requests)
    with pytest.raises(ValidationError, match="JSON"):
        face.call("start_task", "my-workflow/square", [object()])
    with pytest.raises(ValidationError, match="input_data"):
        face.call("start_task", "my-workflow/square", 5)
    assert len(fake.requests) == before


def test_gets_are_retried_through_a_5xx_burst(face: Face, fake: FakeRender) -> None:
    run_id = face.start("my-workflow/square", [2]).id
    fake.fail_next(2, 503, method="GET", path_prefix="/v1/task-runs/trn-")
    assert face.call("get_task_run", run_id).id == run_id


def test_post_is_not_retried_after_a_5xx(face: Face, fake: FakeRender) -> None:
    fake.fail_next(1, 503, method="POST")
    before = len(fake.requests)
    with pytest.raises(ServerError) as info:
        face.call("start_task", "my-workflow/square", [2])
    assert info.value.status == 503
    assert len(fake.requests) == before + 1
    assert len(fake.run_ids()) == 0


def test_retry_after_is_honoured(face: Face, fake: FakeRender) -> None:
    run_id = face.start("my-workflow/square", [2]).id
    fake.fail_next(1, 429, method="GET", retry_after="1")
    began = time.monotonic()
    assert face.call("get_task_run", run_id).id == run_id
    assert time.monotonic() - began >= 0.9


def test_rate_limit_beyond_budget_raises_with_retry_after(face: Face, fake: FakeRender) -> None:
    fake.fail_next(1, 429, method="POST", retry_after="3600")
    with pytest.raises(RateLimitError) as info:
        face.call("start_task", "my-workflow/square", [2])
    assert info.value.retry_after == 3600.0


def test_non_json_error_bodies_map_by_status(face: Face, fake: FakeRender) -> None:
    fake.fail_next(1, 400, body=b"<html>bad request</html>", content_type="text/html")
    with pytest.raises(ClientError) as info:
        face.call("list_tasks")
    assert "bad request" in str(info.value)


def test_events_yield_each_run_once_and_end(face: Face) -> None:
    ids = [face.start("my-workflow/square", [i]).id for i in range(3)]
    seen = face.call("task_run_events", ids)
    assert sorted(event.id for event in seen) == sorted(ids)
    assert all(event.status == "completed" for event in seen)


def test_events_survive_dropped_streams(face: Face, fake: FakeRender) -> None:
    fake.drop_stream_after = 1
    ids = [face.start("my-workflow/slow", []).id for _ in range(4)]
    seen = face.call("task_run_events", ids)
    assert sorted(event.id for event in seen) == sorted(ids)
    assert fake.stream_connections >= 2
    resumed = [r for r in fake.requests if r.path == "/v1/task-runs/events"]
    assert any(r.headers.get("Last-Event-ID") for r in resumed[1:])


def test_garbage_on_the_stream_is_survived(face: Face, fake: FakeRender) -> None:
    fake.garbage_before_events = b"\xff\xfe:\r\ndata: {not json\n\n"
    details = face.call("run_task", "my-workflow/square", [5])
    assert details.results == [25]


def test_stalled_stream_falls_back_and_still_resolves(
    make_face: FaceFactory, fake: FakeRender
) -> None:
    face = make_face(timeouts=Timeouts(stream_idle=0.3))
    fake.stall_streams = True
    details = face.call("run_task", "my-workflow/square", [6])
    assert details.results == [36]


def test_wait_with_deadline_raises_timeout(face: Face, fake: FakeRender) -> None:
    started = face.start("my-workflow/forever", [])
    began = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        face.call("wait_for_runs", [started.id], timeout=0.3)
    assert isinstance(info.value, builtins.TimeoutError)
    assert started.id in str(info.value)
    assert time.monotonic() - began < 3


def test_wait_for_runs_keeps_order_and_returns_failures(face: Face) -> None:
    ok = face.start("my-workflow/slow", []).id
    bad = face.start("my-workflow/boom", []).id
    quick = face.start("my-workflow/square", [3]).id
    results = face.call("wait_for_runs", [ok, bad, quick])
    assert [r.id for r in results] == [ok, bad, quick]
    assert [str(r.status) for r in results] == ["completed", "failed", "completed"]


def test_as_completed_yields_in_completion_order(face: Face) -> None:
    slow = face.start("my-workflow/slow", []).id
    quick = face.start("my-workflow/square", [3]).id
    order = [d.id for d in face.call("as_completed", [slow, quick], timeout=10)]
    assert order == [quick, slow]


def test_auth_header_and_token_hygiene(
    make_face: FaceFactory, fake: FakeRender, caplog: pytest.LogCaptureFixture
) -> None:
    sentinel = "rnd_SENTINEL_do_not_leak"
    face = make_face(token=sentinel)
    caplog.set_level(logging.DEBUG)
    face.call("run_task", "my-workflow/square", [2])
    assert fake.requests[0].headers["Authorization"] == f"Bearer {sentinel}"
    assert sentinel not in repr(face.client)
    fake.fail_next(1, 401, body=b'{"message": "invalid key"}')
    with pytest.raises(ClientError) as info:
        face.call("list_tasks")
    assert sentinel not in str(info.value)
    assert sentinel not in caplog.text


def test_no_authorization_without_token_in_local_dev(face: Face, fake: FakeRender) -> None:
    face.call("list_tasks")
    assert "Authorization" not in fake.requests[-1].headers
    assert fake.requests[-1].headers["User-Agent"].startswith("render-sdk-python/")


def test_slow_server_hits_the_read_timeout(make_face: FaceFactory, fake: FakeRender) -> None:
    face = make_face(timeouts=Timeouts(read=0.2), retry=Backoff(base=0.01, max_attempts=2))
    fake.response_delay = 1.0
    began = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        face.call("list_tasks")
    assert isinstance(info.value, builtins.TimeoutError)
    assert str(info.value).startswith("list tasks failed:")
    assert time.monotonic() - began < 2.0
    assert len(fake.requests) == 2  # a GET is retried once, then gives up


def test_connection_refused_maps_to_server_error(make_face: FaceFactory) -> None:
    face = make_face(base_url="http://127.0.0.1:9", timeouts=Timeouts(connect=1))
    with pytest.raises(ServerError):
        face.call("list_tasks")


def test_missing_token_outside_local_dev_is_a_clear_error() -> None:
    from render_sdk import Render, RenderAsync

    for cls in (Render, RenderAsync):
        with pytest.raises(ClientError, match="RENDER_API_KEY"):
            cls(env={})


def test_errors_are_render_errors(face: Face) -> None:
    with pytest.raises(RenderError):
        face.call("get_task_run", "")


def test_stream_refused_with_5xx_reconnects(face: Face, fake: FakeRender) -> None:
    fake.fail_next(2, 503, path_prefix="/v1/task-runs/events")
    assert face.call("run_task", "my-workflow/square", [7]).results == [49]
    streams = [r for r in fake.requests if r.path == "/v1/task-runs/events"]
    assert len(streams) >= 2  # refused twice, then answered (by a stream or a GET)


def test_stream_unauthorized_raises_client_error(face: Face, fake: FakeRender) -> None:
    started = face.start("my-workflow/slow", [])
    fake.fail_next(1, 401, path_prefix="/v1/task-runs/events", body=b'{"message": "bad key"}')
    with pytest.raises(ClientError) as info:
        face.wait(started)
    assert info.value.status == 401
    assert "bad key" in str(info.value)


@pytest.mark.parametrize("transport", ["requests", "keep-alive"])
def test_a_sync_wait_for_one_run_reads_its_stream_in_the_caller_s_thread(
    fake: FakeRender, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """Without a deadline nothing is timed but the rare check: no reader thread, no
    hand-over of each chunk. With one, a reader thread lets the deadline fire on time."""
    from render_sdk import Render
    from render_sdk.client import waiting
    from render_transports.keepalive_transport import KeepAliveTransport

    readers: list[str] = []
    read_stream = waiting._read_stream

    def recording(*args: object) -> None:
        readers.append(threading.current_thread().name)
        read_stream(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(waiting, "_read_stream", recording)
    chosen = KeepAliveTransport() if transport == "keep-alive" else None
    with Render(base_url=fake.url, env={}, transport=chosen) as client:
        assert client.workflows.run_task("my-workflow/square", [3]).results == [9]
        assert client.workflows.run_task("my-workflow/slow", []).results == ["done"]
        assert readers == []
        assert client.workflows.run_task("my-workflow/square", [4], timeout=30).results == [16]
        assert len(readers) == 1
        assert readers[0].startswith("render-sdk-stream-")
        started = fake.start_run("my-workflow/square", [5])  # not started by this client
        assert client.workflows.wait_for_run(started).results == [25]
        assert len(readers) == 2  # confirmed by GET about a second in: a timer, so a thread


def test_a_stream_read_inline_moves_to_a_thread_when_the_wait_grows(
    fake: FakeRender, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs added while the one stream is read in the caller's thread regroup it (a
    timer): the stream is handed to a reader thread, and every run still resolves."""
    from render_sdk import Render
    from render_sdk.client import waiting

    handed: list[str] = []  # threads given a stream already open (not by _read_stream)
    pump = waiting._pump_stream

    def recording(*args: Any) -> None:
        if sys._getframe(1).f_code.co_name != "_read_stream":
            handed.append(threading.current_thread().name)
        pump(*args)

    monkeypatch.setattr(waiting, "_pump_stream", recording)
    with Render(base_url=fake.url, env={}) as client:
        quick = client.workflows.start_task("my-workflow/square", [2]).id
        slow = client.workflows.start_task("my-workflow/slow", []).id
        waiter = client._waiter()
        waiter.add([quick, slow], time.monotonic())
        results = waiting.wait_sync(waiter, client._transport)
        first = next(results)
        assert handed == []  # read in this thread so far
        later = client.workflows.start_task("my-workflow/square", [3]).id
        waiter.add([later], time.monotonic())
        rest = list(results)
    assert first.run_id == quick
    assert sorted(r.run_id for r in rest) == sorted([slow, later])
    assert handed
    assert handed[0].startswith("render-sdk-stream-")
