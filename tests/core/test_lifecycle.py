"""The server-side run lifecycle, with the official dev server's retry,
attempt-number and cancel bugs fixed.

Pure and clock-free: every ``now`` is a fixed datetime passed in. Three layers:
tables for each transition, the full (status, transition) grid checked against
``TRANSITIONS``, and an h2-style Hypothesis machine that throws every input at
every reachable state and accepts either a valid transition or a clean
``LifecycleError`` that leaves the run unchanged.
"""

from __future__ import annotations

import datetime as _dt
import itertools
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from render_core import codec
from render_core.lifecycle import (
    DEFAULT_POLICY,
    DEFAULT_TIMEOUT_SECONDS,
    TRANSITIONS,
    LifecycleError,
    RetryPolicy,
    Run,
    cancel,
    complete,
    fail_attempt,
    is_due,
    new_run,
    start_attempt,
    to_details,
    to_summary,
)
from render_core.models import TaskRunDetails
from render_core.models import TaskRunStatus as Status

T0 = _dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=_dt.timezone.utc)


def at(seconds: float) -> _dt.datetime:
    return T0 + _dt.timedelta(seconds=seconds)


def fresh(
    policy: RetryPolicy | None = None, run_id: str = "trn-root", parent: Run | None = None
) -> Run:
    return new_run(
        run_id=run_id,
        task_id="tsk-square",
        task_name="square",
        input_data=[2],
        now=T0,
        policy=policy,
        parent=parent,
    )


# The five statuses a run can reach, each built with the lifecycle functions only.
NO_RETRY = RetryPolicy(max_retries=0, wait_duration_ms=0, factor=1.0)
ONE_RETRY = RetryPolicy(max_retries=1, wait_duration_ms=1000, factor=2.0)

REACHABLE: dict[str, Callable[[], Run]] = {
    "pending": fresh,
    "pending-between-retries": lambda: fail_attempt(
        start_attempt(fresh(ONE_RETRY), at(1)), "boom", at(2)
    ),
    "running": lambda: start_attempt(fresh(), at(1)),
    "completed": lambda: complete(start_attempt(fresh(), at(1)), [4], at(2)),
    "failed": lambda: fail_attempt(start_attempt(fresh(NO_RETRY), at(1)), "boom", at(2)),
    "canceled-from-pending": lambda: cancel(fresh(), at(1)),
    "canceled-from-running": lambda: cancel(start_attempt(fresh(), at(1)), at(2)),
}

LATER = at(100)
TRANSITION_FUNCTIONS: dict[str, Callable[[Run], Run]] = {
    "start": lambda run: start_attempt(run, LATER),
    "complete": lambda run: complete(run, [1], LATER),
    "fail": lambda run: fail_attempt(run, "late failure", LATER),
    "cancel": lambda run: cancel(run, LATER),
}

REACHABLE_STATUSES = frozenset(
    {Status.PENDING, Status.RUNNING, Status.COMPLETED, Status.FAILED, Status.CANCELED}
)
DOCUMENTED_STATUSES = {
    "pending",
    "running",
    "completed",
    "succeeded",
    "failed",
    "canceled",
    "paused",
}


# --- the transition table ---------------------------------------------------------


def test_transition_table_is_the_documented_one() -> None:
    assert set(TRANSITIONS) == {
        (Status.PENDING, "start"),
        (Status.RUNNING, "complete"),
        (Status.RUNNING, "fail"),
        (Status.PENDING, "cancel"),
        (Status.RUNNING, "cancel"),
    }
    assert {name for _, name in TRANSITIONS} == set(TRANSITION_FUNCTIONS)


def test_reachable_builders_cover_the_five_statuses() -> None:
    assert {build().status for build in REACHABLE.values()} == REACHABLE_STATUSES


