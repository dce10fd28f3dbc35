"""The run waiter: shared streams, reconnects, confirmation by GET, exactly-once results."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from render_core import models
from render_core.config import ClientConfig
from render_core.errors import ClientError, NetworkError, NotFoundError, ServerError, TaskRunError
from render_core.errors import TimeoutError as RenderTimeout
from render_core.http import Response
from render_core.waiter import (
    CloseStream,
    Fetch,
    KnownRuns,
    OpenStream,
    RunResult,
    RunWaiter,
    task_run_error,
)

CONFIG = ClientConfig(base_url="http://127.0.0.1:8120", user_agent="ua/1")


def started(*run_ids: str) -> KnownRuns:
    """Runs the client started itself: known to exist, so never confirmed by GET."""
    return KnownRuns(run_ids)


def details(run_id: str, status: str = "completed", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run_id,
        "taskId": "tsk-1",
        "status": status,
        "parentTaskRunId": "",
        "rootTaskRunId": run_id,
        "retries": 0,
        "attempts": [{"attempt": 0, "status": status, "startedAt": "2026-01-01T00:00:00Z"}],
        "results": [1] if status == "completed" else [],
        "input": [],
    }
    body.update(extra)
    return body


def frame(run_id: str, status: str = "completed", event_id: int = 1, **extra: Any) -> bytes:
    data = json.dumps(details(run_id, status, **extra))
    return f"id: {event_id}\nevent: task.completed\ndata: {data}\n\n".encode()


def ids_of(action: OpenStream) -> list[str]:
    return parse_qs(urlsplit(action.request.url).query)["taskRunIds"]


def opens(actions: list[Any]) -> list[OpenStream]:
    return [a for a in actions if isinstance(a, OpenStream)]


def fetches(actions: list[Any]) -> list[Fetch]:
    return [a for a in actions if isinstance(a, Fetch)]


def open_one(waiter: RunWaiter, now: float = 0.0) -> OpenStream:
    (action,) = opens(waiter.poll(now))
    waiter.stream_opened(action.stream_id, Response(status=200), now)
    return action


def test_one_run_resolves_from_its_event_and_the_stream_is_closed() -> None:
    waiter = RunWaiter(CONFIG)
    waiter.add(["trn-a"], now=0.0)
    action = open_one(waiter)
    assert action.request.url.startswith("http://127.0.0.1:8120/v1/task-runs/events?")
    assert ids_of(action) == ["trn-a"]
    assert action.request.header("Accept") == "text/event-stream"
    assert action.request.header("Last-Event-ID") is None
    waiter.stream_data(action.stream_id, frame("trn-a", "running") + b": ping\n\n", 1.0)
    assert waiter.take_results() == []
    waiter.stream_data(action.stream_id, frame("trn-a"), 2.0)
    (result,) = waiter.take_results()
    assert result.run_id == "trn-a"
    assert result.unwrap().results == [1]
    assert waiter.poll(2.0) == [CloseStream(action.stream_id)]
    assert waiter.done
    assert waiter.poll(100.0) == []


def test_event_split_across_chunks_byte_by_byte() -> None:
    waiter = RunWaiter(CONFIG)
    waiter.add(["trn-a"], now=0.0)
    action = open_one(waiter)
    payload = frame("trn-a", error=None, results=["héllo ✓"])
    for i in range(len(payload)):
        waiter.stream_data(action.stream_id, payload[i : i + 1], 1.0)
    (result,) = waiter.take_results()
    assert result.unwrap().results == ["héllo ✓"]


def test_many_runs_share_streams_in_batches() -> None:
    waiter = RunWaiter(CONFIG)
    run_ids = [f"trn-{i:020d}" for i in range(250)]
    waiter.add(run_ids, now=0.0)
    actions = opens(waiter.poll(0.0))
    assert [len(ids_of(a)) for a in actions] == [100, 100, 50]
    assert sorted(i for a in actions for i in ids_of(a)) == sorted(run_ids)
    assert all(len(a.request.url) <= 4096 for a in actions)
    assert waiter.streams_opened == 3


def test_url_length_bounds_a_batch() -> None:
    waiter = RunWaiter(CONFIG, batch_size=1000, max_url_length=400)
    waiter.add([f"trn-{i:020d}" for i in range(30)], now=0.0)
    actions = opens(waiter.poll(0.0))
    assert len(actions) > 1
    assert all(len(a.request.url) <= 400 for a in actions)


def test_duplicate_and_foreign_events_resolve_nothing_twice() -> None:
    waiter = RunWaiter(CONFIG, known_runs=started("trn-a", "trn-b"))
    waiter.add(["trn-a", "trn-b"], now=0.0)
    action = open_one(waiter)
    waiter.stream_data(action.stream_id, frame("trn-z") + frame("trn-a") + frame("trn-a"), 1.0)
    assert [r.run_id for r in waiter.take_results()] == ["trn-a"]
    waiter.add(["trn-b"], now=1.0)  # already waiting: no change
    waiter.stream_data(action.stream_id, frame("trn-b", "failed", error="boom"), 2.0)
    (failed,) = waiter.take_results()
    with pytest.raises(TaskRunError) as info:
        failed.unwrap()
    assert str(info.value) == "boom"
    assert info.value.details is not None
    assert info.value.task_run_id == "trn-b"


def test_canceled_run_raises_task_run_error_with_a_message() -> None:
    error = task_run_error(models.TaskRunDetails(id="trn-c", status="canceled"))
    assert error is not None
    assert "canceled" in str(error)
    failed = task_run_error(models.TaskRunDetails(id="trn-f", status="failed"))
    assert failed is not None
    assert "failed" in str(failed)
    assert task_run_error(models.TaskRunDetails(id="trn-s", status="succeeded")) is None


def test_reconnects_with_last_event_id_after_the_stream_drops() -> None:
    waiter = RunWaiter(CONFIG, known_runs=started("trn-a", "trn-b"))
    waiter.add(["trn-a", "trn-b"], now=0.0)
    action = open_one(waiter)
    waiter.stream_data(action.stream_id, frame("trn-b", event_id=41), 1.0)
    waiter.take_results()
    waiter.stream_closed(action.stream_id, 2.0)
    assert waiter.poll(2.0) == []
    assert waiter.next_deadline() == pytest.approx(2.25)
    (again,) = opens(waiter.poll(2.25))
    assert again.stream_id != action.stream_id
    assert again.request.header("Last-Event-ID") == "41"
    assert ids_of(again) == ["trn-a"]
    # Late bytes from the old connection are ignored.
    waiter.stream_data(action.stream_id, frame("trn-a"), 2.3)
    assert waiter.take_results() == []


def test_repeated_failures_confirm_by_get_then_give_up() -> None:
    waiter = RunWaiter(CONFIG, max_failures=3, known_runs=started("trn-a"))
    waiter.add(["trn-a"], now=0.0)
    now = 0.0
    (first,) = opens(waiter.poll(now))
    waiter.stream_closed(first.stream_id, now, NetworkError("connection refused"))
    assert fetches(waiter.poll(now)) == []
    now = 1.0
    (second,) = opens(waiter.poll(now))
    waiter.stream_closed(second.stream_id, now, NetworkError("connection refused"))
    (fetch,) = fetches(waiter.poll(now))
    assert fetch.request.url.endswith("/v1/task-runs/trn-a")
    waiter.fetch_failed("trn-a", NetworkError("connection refused"), now)
    now = 5.0
    (third,) = opens(waiter.poll(now))
    waiter.stream_closed(third.stream_id, now, NetworkError("connection refused"))
    (result,) = waiter.take_results()
    assert isinstance(result.error, NetworkError)
    with pytest.raises(NetworkError):
        result.unwrap()
    assert waiter.done


def test_a_successful_get_is_a_sign_of_life() -> None:
    waiter = RunWaiter(CONFIG, max_failures=3, confirm_after_failures=1)
    waiter.add(["trn-a"], now=0.0)
    for now in (0.0, 10.0, 20.0, 30.0, 40.0):
        (action,) = opens(waiter.poll(now))
        waiter.stream_closed(action.stream_id, now)
        for fetch in fetches(waiter.poll(now)):
            waiter.fetch_response(
                fetch.run_id,
                Response(status=200, body=json.dumps(details("trn-a", "running")).encode()),
                now,
            )
    assert waiter.take_results() == []
    assert not waiter.done  # still waiting for trn-a


def test_get_confirms_a_terminal_run_the_stream_missed() -> None:
    waiter = RunWaiter(CONFIG, confirm_after_failures=1)
    waiter.add(["trn-a"], now=0.0)
    (action,) = opens(waiter.poll(0.0))
    waiter.stream_closed(action.stream_id, 0.0)
    (_fetch,) = fetches(waiter.poll(0.0))
    body = json.dumps(details("trn-a")).encode()
    waiter.fetch_response("trn-a", Response(status=200, body=body), 0.1)
    waiter.fetch_response("trn-a", Response(status=200, body=body), 0.2)  # duplicate: ignored
    (result,) = waiter.take_results()
    assert result.details is not None
    assert result.details.status == "completed"


def test_get_404_resolves_with_not_found() -> None:
    waiter = RunWaiter(CONFIG, confirm_after_failures=1)
    waiter.add(["trn-gone"], now=0.0)
    (action,) = opens(waiter.poll(0.0))
    waiter.stream_closed(action.stream_id, 0.0)
    fetches(waiter.poll(0.0))
    waiter.fetch_response("trn-gone", Response(status=404, body=b'{"message": "not found"}'), 0.1)
    (result,) = waiter.take_results()
    assert isinstance(result.error, NotFoundError)


def test_get_server_error_is_retried_later() -> None:
    waiter = RunWaiter(CONFIG, confirm_after_failures=1, check_interval=5.0)
    waiter.add(["trn-a"], now=0.0)
    (action,) = opens(waiter.poll(0.0))
    waiter.stream_closed(action.stream_id, 0.0)
    fetches(waiter.poll(0.0))
    waiter.fetch_response("trn-a", Response(status=503), 0.1)
    assert waiter.take_results() == []
    assert not waiter.done  # still waiting for trn-a


def test_unauthorized_stream_resolves_every_run_with_the_error() -> None:
    waiter = RunWaiter(CONFIG, known_runs=started("trn-a", "trn-b"))
    waiter.add(["trn-a", "trn-b"], now=0.0)
    (action,) = opens(waiter.poll(0.0))
    waiter.stream_opened(
        action.stream_id, Response(status=401, body=b'{"message": "bad key"}'), 0.1
    )
    results = waiter.take_results()
    assert sorted(r.run_id for r in results) == ["trn-a", "trn-b"]
    assert all(isinstance(r.error, ClientError) and r.error.status == 401 for r in results)
    assert waiter.poll(0.2) == [CloseStream(action.stream_id)]
    assert waiter.done


def test_refused_stream_falls_back_to_polling() -> None:
    waiter = RunWaiter(CONFIG)
    waiter.add(["trn-a"], now=0.0)
    (action,) = opens(waiter.poll(0.0))
    waiter.stream_opened(action.stream_id, Response(status=404), 0.0)
    assert waiter.poll(0.0) == [CloseStream(action.stream_id)]
    (_fetch,) = fetches(waiter.poll(0.5))
    running = json.dumps(details("trn-a", "running")).encode()
    waiter.fetch_response("trn-a", Response(status=200, body=running), 0.5)
    assert fetches(waiter.poll(0.6)) == []
    assert len(fetches(waiter.poll(1.5))) == 1
    waiter.fetch_response(
        "trn-a", Response(status=200, body=json.dumps(details("trn-a")).encode()), 2
    )
    assert [r.run_id for r in waiter.take_results()] == ["trn-a"]
    assert opens(waiter.poll(100.0)) == []


def test_rate_limited_stream_waits_for_retry_after() -> None:
    waiter = RunWaiter(CONFIG)
    waiter.add(["trn-a"], now=0.0)
    (action,) = opens(waiter.poll(0.0))
    waiter.stream_opened(
        action.stream_id, Response(status=429, headers=[("Retry-After", "7")]), 0.0
    )
    assert opens(waiter.poll(6.9)) == []
    assert len(opens(waiter.poll(7.0))) == 1


def test_server_error_on_stream_reconnects() -> None:
    waiter = RunWaiter(CONFIG)
    waiter.add(["trn-a"], now=0.0)
    (action,) = opens(waiter.poll(0.0))
    waiter.stream_opened(action.stream_id, Response(status=502), 0.0)
    assert len(opens(waiter.poll(1.0))) == 1


def test_idle_stream_is_closed_and_reopened() -> None:
    waiter = RunWaiter(
        CONFIG, idle_timeout=30.0, check_interval=1000.0, known_runs=started("trn-a")
    )
    waiter.add(["trn-a"], now=0.0)
    action = open_one(waiter)
    waiter.stream_data(action.stream_id, b": ping\n\n", 25.0)
    assert waiter.poll(54.9) == []
    assert waiter.next_deadline() == pytest.approx(55.0)
    actions = waiter.poll(55.0)
    assert CloseStream(action.stream_id) in actions
    assert len(opens(waiter.poll(56.0))) == 1


def test_oversized_line_is_a_stream_failure_not_unbounded_memory() -> None:
    waiter = RunWaiter(CONFIG)
    waiter.add(["trn-a"], now=0.0)
    action = open_one(waiter)
    waiter.stream_data(action.stream_id, b"data: " + b"x" * (1 << 20) + b"x", 1.0)
    assert CloseStream(action.stream_id) in waiter.poll(1.0)
    assert len(opens(waiter.poll(2.0))) == 1


def test_repeated_protocol_errors_end_in_a_server_error() -> None:
    waiter = RunWaiter(CONFIG, max_failures=2, check_interval=1000.0)
    waiter.add(["trn-a"], now=0.0)
    for now in (0.0, 5.0):
        action = open_one(waiter, now)
        waiter.stream_data(action.stream_id, b"data: " + b"x" * (1 << 20) + b"x", now)
    (result,) = waiter.take_results()
    assert isinstance(result.error, ServerError)
    assert "2 times in a row" in str(result.error)


def test_next_deadline_tracks_every_timer() -> None:
    waiter = RunWaiter(
        CONFIG, deadline=50.0, check_interval=40.0, idle_timeout=20.0, known_runs=started("trn-a")
    )
    assert waiter.next_deadline() is None
    waiter.add(["trn-a"], now=0.0)
    assert waiter.next_deadline() == float("-inf")  # a stream is waiting to be opened
    action = open_one(waiter)
    assert waiter.next_deadline() == 20.0  # idle timeout
    waiter.stream_closed(action.stream_id, 1.0)
    assert waiter.next_deadline() == pytest.approx(1.25)  # reconnect
    (again,) = opens(waiter.poll(1.25))
    waiter.stream_opened(again.stream_id, Response(status=200), 1.3)
    waiter.add(["trn-b"], now=1.3, deadline=1.31)
    assert waiter.next_deadline() == pytest.approx(1.31)  # the per-run deadline
    waiter.poll(1.31)
    assert waiter.next_deadline() == pytest.approx(1.32)  # the regroup
    waiter.discard(["trn-a"])
    assert waiter.next_deadline() == float("-inf")  # a close is due


def test_malformed_event_triggers_confirmation() -> None:
    waiter = RunWaiter(CONFIG)
    waiter.add(["trn-a"], now=0.0)
    action = open_one(waiter)
    waiter.stream_data(action.stream_id, b'event: task.completed\ndata: {"id": "trn-a"}\n\n', 1.0)
    (fetch,) = fetches(waiter.poll(1.0))
    assert fetch.run_id == "trn-a"


def test_deadline_resolves_waiting_runs_with_timeout() -> None:
    waiter = RunWaiter(CONFIG, deadline=10.0, known_runs=started("trn-a", "trn-b"))
    waiter.add(["trn-a"], now=0.0)
    waiter.add(["trn-b"], now=0.0, deadline=5.0)
    open_one(waiter)
    assert waiter.next_deadline() == 5.0
    waiter.poll(5.0)
    (early,) = waiter.take_results()
    assert early.run_id == "trn-b"
    assert isinstance(early.error, RenderTimeout)
    assert isinstance(early.error, TimeoutError)
    actions = waiter.poll(10.0)
    (late,) = waiter.take_results()
    assert late.run_id == "trn-a"
    assert [type(a) for a in actions] == [CloseStream]
    assert waiter.done


def test_a_timeout_names_the_run_and_the_seconds_given() -> None:
    waiter = RunWaiter(CONFIG, known_runs=started("trn-a", "trn-b"))
    waiter.add(["trn-a"], now=1.0, timeout=0.5)
    waiter.add(["trn-b"], now=1.0, timeout=2.0, deadline=1.2)  # the earlier deadline binds
    open_one(waiter, 1.0)
    waiter.poll(1.2)
    (early,) = waiter.take_results()
    assert str(early.error) == (
        "wait for task runs failed: 1 task run(s) still not finished at the deadline: trn-b"
    )
    assert waiter.next_deadline() == pytest.approx(1.5)
    waiter.poll(1.5)
    (late,) = waiter.take_results()
    assert isinstance(late.error, RenderTimeout)
    assert str(late.error) == (
        "wait for task runs failed: 1 task run(s) still not finished after 0.5 s: trn-a"
    )


def test_ids_added_to_an_open_stream_regroup_without_last_event_id() -> None:
    waiter = RunWaiter(CONFIG, regroup_delay=0.05)
    waiter.add(["trn-a"], now=0.0)
    first = open_one(waiter)
    waiter.stream_data(first.stream_id, b"id: 9\n: ping\n\n", 0.01)
    waiter.add(["trn-b"], now=0.02)
    assert opens(waiter.poll(0.03)) == []
    actions = waiter.poll(0.07)
    assert CloseStream(first.stream_id) in actions
    (second,) = opens(actions)
    assert sorted(ids_of(second)) == ["trn-a", "trn-b"]
    assert second.request.header("Last-Event-ID") is None
    assert waiter.streams_opened == 2


def test_ids_added_before_opening_join_the_same_connection() -> None:
    waiter = RunWaiter(CONFIG)
    for i in range(150):
        waiter.add([f"trn-{i}"], now=0.0)
    assert len(opens(waiter.poll(0.0))) == 2


def test_discard_then_a_terminal_event() -> None:
    waiter = RunWaiter(CONFIG, known_runs=started("trn-a", "trn-b"))
    waiter.add(["trn-a", "trn-b"], now=0.0)
    action = open_one(waiter)
    waiter.discard(["trn-a", "trn-unknown"])
    waiter.stream_data(
        action.stream_id, frame("trn-a", "succeeded") + frame("trn-b", "running", 2), 0.5
    )
    assert waiter.take_results() == []
    waiter.stream_data(action.stream_id, frame("trn-b", "succeeded", 3), 0.6)
    assert [r.run_id for r in waiter.take_results()] == ["trn-b"]
    assert waiter.poll(1.0) == [CloseStream(action.stream_id)]
    assert waiter.done


def test_safety_check_fetches_a_quiet_run() -> None:
    waiter = RunWaiter(
        CONFIG, check_interval=30.0, idle_timeout=1000.0, known_runs=started("trn-a")
    )
    waiter.add(["trn-a"], now=0.0)
    action = open_one(waiter)
    assert fetches(waiter.poll(29.0)) == []
    (fetch,) = fetches(waiter.poll(30.0))
    running = json.dumps(details("trn-a", "running")).encode()
    waiter.fetch_response(fetch.run_id, Response(status=200, body=running), 30.1)
    assert fetches(waiter.poll(60.0)) == []
    assert len(fetches(waiter.poll(90.1))) == 1  # the interval doubled
    assert action.stream_id in (1,)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        RunWaiter(CONFIG, batch_size=0)
    with pytest.raises(ValueError, match="idle_timeout"):
        RunWaiter(CONFIG, idle_timeout=0)
    with pytest.raises(ValueError, match="max_failures"):
        RunWaiter(CONFIG, max_failures=0)
    waiter = RunWaiter(CONFIG)
    with pytest.raises(TypeError):
        waiter.add("trn-a", now=0.0)
    with pytest.raises(TypeError):
        waiter.add([""], now=0.0)


def test_reports_for_unknown_streams_and_runs_are_ignored() -> None:
    waiter = RunWaiter(CONFIG)
    waiter.stream_opened(99, Response(status=200), 0.0)
    waiter.stream_data(99, b"data: x\n\n", 0.0)
    waiter.stream_closed(99, 0.0)
    waiter.fetch_response("trn-x", Response(status=200), 0.0)
    waiter.fetch_failed("trn-x", ServerError("x"), 0.0)
    assert waiter.take_results() == []
    assert waiter.next_deadline() is None


def test_run_result_unwrap_success() -> None:
    ok = RunResult("trn-a", details=models.TaskRunDetails(id="trn-a", status="completed"))
    assert ok.unwrap().id == "trn-a"


# ---------------------------------------------------------------------------
# The waiter as a state machine: whatever the network does, each run resolves
# at most once, only runs that were added resolve, and nothing is requested
# once no run is waiting.

RUN_IDS = [f"trn-{c}" for c in "abcdefgh"]


class WaiterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.waiter = RunWaiter(CONFIG, batch_size=3, max_failures=4, check_interval=5.0)
        self.now = 0.0
        self.added: set[str] = set()
        self.resolved: list[str] = []
        self.streams: dict[int, list[str]] = {}
        self.open_streams: set[int] = set()
        self.fetching: set[str] = set()
        self.event_id = 0

    def _poll(self) -> None:
        for action in self.waiter.poll(self.now):
            if isinstance(action, OpenStream):
                assert set(ids_of(action)) <= self.added
                self.streams[action.stream_id] = ids_of(action)
            elif isinstance(action, CloseStream):
                self.open_streams.discard(action.stream_id)
                self.streams.pop(action.stream_id, None)
            else:
                assert action.run_id in self.added
                self.fetching.add(action.run_id)
        self._collect()

    def _collect(self) -> None:
        for result in self.waiter.take_results():
            assert result.run_id in self.added
            assert result.run_id not in self.resolved, "resolved twice"
            self.resolved.append(result.run_id)

    @rule(run_ids=st.lists(st.sampled_from(RUN_IDS), min_size=1, max_size=4))
    def add(self, run_ids: list[str]) -> None:
        fresh = [r for r in run_ids if r not in self.resolved]
        self.waiter.add(fresh, self.now)
        self.added.update(fresh)

    @rule(seconds=st.sampled_from([0.0, 0.01, 0.3, 1.0, 5.0, 30.0, 61.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._poll()

    @precondition(lambda self: bool(self.streams))
    @rule(data=st.data(), status=st.sampled_from([200, 200, 200, 404, 429, 500, 503, 401]))
    def answer_stream(self, data: st.DataObject, status: int) -> None:
        stream_id = data.draw(st.sampled_from(sorted(self.streams)))
        self.waiter.stream_opened(stream_id, Response(status=status), self.now)
        if status == 200:
            self.open_streams.add(stream_id)
        self._collect()

    @precondition(lambda self: bool(self.open_streams))
    @rule(
        data=st.data(),
        status=st.sampled_from(["running", "completed", "failed", "canceled", "weird"]),
        split=st.integers(min_value=0, max_value=400),
    )
    def event(self, data: st.DataObject, status: str, split: int) -> None:
        stream_id = data.draw(st.sampled_from(sorted(self.open_streams)))
        run_id = data.draw(st.sampled_from(RUN_IDS))
        self.event_id += 1
        payload = frame(run_id, status, self.event_id)
        self.waiter.stream_data(stream_id, payload[:split], self.now)
        self.waiter.stream_data(stream_id, payload[split:], self.now)
        self._collect()

    @precondition(lambda self: bool(self.streams))
    @rule(data=st.data(), garbage=st.binary(max_size=40))
    def garbage(self, data: st.DataObject, garbage: bytes) -> None:
        stream_id = data.draw(st.sampled_from(sorted(self.streams)))
        self.waiter.stream_data(stream_id, garbage, self.now)
        self._collect()

    @precondition(lambda self: bool(self.streams))
    @rule(data=st.data(), clean=st.booleans())
    def drop(self, data: st.DataObject, clean: bool) -> None:
        stream_id = data.draw(st.sampled_from(sorted(self.streams)))
        self.waiter.stream_closed(stream_id, self.now, None if clean else NetworkError("reset"))
        self.streams.pop(stream_id, None)
        self.open_streams.discard(stream_id)
        self._collect()

    @precondition(lambda self: bool(self.fetching))
    @rule(data=st.data(), outcome=st.sampled_from(["running", "completed", "404", "503", "fail"]))
    def answer_fetch(self, data: st.DataObject, outcome: str) -> None:
        run_id = data.draw(st.sampled_from(sorted(self.fetching)))
        self.fetching.discard(run_id)
        if outcome == "fail":
            self.waiter.fetch_failed(run_id, NetworkError("refused"), self.now)
        elif outcome in ("404", "503"):
            self.waiter.fetch_response(run_id, Response(status=int(outcome)), self.now)
        else:
            body = json.dumps(details(run_id, outcome)).encode()
            self.waiter.fetch_response(run_id, Response(status=200, body=body), self.now)
        self._collect()

    @invariant()
    def done_only_when_every_run_resolved(self) -> None:
        if self.waiter.done:
            assert self.added <= set(self.resolved)

    @invariant()
    def quiet_when_nothing_is_waiting(self) -> None:
        if self.added <= set(self.resolved):
            for action in self.waiter.poll(self.now):
                assert isinstance(action, CloseStream), "a request after all runs resolved"
                self.streams.pop(action.stream_id, None)
                self.open_streams.discard(action.stream_id)
            assert self.waiter.done
            assert self.waiter.poll(self.now + 1000.0) == []


TestWaiterMachine = WaiterMachine.TestCase
TestWaiterMachine.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_first_checks_of_many_runs_are_spread_out() -> None:
    import random

    ids = [f"trn-{i}" for i in range(200)]
    waiter = RunWaiter(
        CONFIG,
        check_interval=30.0,
        idle_timeout=1000.0,
        rng=random.Random(0),
        known_runs=started(*ids),
    )
    waiter.add(ids, now=0.0)
    for action in opens(waiter.poll(0.0)):
        waiter.stream_opened(action.stream_id, Response(status=200), 0.0)
    due = [len(fetches(waiter.poll(t))) for t in (29.9, 37.5, 45.1)]
    assert due[0] == 0
    assert 0 < due[1] < 200
    assert sum(due) == 200


# -- ids the client did not start: a mistyped one fails fast ------------------------------


def not_found(run_id: str) -> Response:
    body = json.dumps({"message": f"task run not found: {run_id}"}).encode()
    return Response(status=404, headers=(("Content-Type", "application/json"),), body=body)


def running(run_id: str) -> Response:
    return Response(status=200, body=json.dumps(details(run_id, "running")).encode())


def test_a_mistyped_id_is_confirmed_soon_after_its_stream_opens_and_fails() -> None:
    waiter = RunWaiter(CONFIG)
    waiter.add(["trn-typo"], now=0.0)
    (action,) = opens(waiter.poll(0.0))
    waiter.stream_opened(action.stream_id, Response(status=200), 0.1)
    assert waiter.next_deadline() == pytest.approx(0.35)
    assert fetches(waiter.poll(0.34)) == []
    (fetch,) = fetches(waiter.poll(0.35))
    assert fetch.run_id == "trn-typo"
    assert fetch.request.url.endswith("/v1/task-runs/trn-typo")
    waiter.fetch_response("trn-typo", not_found("trn-typo"), 0.4)
    (result,) = waiter.take_results()
    assert isinstance(result.error, NotFoundError)
    assert "trn-typo" in str(result.error)
    assert waiter.poll(0.4) == [CloseStream(action.stream_id)]
    assert waiter.done


def test_runs_the_client_started_cost_no_confirming_request() -> None:
    waiter = RunWaiter(CONFIG, known_runs=started("trn-a"))
    waiter.add(["trn-a"], now=0.0)
    open_one(waiter)
    for now in (0.25, 0.5, 1.0, 2.0, 10.0, 29.0):
        assert fetches(waiter.poll(now)) == [], now
    assert [f.run_id for f in fetches(waiter.poll(30.0))] == ["trn-a"]  # the safety net only


def test_a_slow_stream_does_not_delay_the_confirmation() -> None:
    waiter = RunWaiter(CONFIG)
    waiter.add(["trn-typo"], now=0.0)
    opens(waiter.poll(0.0))  # connecting, never answered
    assert fetches(waiter.poll(0.9)) == []
    (fetch,) = fetches(waiter.poll(1.0))
    assert fetch.run_id == "trn-typo"


def test_a_finished_run_replayed_on_the_stream_needs_no_request() -> None:
    known = KnownRuns()
    waiter = RunWaiter(CONFIG, known_runs=known)
    waiter.add(["trn-b"], now=0.0)
    action = open_one(waiter)
    waiter.stream_data(action.stream_id, frame("trn-b"), 0.05)
    (result,) = waiter.take_results()
    assert result.unwrap().id == "trn-b"
    assert fetches(waiter.poll(5.0)) == []
    assert "trn-b" in known


def test_an_existing_run_is_confirmed_once_then_remembered() -> None:
    known = KnownRuns()
    waiter = RunWaiter(CONFIG, check_interval=30.0, known_runs=known)
    waiter.add(["trn-b"], now=0.0)
    open_one(waiter)
    (fetch,) = fetches(waiter.poll(0.25))
    waiter.fetch_response(fetch.run_id, running("trn-b"), 0.3)
    assert waiter.take_results() == []
    assert "trn-b" in known
    for now in (0.5, 1.0, 5.0, 30.0):
        assert fetches(waiter.poll(now)) == [], now
    assert len(fetches(waiter.poll(30.3))) == 1  # the safety net, as for any run
    # A later wait for the same id (another waiter, same memory) asks nothing more.
    again = RunWaiter(CONFIG, known_runs=known)
    again.add(["trn-b"], now=100.0)
    open_one(again, 100.0)
    assert fetches(again.poll(102.0)) == []


def test_an_event_about_a_run_confirms_it() -> None:
    known = KnownRuns()
    waiter = RunWaiter(CONFIG, known_runs=known)
    waiter.add(["trn-b"], now=0.0)
    action = open_one(waiter)
    waiter.stream_data(action.stream_id, frame("trn-b", "running"), 0.1)
    assert "trn-b" in known
    assert fetches(waiter.poll(2.0)) == []


def test_a_failed_confirmation_is_tried_again_soon() -> None:
    waiter = RunWaiter(CONFIG)
    waiter.add(["trn-typo"], now=0.0)
    open_one(waiter)
    (first,) = fetches(waiter.poll(0.25))
    waiter.fetch_failed(first.run_id, NetworkError("connection refused"), 0.3)
    assert fetches(waiter.poll(0.7)) == []
    (retry,) = fetches(waiter.poll(0.8))  # half a second later, not the 30 s safety net
    waiter.fetch_response(retry.run_id, Response(status=503, body=b"{}"), 0.85)
    later = [t for t in (1.0, 1.2, 1.5, 1.7, 2.0) if fetches(waiter.poll(t))]
    assert later
    assert later[0] < 2.0
    waiter.fetch_response("trn-typo", not_found("trn-typo"), later[0])
    (result,) = waiter.take_results()
    assert isinstance(result.error, NotFoundError)


def test_many_unknown_ids_are_confirmed_spread_over_a_second() -> None:
    run_ids = [f"trn-{i:04d}" for i in range(1000)]
    waiter = RunWaiter(CONFIG)
    waiter.add(run_ids, now=0.0)
    for action in opens(waiter.poll(0.0)):
        waiter.stream_opened(action.stream_id, Response(status=200), 0.0)
    due: list[int] = []
    asked: set[str] = set()
    for step in range(1, 14):
        now = 0.1 * step
        batch = fetches(waiter.poll(now))
        due.append(len(batch))
        asked.update(f.run_id for f in batch)
    assert asked == set(run_ids)  # every one within 1.25 s of the stream opening
    assert max(due) <= 150  # about a tenth of them per tenth of a second
    assert due[:2] == [0, 0]


def test_known_runs_forget_the_oldest_past_their_capacity() -> None:
    known = KnownRuns(capacity=3)
    for run_id in ("a", "b", "c", "a", "d"):
        known.add(run_id)
    assert len(known) == 3
    assert "b" not in known
    assert all(run_id in known for run_id in ("a", "c", "d"))
    with pytest.raises(ValueError, match="capacity"):
        KnownRuns(capacity=0)


@pytest.mark.parametrize("status", [400, 404, 409, 421])
def test_a_get_answered_with_a_client_error_ends_the_wait(status: int) -> None:
    # A server that will not serve this client (421: it does not answer to the name
    # the client used) refuses the stream and every GET: fail, never poll forever.
    waiter = RunWaiter(CONFIG, known_runs=started("trn-a"))
    waiter.add(["trn-a"], now=0.0)
    (action,) = opens(waiter.poll(0.0))
    body = json.dumps({"message": "Host 'x' is not a name this server answers to"}).encode()
    refusal = Response(status=status, headers=(("Content-Type", "application/json"),), body=body)
    waiter.stream_opened(action.stream_id, refusal, 0.0)
    assert waiter.poll(0.0) == [CloseStream(action.stream_id)]  # polls instead
    deadline = waiter.next_deadline()
    assert deadline is not None
    (fetch,) = fetches(waiter.poll(deadline))
    waiter.fetch_response(fetch.run_id, refusal, deadline)
    (result,) = waiter.take_results()
    assert isinstance(result.error, ClientError)
    assert result.error.status == status
    assert waiter.poll(deadline + 1) == []
    assert waiter.done


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_a_get_answered_with_a_passing_error_is_asked_again(status: int) -> None:
    waiter = RunWaiter(CONFIG)
    waiter.add(["trn-a"], now=0.0)
    open_one(waiter)
    (fetch,) = fetches(waiter.poll(0.25))
    waiter.fetch_response(fetch.run_id, Response(status=status, body=b"{}"), 0.3)
    assert waiter.take_results() == []
    assert not waiter.done


def test_a_driver_may_block_on_one_stream_only_while_nothing_is_timed() -> None:
    # Known runs, no deadline, one stream: only the rare safety-net check is timed.
    waiter = RunWaiter(CONFIG, known_runs=started("trn-a", "trn-b"))
    waiter.add(["trn-a", "trn-b"], now=0.0)
    assert waiter.can_block_on_stream()
    # A deadline of its own must fire on time.
    timed = RunWaiter(CONFIG, known_runs=started("trn-a"))
    timed.add(["trn-a"], now=0.0, timeout=5.0)
    assert not timed.can_block_on_stream()
    assert not RunWaiter(CONFIG, deadline=10.0).can_block_on_stream()
    # An id not known to exist is confirmed by GET about a second in: not then.
    unknown = RunWaiter(CONFIG)
    unknown.add(["trn-x"], now=0.0)
    assert not unknown.can_block_on_stream()
    action = open_one(unknown)
    unknown.stream_data(action.stream_id, frame("trn-x", "running"), 0.1)  # the server knows it
    assert unknown.can_block_on_stream()
    # More runs than one stream carries: several streams to read at once.
    many = [f"trn-{i}" for i in range(150)]
    batched = RunWaiter(CONFIG, known_runs=started(*many))
    batched.add(many, now=0.0)
    assert not batched.can_block_on_stream()
    # Ids added while a stream is open regroup it shortly: a timer, so not then.
    regrouping = RunWaiter(CONFIG, known_runs=started("trn-a", "trn-b"))
    regrouping.add(["trn-a"], now=0.0)
    open_one(regrouping)
    regrouping.add(["trn-b"], now=0.5)
    assert not regrouping.can_block_on_stream()
