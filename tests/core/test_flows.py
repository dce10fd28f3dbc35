"""Operations as effect generators, run by the sync and async drivers.

The "server" here is a script of responses and transport errors: the flows are
pure, so feeding them answers is how they are exercised (as h11 feeds bytes).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import pytest

from render_core import api, flows, models
from render_core.backoff import Backoff, RetryDecision
from render_core.config import ClientConfig
from render_core.errors import (
    ClientError,
    ConnectionFailed,
    ConnectTimeout,
    NetworkError,
    NotFoundError,
    RateLimitError,
    ReadTimeout,
    RenderError,
    ServerError,
    TimeoutError,
)
from render_core.http import Request, Response

CONFIG = ClientConfig(base_url="https://api.example.test", token="tok", user_agent="ua/1")
OPS = flows.Operations(CONFIG)
RUN = {
    "id": "trn-1",
    "taskId": "tsk-1",
    "status": "pending",
    "parentTaskRunId": "",
    "rootTaskRunId": "trn-1",
    "retries": 0,
    "attempts": [],
}
DETAILS = {**RUN, "status": "completed", "results": [4], "input": [2]}


def ok(status: int, body: Any = None, headers: Iterable[tuple[str, str]] = ()) -> Response:
    raw = b"" if body is None else json.dumps(body).encode()
    return Response(status=status, headers=tuple(headers), body=raw)


class Script:
    """Answers each request with the next scripted item; records requests and sleeps."""

    def __init__(self, *answers: Response | RenderError) -> None:
        self.answers = list(answers)
        self.requests: list[Request] = []
        self.sleeps: list[float] = []

    def send(self, request: Request) -> Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, RenderError):
            raise answer
        return answer

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def asend(self, request: Request) -> Response:
        await asyncio.sleep(0)
        return self.send(request)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def run_both(make_flow: Any, *answers: Response | RenderError) -> tuple[Any, Script, Script]:
    """Run the same flow with the sync and the async driver; both must agree."""
    sync_script, async_script = Script(*answers), Script(*answers)
    outcomes: list[Any] = []
    for script, runner in (
        (sync_script, lambda s: flows.run_sync(make_flow(), s.send, s.sleep)),
        (async_script, lambda s: asyncio.run(flows.run_async(make_flow(), s.asend, s.asleep))),
    ):
        try:
            outcomes.append(("ok", runner(script)))
        except RenderError as exc:
            outcomes.append(("error", exc))
    (kind_a, value_a), (kind_b, value_b) = outcomes
    assert kind_a == kind_b
    if kind_a == "ok":
        assert value_a == value_b
    else:
        assert type(value_a) is type(value_b)
        assert str(value_a) == str(value_b)
    assert sync_script.sleeps == async_script.sleeps
    assert [r.url for r in sync_script.requests] == [r.url for r in async_script.requests]
    assert sync_script.answers == [], "every scripted answer must be consumed"
    if kind_a == "error":
        raise value_a
    return value_a, sync_script, async_script


def test_start_task_success() -> None:
    run, script, _ = run_both(lambda: OPS.start_task("wf/square", [2]), ok(202, RUN))
    assert isinstance(run, models.TaskRun)
    assert run.id == "trn-1"
    (request,) = script.requests
    assert request.method == "POST"
    assert json.loads(request.body) == {"task": "wf/square", "input": [2]}


def test_get_task_run_success() -> None:
    details, _, _ = run_both(lambda: OPS.get_task_run("trn-1"), ok(200, DETAILS))
    assert details.results == [4]


def test_cancel_list_and_tasks() -> None:
    assert run_both(lambda: OPS.cancel_task_run("trn-1"), ok(204))[0] is None
    page, _, _ = run_both(
        lambda: OPS.list_task_runs(models.ListTaskRunsParams(limit=1)),
        ok(200, [{"taskRun": RUN, "cursor": "c1"}]),
    )
    assert page[0].cursor == "c1"
    task = {"id": "tsk-1", "name": "square", "createdAt": "2026-01-01T00:00:00Z"}
    tasks, _, _ = run_both(OPS.list_tasks, ok(200, [{"task": task, "cursor": "t"}]))
    assert tasks[0].name == "square"
    got, _, _ = run_both(lambda: OPS.get_task("tsk-1"), ok(200, task))
    assert got.id == "tsk-1"


def test_get_retries_transient_statuses_with_backoff() -> None:
    details, script, _ = run_both(
        lambda: OPS.get_task_run("trn-1"),
        ok(503, {"message": "busy"}),
        ok(502),
        ok(200, DETAILS),
    )
    assert details.status == "completed"
    assert script.sleeps == [0.25, 0.5]
    assert len(script.requests) == 3


def test_each_retry_is_reported_with_its_reason_before_its_wait() -> None:
    heard: list[RetryDecision] = []
    ops = flows.Operations(CONFIG, Backoff(jitter=False), on_retry=heard.append)
    _, script, _ = run_both(
        lambda: ops.get_task_run("trn-1"),
        ok(429, {"message": "slow down"}, [("Retry-After", "2")]),
        ConnectionFailed("connection refused"),
        ok(200, DETAILS),
    )
    assert script.sleeps == [2.0, 0.5]
    # Heard once per colour: the same decisions in the same order.
    assert heard[:2] == heard[2:]
    assert [(d.retry, d.delay, d.reason) for d in heard[:2]] == [
        (True, 2.0, "HTTP 429 with Retry-After 2 s"),
        (True, 0.5, "ConnectionFailed: connection refused"),
    ]


def test_get_retries_connection_errors_and_timeouts() -> None:
    _, script, _ = run_both(
        lambda: OPS.get_task_run("trn-1"),
        NetworkError("connection reset"),
        ReadTimeout("read timed out"),
        ok(200, DETAILS),
    )
    assert len(script.requests) == 3


def test_get_gives_up_after_budget_and_names_operation() -> None:
    policy = Backoff(base=0.1, factor=2, cap=1, max_attempts=3)
    with pytest.raises(ServerError) as info:
        run_both(
            lambda: flows.Operations(CONFIG, policy).get_task_run("trn-1"),
            ok(503, {"message": "still busy"}),
            ok(503, {"message": "still busy"}),
            ok(503, {"message": "still busy"}),
        )
    assert info.value.status == 503
    assert str(info.value).startswith("get task run failed: still busy")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 500, 501])
def test_get_does_not_retry_permanent_statuses(status: int) -> None:
    with pytest.raises(RenderError) as info:
        run_both(lambda: OPS.get_task_run("trn-1"), ok(status, {"message": "no"}))
    assert info.value.status == status


def test_not_found_is_a_client_error() -> None:
    with pytest.raises(NotFoundError):
        run_both(lambda: OPS.get_task_run("trn-x"), ok(404, {"message": "not found"}))


def test_retry_after_is_honoured() -> None:
    _, script, _ = run_both(
        lambda: OPS.get_task_run("trn-1"),
        ok(429, {"message": "slow down"}, [("Retry-After", "3")]),
        ok(200, DETAILS),
    )
    assert script.sleeps == [3.0]


def test_retry_after_http_date_is_measured_against_the_date_header() -> None:
    _, script, _ = run_both(
        lambda: OPS.get_task_run("trn-1"),
        ok(
            503,
            {"message": "maintenance"},
            [
                ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                ("Retry-After", "Sun, 06 Nov 1994 08:49:39 GMT"),
            ],
        ),
        ok(200, DETAILS),
    )
    assert script.sleeps == [2.0]


def test_too_long_retry_after_surfaces_rate_limit_error() -> None:
    with pytest.raises(RateLimitError) as info:
        run_both(
            lambda: OPS.get_task_run("trn-1"),
            ok(429, {"message": "quota"}, [("Retry-After", "3600")]),
        )
    assert info.value.retry_after == 3600.0


def test_post_is_not_retried_once_it_may_have_reached_the_server() -> None:
    for answer in (ok(503), ok(502), ok(500), NetworkError("reset"), ReadTimeout("slow")):
        with pytest.raises(RenderError):
            run_both(lambda: OPS.start_task("wf/t", []), answer)


def test_post_is_retried_when_it_never_left() -> None:
    run, script, _ = run_both(
        lambda: OPS.start_task("wf/t", []),
        ConnectionFailed("connection refused"),
        ConnectTimeout("connect timed out"),
        ok(202, RUN),
    )
    assert run.id == "trn-1"
    assert len(script.requests) == 3


def test_post_after_rate_limit_is_retried() -> None:
    _, script, _ = run_both(
        lambda: OPS.start_task("wf/t", []),
        ok(429, {"message": "slow"}, [("Retry-After", "1")]),
        ok(202, RUN),
    )
    assert script.sleeps == [1.0]


def test_post_with_idempotency_key_is_retried_like_a_get() -> None:
    _, script, _ = run_both(
        lambda: OPS.start_task("wf/t", [], idempotency_key="k-1"),
        ok(503),
        NetworkError("reset after sending"),
        ok(202, RUN),
    )
    assert [json.loads(r.body)["idempotencyKey"] for r in script.requests] == ["k-1"] * 3


def test_transport_errors_gain_the_operation_name() -> None:
    with pytest.raises(TimeoutError) as info:
        run_both(lambda: OPS.start_task("wf/t", []), ReadTimeout("read timed out"))
    assert str(info.value) == "start task failed: read timed out"
    assert isinstance(info.value.__cause__, ReadTimeout)


def test_with_operation_keeps_an_existing_operation_and_attributes() -> None:
    named = ServerError("boom", operation="get task")
    assert flows.with_operation(named, "other") is named
    renamed = flows.with_operation(ConnectionFailed("refused"), "list tasks")
    assert isinstance(renamed, ConnectionFailed)
    assert renamed.request_sent is False
    assert renamed.operation == "list tasks"


def test_validation_happens_before_any_request() -> None:
    with pytest.raises(ClientError):
        OPS.start_task("wf/t", {1, 2})  # type: ignore[arg-type]


def test_jitter_uses_the_given_rng() -> None:
    import random

    flow = flows.Operations(CONFIG, rng=random.Random(0)).get_task_run("trn-1")
    script = Script(ok(503), ok(200, DETAILS))
    flows.run_sync(flow, script.send, script.sleep)
    assert len(script.sleeps) == 1
    assert 0 <= script.sleeps[0] <= 0.25
    assert script.sleeps[0] != 0.25


class Interrupt(Exception):
    pass


def test_driver_lets_foreign_exceptions_through_and_closes_the_flow() -> None:
    flow = OPS.get_task_run("trn-1")

    def send(request: Request) -> Response:
        raise Interrupt

    with pytest.raises(Interrupt):
        flows.run_sync(flow, send, lambda s: None)
    assert flow.gi_frame is None  # closed


def test_async_driver_lets_cancellation_through() -> None:
    async def main() -> None:
        started = asyncio.Event()

        async def send(request: Request) -> Response:
            started.set()
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

        task = asyncio.ensure_future(
            flows.run_async(OPS.get_task_run("trn-1"), send, asyncio.sleep)
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def _runs(*cursors: str | None) -> list[models.TaskRun]:
    return [
        models.TaskRun(id=f"trn-{i}", status="completed", cursor=c) for i, c in enumerate(cursors)
    ]


def test_next_page_follows_the_last_cursor() -> None:
    params = models.ListTaskRunsParams(limit=2, task_slug="wf/t")
    after = flows.next_page(params, _runs("a", "b"))
    assert after == models.ListTaskRunsParams(limit=2, task_slug="wf/t", cursor="b")


def test_next_page_stops_on_short_empty_or_cursorless_pages() -> None:
    params = models.ListTaskRunsParams(limit=2)
    assert flows.next_page(params, _runs("a")) is None
    assert flows.next_page(params, []) is None
    assert flows.next_page(params, _runs("a", None)) is None
    same = models.ListTaskRunsParams(limit=2, cursor="b")
    assert flows.next_page(same, _runs("a", "b")) is None, "a repeated cursor must not loop"


def test_next_page_without_limit_continues_until_empty() -> None:
    params = models.ListTasksParams()
    tasks = [models.Task(id="tsk-1", cursor="z")]
    assert flows.next_page(params, tasks) == models.ListTasksParams(cursor="z")


def test_operations_have_documented_success_codes() -> None:
    assert api.START_TASK.success == 202
    assert api.CANCEL_TASK_RUN.success == 204
    assert api.GET_TASK_RUN.success == 200