@pytest.mark.parametrize(
    ("state", "transition"), list(itertools.product(REACHABLE, TRANSITION_FUNCTIONS))
)
def test_every_status_transition_pair(state: str, transition: str) -> None:
    run = REACHABLE[state]()
    apply = TRANSITION_FUNCTIONS[transition]
    if (run.status, transition) in TRANSITIONS:
        after = apply(run)
        assert after.id == run.id
        assert after != run
    else:
        with pytest.raises(LifecycleError) as caught:
            apply(run)
        message = str(caught.value)
        assert message == f"task run {run.id} is {run.status.value}: cannot {transition} it"


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.PAUSED])
@pytest.mark.parametrize("transition", list(TRANSITION_FUNCTIONS))
def test_statuses_the_server_never_produces_allow_nothing(status: Status, transition: str) -> None:
    run = attrs.evolve(start_attempt(fresh(), at(1)), status=status)
    with pytest.raises(LifecycleError, match=f"trn-root is {status.value}"):
        TRANSITION_FUNCTIONS[transition](run)


# --- new_run ----------------------------------------------------------------------


def test_new_root_run() -> None:
    run = new_run(
        run_id="trn-1",
        task_id="tsk-1",
        task_name="square",
        input_data={"x": 2},
        now=T0,
        idempotency_key="key-1",
    )
    assert run == Run(
        id="trn-1",
        task_id="tsk-1",
        task_name="square",
        input={"x": 2},
        status=Status.PENDING,
        created_at=T0,
        enqueued_at=T0,
        policy=DEFAULT_POLICY,
        timeout_seconds=DEFAULT_TIMEOUT_SECONDS,
        parent_id="",
        root_id="trn-1",
        parent_attempt=None,
        idempotency_key="key-1",
    )
    assert run.root_id == run.id
    assert run.current_attempt is None
    assert run.retries == 0
    assert not run.is_terminal


def test_new_run_keeps_an_explicit_policy_and_timeout() -> None:
    policy = RetryPolicy(max_retries=1, wait_duration_ms=10, factor=1.5)
    run = new_run(
        run_id="trn-1",
        task_id="tsk-1",
        task_name="t",
        input_data=[],
        now=T0,
        policy=policy,
        timeout_seconds=30,
    )
    assert (run.policy, run.timeout_seconds) == (policy, 30)


def test_subtask_records_parent_root_and_the_parents_attempt() -> None:
    root = start_attempt(fresh(ONE_RETRY), at(1))
    root = start_attempt(fail_attempt(root, "boom", at(2)), at(4))  # now on attempt 1
    child = start_attempt(fresh(run_id="trn-child", parent=root), at(5))
    grandchild = fresh(run_id="trn-grandchild", parent=child)
    assert (child.parent_id, child.root_id, child.parent_attempt) == ("trn-root", "trn-root", 1)
    assert (grandchild.parent_id, grandchild.root_id, grandchild.parent_attempt) == (
        "trn-child",
        "trn-root",
        0,
    )


def test_subtask_of_a_parent_without_root_or_attempts() -> None:
    # A hand-built parent (older documents): its own id is the root, no attempt known.
    parent = attrs.evolve(fresh(run_id="trn-p"), root_id="")
    child = fresh(run_id="trn-c", parent=parent)
    assert (child.parent_id, child.root_id, child.parent_attempt) == ("trn-p", "trn-p", None)


def test_default_policy_is_retry_3_1000ms_x2() -> None:
    assert RetryPolicy(max_retries=3, wait_duration_ms=1000, factor=2.0) == DEFAULT_POLICY
    assert fresh().policy is DEFAULT_POLICY
    assert [DEFAULT_POLICY.delay_seconds(n) for n in range(3)] == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (RetryPolicy(max_retries=3, wait_duration_ms=1000, factor=2.0), [1.0, 2.0, 4.0, 8.0]),
        (RetryPolicy(max_retries=3, wait_duration_ms=500, factor=1.0), [0.5, 0.5, 0.5, 0.5]),
        (RetryPolicy(max_retries=3, wait_duration_ms=1000, factor=1.5), [1.0, 1.5, 2.25, 3.375]),
        (RetryPolicy(max_retries=3, wait_duration_ms=0, factor=3.0), [0.0, 0.0, 0.0, 0.0]),
        # A task may scale its delays down (``backoff_scaling`` below 1), or to nothing.
        (RetryPolicy(max_retries=3, wait_duration_ms=2000, factor=0.5), [2.0, 1.0, 0.5, 0.25]),
        (RetryPolicy(max_retries=3, wait_duration_ms=2000, factor=0.0), [2.0, 0.0, 0.0, 0.0]),
        (RetryPolicy(max_retries=3, wait_duration_ms=300, factor=1.5), [0.3, 0.45, 0.675, 1.0125]),
    ],
)
def test_delay_seconds(policy: RetryPolicy, expected: list[float]) -> None:
    assert [policy.delay_seconds(n) for n in range(4)] == expected


