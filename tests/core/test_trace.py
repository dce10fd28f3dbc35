"""render_core.trace: run segments, the trace-event file, OpenTelemetry ids (fixed clocks)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from render_core import lifecycle, trace
from render_core.lifecycle import RetryPolicy
from render_core.models import TaskAttempt, TaskRun, TaskRunStatus
from render_core.trace import ATTEMPT, QUEUED, RETRY_WAIT, Segment, TimelineRun
from tests.support.trace_check import check_trace

UTC = _dt.timezone.utc
T0 = _dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
Status = TaskRunStatus


def at(ms: float) -> _dt.datetime:
    return T0 + _dt.timedelta(milliseconds=ms)


def new(run_id: str = "trn-a", retries: int = 2, wait_ms: int = 100) -> lifecycle.Run:
    return lifecycle.new_run(
        run_id=run_id,
        task_id="tsk-a",
        task_name="a",
        input_data=[],
        now=T0,
        policy=RetryPolicy(max_retries=retries, wait_duration_ms=wait_ms, factor=2.0),
    )


def kinds(segments: list[Segment]) -> list[tuple[str, float, float | None]]:
    def ms(value: _dt.datetime | None) -> float | None:
        return None if value is None else (value - T0) / _dt.timedelta(milliseconds=1)

    return [(s.kind, ms(s.start), ms(s.end)) for s in segments]


def segments_of(run: lifecycle.Run, *, dev: bool = True) -> list[Segment]:
    waiting = run.status is Status.PENDING and bool(run.attempts)
    if not dev:
        return trace.run_segments(lifecycle.to_summary(run))
    return trace.run_segments(
        lifecycle.to_details(run),
        created_at=run.created_at,
        next_enqueued_at=run.enqueued_at if waiting else None,
    )


def test_a_run_that_waited_for_a_slot_then_completed() -> None:
    run = lifecycle.complete(lifecycle.start_attempt(new(), at(30)), [1], at(100))
    assert kinds(segments_of(run)) == [(QUEUED, 0, 30), (ATTEMPT, 30, 100)]
    (_, attempt) = segments_of(run)
    assert attempt.status is Status.COMPLETED
    assert attempt.attempt == 0
    assert attempt.error is None


def test_retries_show_their_waits_and_the_queue_after_them() -> None:
    run = lifecycle.start_attempt(new(), at(0))
    run = lifecycle.fail_attempt(run, "boom", at(50))  # retry due at 150
    run = lifecycle.start_attempt(run, at(170))  # queued 150..170
    run = lifecycle.fail_attempt(run, "boom again", at(200))  # due at 400
    run = lifecycle.start_attempt(run, at(400))
    run = lifecycle.fail_attempt(run, "last", at(450))
    assert run.status is Status.FAILED
    assert kinds(segments_of(run)) == [
        (ATTEMPT, 0, 50),
        (RETRY_WAIT, 50, 150),
        (QUEUED, 150, 170),
        (ATTEMPT, 170, 200),
        (RETRY_WAIT, 200, 400),
        (ATTEMPT, 400, 450),
    ]
    errors = [s.error for s in segments_of(run) if s.kind == ATTEMPT]
    assert errors == ["boom", "boom again", "last"]
    # The public summary has no errors, the same times.
    assert kinds(segments_of(run, dev=False)) == kinds(segments_of(run))
    assert all(s.error is None for s in segments_of(run, dev=False))


def test_a_run_still_going_has_open_segments() -> None:
    pending = new()
    assert kinds(segments_of(pending)) == [(QUEUED, 0, None)]
    assert segments_of(pending, dev=False) == []  # the public API has no creation time
    running = lifecycle.start_attempt(pending, at(10))
    assert kinds(segments_of(running)) == [(QUEUED, 0, 10), (ATTEMPT, 10, None)]


def test_a_run_waiting_for_its_retry() -> None:
    run = lifecycle.fail_attempt(lifecycle.start_attempt(new(), at(0)), "boom", at(50))
    assert run.status is Status.PENDING
    # The dev server knows when the retry is due: a wait, then the queue after it.
    assert kinds(segments_of(run)) == [(ATTEMPT, 0, 50), (RETRY_WAIT, 50, 150), (QUEUED, 150, None)]
    # The public API does not: one wait up to now.
    assert kinds(segments_of(run, dev=False)) == [(ATTEMPT, 0, 50), (RETRY_WAIT, 50, None)]
    assert segments_of(run)[1].attempt == 1


def test_canceled_while_waiting_for_a_retry_or_a_slot() -> None:
    run = lifecycle.fail_attempt(lifecycle.start_attempt(new(), at(0)), "boom", at(50))
    early = lifecycle.cancel(run, at(80))  # before the retry was due (150)
    assert kinds(
        trace.run_segments(lifecycle.to_details(early), next_enqueued_at=early.enqueued_at)
    ) == [(ATTEMPT, 0, 50), (RETRY_WAIT, 50, 80)]
    late = lifecycle.cancel(run, at(200))  # due at 150, then waited for a slot
    assert kinds(
        trace.run_segments(lifecycle.to_details(late), next_enqueued_at=late.enqueued_at)
    ) == [(ATTEMPT, 0, 50), (RETRY_WAIT, 50, 150), (QUEUED, 150, 200)]
    assert kinds(trace.run_segments(lifecycle.to_details(late))) == [
        (ATTEMPT, 0, 50),
        (RETRY_WAIT, 50, 200),
    ]
    never_started = lifecycle.cancel(new(), at(30))
    assert kinds(segments_of(never_started)) == [(QUEUED, 0, 30)]
    running = lifecycle.cancel(lifecycle.start_attempt(new(), at(5)), at(40))
    assert kinds(segments_of(running)) == [(QUEUED, 0, 5), (ATTEMPT, 5, 40)]
    assert segments_of(running)[1].status is Status.CANCELED


def test_attempts_are_read_as_the_wire_gives_them() -> None:
    # Out of order, one without a number, one without a start, a terminal run with an
    # attempt left open: each is placed where its times say.
    run = TaskRun(
        id="trn-x",
        status="failed",
        completed_at=at(500),
        attempts=[
            TaskAttempt(status="failed", attempt=1, started_at=at(300), enqueued_at=at(250)),
            TaskAttempt(status="failed", started_at=at(0), completed_at=at(100)),
            TaskAttempt(status="pending", attempt=2),
        ],
    )
    assert kinds(trace.run_segments(run)) == [
        (ATTEMPT, 0, 100),
        (RETRY_WAIT, 100, 250),
        (QUEUED, 250, 300),
        (ATTEMPT, 300, 500),
    ]
    # A retry whose enqueue time is missing or earlier than the last end: no wait.
    odd = TaskRun(
        id="trn-y",
        status="completed",
        completed_at=at(90),
        attempts=[
            TaskAttempt(status="failed", attempt=0, started_at=at(0), completed_at=at(40)),
            TaskAttempt(status="completed", attempt=1, started_at=at(60), completed_at=at(90)),
        ],
    )
    assert kinds(trace.run_segments(odd)) == [(ATTEMPT, 0, 40), (QUEUED, 40, 60), (ATTEMPT, 60, 90)]


def test_segment_json() -> None:
    run = lifecycle.fail_attempt(lifecycle.start_attempt(new(retries=0), at(10)), "x", at(20))
    documents = [trace.segment_json(s) for s in segments_of(run)]
    assert documents == [
        {
            "kind": "queued",
            "start": "2026-01-01T12:00:00.000000Z",
            "end": "2026-01-01T12:00:00.010000Z",
            "attempt": 0,
        },
        {
            "kind": "attempt",
            "start": "2026-01-01T12:00:00.010000Z",
            "end": "2026-01-01T12:00:00.020000Z",
            "attempt": 0,
            "status": "failed",
            "error": "x",
        },
    ]
    assert trace.segment_json(Segment(kind=QUEUED, start=T0, end=None)) == {
        "kind": "queued",
        "start": "2026-01-01T12:00:00.000000Z",
        "end": None,
    }


def _tree() -> list[TimelineRun]:
    root = lifecycle.start_attempt(new("trn-root"), at(0))
    children = []
    for index in range(3):
        child = lifecycle.new_run(
            run_id=f"trn-c{index}",
            task_id="tsk-b",
            task_name="b",
            input_data=[index],
            now=at(10 + index),
            parent=root,
        )
        child = lifecycle.start_attempt(child, at(20 + index))
        if index == 1:
            child = lifecycle.fail_attempt(child, "flaky", at(30))
            child = lifecycle.start_attempt(child, at(1030))
        children.append(lifecycle.complete(child, [index], at(1100 + index)))
    grandchild = lifecycle.new_run(
        run_id="trn-g",
        task_id="tsk-c",
        task_name="c",
        input_data=[],
        now=at(25),
        parent=children[0],
    )
    root = lifecycle.complete(root, [], at(1200))
    runs = [root, *children, lifecycle.start_attempt(grandchild, at(26))]
    return [
        TimelineRun(
            id=r.id,
            task_name=r.task_name,
            status=r.status,
            parent_id=r.parent_id,
            segments=segments_of(r),
        )
        for r in runs
    ]


def test_chrome_trace_lays_the_tree_out() -> None:
    runs = _tree()
    # Given in any order, laid out parents first.
    document = trace.chrome_trace(
        [runs[4], runs[2], runs[0], runs[3], runs[1]],
        now=at(2000),
        root_id="trn-root",
        metadata={"source": "test"},
    )
    check_trace(document)
    json.dumps(document)  # plain JSON
    events = document["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert names == {1: "a trn-root", 2: "b trn-c1", 3: "b trn-c2", 4: "b trn-c0", 5: "c trn-g"}
    process = [e for e in events if e["name"] == "process_name"]
    assert process[0]["args"]["name"] == "task run tree trn-root"
    assert document["otherData"] == {
        "rootTaskRunId": "trn-root",
        "startTime": "2026-01-01T12:00:00.000000Z",
        "runs": 5,
        "source": "test",
    }
    attempts = [e for e in events if e.get("cat") == ATTEMPT]
    by_run = {}
    for event in attempts:
        by_run.setdefault(event["args"]["taskRunId"], []).append(event)
    assert [(e["ts"], e["dur"]) for e in by_run["trn-c1"]] == [(21_000, 9_000), (1_030_000, 71_000)]
    assert by_run["trn-c1"][0]["args"]["error"] == "flaky"
    assert by_run["trn-c1"][0]["name"] == "attempt 1"
    # The grandchild is still running: its attempt ends at "now", marked unfinished.
    (open_attempt,) = by_run["trn-g"]
    assert open_attempt["dur"] == 2_000_000 - 26_000
    assert open_attempt["args"]["unfinished"] is True
    waits = [e for e in events if e.get("cat") == RETRY_WAIT]
    assert [(w["ts"], w["dur"]) for w in waits] == [(30_000, 1_000_000)]
    flows = [e for e in events if e.get("cat") == "subtask"]
    assert len(flows) == 8  # four subtasks, a start and a finish each


def test_chrome_trace_of_runs_without_times_and_cycles() -> None:
    lonely = TimelineRun(
        id="trn-p", task_name="p", status=Status.PENDING, parent_id="", segments=()
    )
    document = trace.chrome_trace([lonely], now=T0, root_id="trn-p")
    check_trace(document)
    assert [e["name"] for e in document["traceEvents"]] == [
        "process_name",
        "thread_name",
        "thread_sort_index",
    ]
    assert document["otherData"]["startTime"] == "2026-01-01T12:00:00.000000Z"
    segment = (Segment(kind=QUEUED, start=T0, end=at(1)),)
    loop = [
        TimelineRun(
            id="trn-1", task_name="x", status=Status.PENDING, parent_id="trn-2", segments=segment
        ),
        TimelineRun(
            id="trn-2", task_name="x", status=Status.PENDING, parent_id="trn-1", segments=segment
        ),
    ]
    document = trace.chrome_trace(loop, now=at(5), root_id="trn-1")
    threads = [e for e in document["traceEvents"] if e["name"] == "thread_name"]
    assert len(threads) == 2


def test_trace_ids_are_deterministic() -> None:
    assert trace.trace_id_for("trn-a") == trace.trace_id_for("trn-a")
    assert trace.trace_id_for("trn-a") != trace.trace_id_for("trn-b")
    assert 0 < trace.trace_id_for("trn-a") < 2**128
    assert trace.span_id_for("attempt", "trn-a", 0) != trace.span_id_for("attempt", "trn-a", 1)
    assert trace.span_id_for("subtask", "trn-a") != trace.span_id_for("attempt", "trn-a", 0)
    assert 0 < trace.span_id_for("subtask", "trn-a") < 2**64
    # The documented derivation: a change here splits the trees of processes that run
    # two versions of the SDK into two traces.
    digest = hashlib.sha256(b"render-workflows\x1ftrace\x1ftrn-a").digest()
    assert trace.trace_id_for("trn-a") == int.from_bytes(digest[:16], "big")
    digest = hashlib.sha256(b"render-workflows\x1fspan\x1fsubtask\x1ftrn-a").digest()
    assert trace.span_id_for("subtask", "trn-a") == int.from_bytes(digest[:8], "big")


@given(st.text(min_size=1, max_size=40))
def test_ids_are_never_zero(run_id: str) -> None:
    assert trace.trace_id_for(run_id) > 0
    assert trace.span_id_for("subtask", run_id) > 0


@pytest.mark.parametrize("now_ms", [0, 10, 5000])
def test_open_segments_end_at_now(now_ms: int) -> None:
    segment = Segment(kind=ATTEMPT, start=at(10), end=None, attempt=0, status=Status.RUNNING)
    run = TimelineRun(
        id="trn-r", task_name="r", status=Status.RUNNING, parent_id="", segments=[segment]
    )
    document = trace.chrome_trace([run], now=at(now_ms), root_id="trn-r")
    check_trace(document)
    (event,) = [e for e in document["traceEvents"] if e.get("cat") == ATTEMPT]
    assert event["dur"] == max(0, (now_ms - 10) * 1000)