# --- start_attempt ----------------------------------------------------------------


def test_attempts_count_from_zero_and_keep_the_first_start() -> None:
    policy = RetryPolicy(max_retries=2, wait_duration_ms=1000, factor=2.0)
    run = start_attempt(fresh(policy), at(1))
    run = start_attempt(fail_attempt(run, "e0", at(2)), at(3))  # retry_at was at(3)
    run = start_attempt(fail_attempt(run, "e1", at(4)), at(6))  # retry_at was at(6)
    assert [a.number for a in run.attempts] == [0, 1, 2]
    assert [a.started_at for a in run.attempts] == [at(1), at(3), at(6)]
    # Each attempt was enqueued when the run (or its retry) became due.
    assert [a.enqueued_at for a in run.attempts] == [T0, at(3), at(6)]
    assert [a.status for a in run.attempts] == [Status.FAILED, Status.FAILED, Status.RUNNING]
    assert run.started_at == at(1)
    assert run.status is Status.RUNNING
    assert run.retry_at is None
    assert run.current_attempt is run.attempts[-1]
    assert run.retries == 2


def test_start_attempt_without_enqueued_at_uses_now() -> None:
    run = start_attempt(attrs.evolve(fresh(), enqueued_at=None), at(7))
    assert run.attempts[0].enqueued_at == at(7)


# --- complete ---------------------------------------------------------------------


def test_complete() -> None:
    results: list[Any] = [4, {"a": [1]}]
    run = complete(start_attempt(fresh(), at(1)), results, at(2))
    results.append("mutated later")
    assert run.status is Status.COMPLETED
    assert run.results == [4, {"a": [1]}]
    assert run.error is None
    assert run.completed_at == at(2)
    assert run.is_terminal
    (attempt,) = run.attempts
    assert (attempt.status, attempt.completed_at, attempt.results, attempt.error) == (
        Status.COMPLETED,
        at(2),
        [4, {"a": [1]}],
        None,
    )


def test_complete_after_a_failed_attempt_keeps_the_failure_in_history() -> None:
    run = start_attempt(fail_attempt(start_attempt(fresh(ONE_RETRY), at(1)), "e0", at(2)), at(3))
    run = complete(run, [1], at(4))
    assert [(a.status, a.error) for a in run.attempts] == [
        (Status.FAILED, "e0"),
        (Status.COMPLETED, None),
    ]
    assert (run.error, run.results, run.retries) == (None, [1], 1)


# --- fail_attempt -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "delays"),
    [
        (DEFAULT_POLICY, [1.0, 2.0, 4.0]),
        (RetryPolicy(max_retries=2, wait_duration_ms=1500, factor=1.5), [1.5, 2.25]),
        (RetryPolicy(max_retries=1, wait_duration_ms=0, factor=2.0), [0.0]),
        (NO_RETRY, []),
    ],
)
def test_fail_attempt_retries_then_gives_up(policy: RetryPolicy, delays: list[float]) -> None:
    run = fresh(policy)
    now = 10.0
    for n, delay in enumerate(delays):
        run = fail_attempt(start_attempt(run, at(now)), f"error {n}", at(now + 1))
        # A retry is pending, not a failure anybody can see (G item 25).
        assert run.status is Status.PENDING
        assert not run.is_terminal
        assert run.retry_at == at(now + 1 + delay)
        assert run.enqueued_at == run.retry_at
        assert run.error is None
        assert run.completed_at is None
        assert run.results is None
        last = run.attempts[-1]
        assert (last.number, last.status, last.error, last.completed_at) == (
            n,
            Status.FAILED,
            f"error {n}",
            at(now + 1),
        )
        if delay:
            assert not is_due(run, at(now + 1 + delay) - _dt.timedelta(microseconds=1))
        assert is_due(run, at(now + 1 + delay))
        now += 1 + delay
    run = fail_attempt(start_attempt(run, at(now)), "final", at(now + 1))
    assert run.status is Status.FAILED
    assert run.error == "final"
    assert run.completed_at == at(now + 1)
    assert len(run.attempts) == policy.max_retries + 1
    assert all(a.status is Status.FAILED for a in run.attempts)
    assert run.retries == policy.max_retries


# --- cancel -----------------------------------------------------------------------


def test_cancel_a_fresh_pending_run() -> None:
    run = cancel(fresh(), at(1))
    assert (run.status, run.completed_at, run.attempts, run.retry_at, run.error) == (
        Status.CANCELED,
        at(1),
        (),
        None,
        None,
    )


def test_cancel_between_retries_clears_the_retry() -> None:
    waiting = fail_attempt(start_attempt(fresh(ONE_RETRY), at(1)), "boom", at(2))
    assert waiting.retry_at is not None
    run = cancel(waiting, at(2.5))
    assert run.status is Status.CANCELED
    assert run.retry_at is None
    assert run.attempts == waiting.attempts  # the failed attempt stays as it was
    assert not is_due(run, at(1000))


def test_cancel_a_running_run_cancels_its_attempt() -> None:
    before = start_attempt(fail_attempt(start_attempt(fresh(ONE_RETRY), at(1)), "e", at(2)), at(3))
    run = cancel(before, at(5))
    assert run.status is Status.CANCELED
    assert run.completed_at == at(5)
    assert run.attempts[0] == before.attempts[0]
    assert (run.attempts[1].status, run.attempts[1].completed_at) == (Status.CANCELED, at(5))
    assert run.error is None


# --- is_due -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "when", "due"),
    [
        ("pending", T0, True),
        ("pending-between-retries", at(2.999), False),
        ("pending-between-retries", at(3), True),  # failed at 2 s, waits 1 s
        ("pending-between-retries", at(60), True),
        ("running", at(60), False),
        ("completed", at(60), False),
        ("failed", at(60), False),
        ("canceled-from-pending", at(60), False),
    ],
)
def test_is_due(state: str, when: _dt.datetime, due: bool) -> None:
    assert is_due(REACHABLE[state](), when) is due


# --- the wire shape -------------------------------------------------

SUMMARY_KEYS = {
    "id",
    "taskId",
    "status",
    "parentTaskRunId",
    "rootTaskRunId",
    "retries",
    "attempts",
}
DETAILS_KEYS = SUMMARY_KEYS | {"results", "input"}
ATTEMPT_KEYS = {"attempt", "status", "startedAt"}


def check_wire(run: Run) -> None:
    """Both wire forms of ``run`` carry every key the API schemas make required."""
    summary = codec.unstructure(to_summary(run))
    details = codec.unstructure(to_details(run))
    assert summary.keys() >= SUMMARY_KEYS
    assert details.keys() >= DETAILS_KEYS
    for body in (summary, details):
        assert body["id"] == run.id
        assert body["status"] in DOCUMENTED_STATUSES
        assert body["retries"] == max(0, len(run.attempts) - 1)
        assert body["rootTaskRunId"] == (run.root_id or run.id)
        assert body["parentTaskRunId"] == run.parent_id
        if run.parent_id:
            assert body["parentTaskAttempt"] == run.parent_attempt
        else:
            assert body["parentTaskRunId"] == ""
            assert body["rootTaskRunId"] == run.id
            assert "parentTaskAttempt" not in body
        assert [a["attempt"] for a in body["attempts"]] == list(range(len(run.attempts)))
        for wire_attempt in body["attempts"]:
            assert wire_attempt.keys() >= ATTEMPT_KEYS
            assert wire_attempt["status"] in DOCUMENTED_STATUSES
            assert wire_attempt["taskRunId"] == run.id
            codec.parse_timestamp(wire_attempt["startedAt"])
    assert details["input"] == run.input
    if run.status is Status.COMPLETED:
        assert details["results"] == run.results
    else:
        assert details["results"] == []
    assert details.get("error") == run.error
    for attempt, wire_attempt in zip(run.attempts, details["attempts"], strict=True):
        assert wire_attempt.get("error") == attempt.error
        assert ("results" in wire_attempt) is (attempt.status is Status.COMPLETED)
    # Our own REST parser reads it back.
    parsed = codec.structure(details, TaskRunDetails)
    assert (parsed.status, parsed.retries) == (run.status, run.retries)


@pytest.mark.parametrize("state", list(REACHABLE))
def test_wire_shape_of_every_reachable_state(state: str) -> None:
    check_wire(REACHABLE[state]())


def test_wire_shape_of_a_subtask() -> None:
    root = start_attempt(fresh(), at(1))
    child = complete(start_attempt(fresh(run_id="trn-c", parent=root), at(2)), [1], at(3))
    check_wire(child)
    body = codec.unstructure(to_summary(child))
    assert (body["parentTaskRunId"], body["rootTaskRunId"], body["parentTaskAttempt"]) == (
        "trn-root",
        "trn-root",
        0,
    )


def test_wire_example_failed_after_one_retry() -> None:
    """The API documentation's second example, produced by the lifecycle."""
    start = _dt.datetime(2026, 8, 20, 12, 0, 0, tzinfo=_dt.timezone.utc)
    second = _dt.timedelta(seconds=1)
    run = new_run(
        run_id="trn-d2k4l6o2j5r3ldc4k0ug",
        task_id="tsk-d2k4l4g2j5r3ldc4k0t0",
        task_name="divide",
        input_data=[2, 0],
        now=start,
        policy=RetryPolicy(max_retries=1, wait_duration_ms=1000, factor=2.0),
    )
    run = fail_attempt(start_attempt(run, start), "division by zero", start + second)
    assert run.retry_at == start + 2 * second
    run = fail_attempt(
        start_attempt(run, start + 2 * second), "division by zero", start + 3 * second
    )
    body = codec.unstructure(to_details(run))
    for attempt in body["attempts"]:
        # Keys the example leaves out (optional in the attempt schema).
        del attempt["enqueuedAt"], attempt["taskRunId"]
    assert body == {
        "id": "trn-d2k4l6o2j5r3ldc4k0ug",
        "taskId": "tsk-d2k4l4g2j5r3ldc4k0t0",
        "status": "failed",
        "results": [],
        "input": [2, 0],
        "error": "division by zero",
        "startedAt": "2026-08-20T12:00:00.000000Z",
        "completedAt": "2026-08-20T12:00:03.000000Z",
        "parentTaskRunId": "",
        "rootTaskRunId": "trn-d2k4l6o2j5r3ldc4k0ug",
        "retries": 1,
        "attempts": [
            {
                "attempt": 0,
                "status": "failed",
                "startedAt": "2026-08-20T12:00:00.000000Z",
                "completedAt": "2026-08-20T12:00:01.000000Z",
                "error": "division by zero",
            },
            {
                "attempt": 1,
                "status": "failed",
                "startedAt": "2026-08-20T12:00:02.000000Z",
                "completedAt": "2026-08-20T12:00:03.000000Z",
                "error": "division by zero",
            },
        ],
    }


def test_pending_retry_shows_the_failed_attempt_but_no_run_error() -> None:
    """G item 25: a retried failure is visible in the attempts, never as the run's error."""
    body = codec.unstructure(to_details(REACHABLE["pending-between-retries"]()))
    assert body["status"] == "pending"
    assert "error" not in body
    assert "completedAt" not in body
    assert body["attempts"][0]["status"] == "failed"
    assert body["attempts"][0]["error"] == "boom"


# --- every (state, input) pair, at random (h2's test_state_machines model) ----------

json_results = st.lists(st.integers() | st.text(max_size=5) | st.none(), max_size=3)


class LifecycleMachine(RuleBasedStateMachine):
    """Random inputs against one run: a valid transition or a clean LifecycleError."""

    run: Run
    now: _dt.datetime

    @initialize(
        max_retries=st.integers(0, 4),
        wait=st.integers(0, 5000),
        factor=st.integers(1, 3).map(float) | st.floats(1.0, 3.0),
        as_subtask=st.booleans(),
    )
    def setup(self, max_retries: int, wait: int, factor: float, as_subtask: bool) -> None:
        self.policy = RetryPolicy(max_retries=max_retries, wait_duration_ms=wait, factor=factor)
        self.now = T0
        parent = start_attempt(fresh(run_id="trn-parent"), T0) if as_subtask else None
        self.run = fresh(self.policy, run_id="trn-x", parent=parent)
        self.terminal: Run | None = None
        self.retry_ats: list[_dt.datetime] = []

    def _apply(self, transition: str, apply: Callable[[Run], Run]) -> Run | None:
        before = self.run
        allowed = (before.status, transition) in TRANSITIONS
        refusal: str | None = None
        try:
            after = apply(before)
        except LifecycleError as exc:
            refusal = str(exc)
        if refusal is not None:
            assert not allowed, f"{transition} refused from {before.status}"
            assert refusal.startswith(f"task run trn-x is {before.status.value}: cannot")
            return None
        assert allowed, f"{transition} accepted from {before.status}"
        assert after.id == before.id
        assert after.created_at == before.created_at
        # Only the last attempt ever changes; earlier ones are history.
        kept = max(0, len(before.attempts) - 1)
        assert after.attempts[:kept] == before.attempts[:kept]
        self.run = after
        if after.is_terminal:
            self.terminal = after
        return after

    @rule(seconds=st.sampled_from([0, 0.001, 0.5, 1, 2, 5, 30]))
    def advance(self, seconds: float) -> None:
        self.now += _dt.timedelta(seconds=seconds)

    @rule()
    def start(self) -> None:
        before = self.run
        after = self._apply("start", lambda run: start_attempt(run, self.now))
        if after is not None:
            assert after.status is Status.RUNNING
            assert len(after.attempts) == len(before.attempts) + 1
            assert after.attempts[-1].number == len(before.attempts)
            assert after.attempts[-1].started_at == self.now
            assert after.started_at == (before.started_at or self.now)
            assert after.retry_at is None

    @rule(results=json_results)
    def complete(self, results: list[Any]) -> None:
        after = self._apply("complete", lambda run: complete(run, results, self.now))
        if after is not None:
            assert (after.status, after.results, after.completed_at) == (
                Status.COMPLETED,
                results,
                self.now,
            )

    @rule(error=st.text(min_size=1, max_size=10))
    def fail(self, error: str) -> None:
        after = self._apply("fail", lambda run: fail_attempt(run, error, self.now))
        if after is None:
            return
        assert after.attempts[-1].error == error
        retry_number = len(after.attempts) - 1
        if retry_number < self.policy.max_retries:
            assert after.status is Status.PENDING
            assert after.retry_at is not None
            expected_ms = self.policy.wait_duration_ms * self.policy.factor**retry_number
            waited = (after.retry_at - self.now) / _dt.timedelta(milliseconds=1)
            assert waited == pytest.approx(expected_ms, abs=0.001)
            self.retry_ats.append(after.retry_at)
        else:
            assert (after.status, after.error, after.completed_at) == (
                Status.FAILED,
                error,
                self.now,
            )

    @rule(error=st.text(min_size=1, max_size=10), seconds=st.sampled_from([0, 1, 5]))
    def failing_attempt(self, error: str, seconds: float) -> None:
        """Start, run a while, fail: reaches the deep retry states in few steps."""
        self.start()
        self.advance(seconds)
        self.fail(error)

    @rule()
    def cancel(self) -> None:
        before = self.run
        after = self._apply("cancel", lambda run: cancel(run, self.now))
        if after is not None:
            assert (after.status, after.completed_at, after.retry_at) == (
                Status.CANCELED,
                self.now,
                None,
            )
            if before.status is Status.RUNNING:
                assert after.attempts[-1].status is Status.CANCELED
            else:
                assert after.attempts == before.attempts

    @invariant()
    def terminal_never_changes(self) -> None:
        if self.terminal is not None:
            assert self.run is self.terminal
            assert self.run.completed_at is not None
            assert not is_due(self.run, self.now)

    @invariant()
    def bounded_attempts(self) -> None:
        assert len(self.run.attempts) <= self.policy.max_retries + 1
        assert [a.number for a in self.run.attempts] == list(range(len(self.run.attempts)))
        assert self.run.retries == max(0, len(self.run.attempts) - 1)

    @invariant()
    def pending_after_a_failure_waits_for_a_retry(self) -> None:
        if self.run.status is Status.PENDING:
            assert (self.run.retry_at is not None) is bool(self.run.attempts)
            assert self.run.error is None
        elif self.run.status is not Status.CANCELED:
            assert self.run.retry_at is None

    @invariant()
    def retry_times_never_go_back(self) -> None:
        assert self.retry_ats == sorted(self.retry_ats)

    @invariant()
    def outcome_matches_status(self) -> None:
        run = self.run
        assert run.status in REACHABLE_STATUSES
        if run.status is Status.COMPLETED:
            assert run.results is not None
            assert run.error is None
            assert run.attempts[-1].status is Status.COMPLETED
        else:
            assert run.results is None
        if run.status is Status.FAILED:
            assert run.error
            assert all(a.status is Status.FAILED for a in run.attempts)
            assert len(run.attempts) == self.policy.max_retries + 1
        else:
            assert run.error is None

    @invariant()
    def only_a_running_run_has_a_running_attempt(self) -> None:
        running = [a for a in self.run.attempts if a.status is Status.RUNNING]
        if self.run.status is Status.RUNNING:
            assert running == [self.run.attempts[-1]]
        else:
            assert running == []
        for attempt in self.run.attempts:
            assert attempt.status in REACHABLE_STATUSES
            assert (attempt.completed_at is None) is (attempt.status is Status.RUNNING)

    @invariant()
    def wire_shape(self) -> None:
        check_wire(self.run)


TestLifecycleMachine = LifecycleMachine.TestCase
TestLifecycleMachine.settings = settings(
    max_examples=150,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_retry_delay_is_capped_and_never_overflows() -> None:
    from render_core.lifecycle import MAX_RETRY_DELAY_SECONDS

    policy = RetryPolicy(max_retries=100, wait_duration_ms=1000, factor=10.0)
    assert policy.delay_seconds(2) == 100.0
    assert policy.delay_seconds(14) == MAX_RETRY_DELAY_SECONDS
    assert policy.delay_seconds(10_000) == MAX_RETRY_DELAY_SECONDS


def test_policy_and_timeout_from_registration() -> None:
    from render_core.lifecycle import (
        DEFAULT_POLICY,
        DEFAULT_TIMEOUT_SECONDS,
        policy_from_registration,
        timeout_from_registration,
    )

    assert policy_from_registration({"name": "t", "options": {}}) == DEFAULT_POLICY
    registered = {"options": {"retry": {"max_retries": 2, "wait_duration_ms": 50, "factor": 3}}}
    assert policy_from_registration(registered) == RetryPolicy(2, 50, 3.0)
    assert policy_from_registration({"options": {"retry": {}}}) == RetryPolicy(0, 0, 2.0)
    assert timeout_from_registration({"options": {"timeout_seconds": 60}}) == 60
    assert timeout_from_registration({}) == DEFAULT_TIMEOUT_SECONDS
