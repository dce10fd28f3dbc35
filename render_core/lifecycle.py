"""The server side of a run: attempts, retries, timeouts, cancellation, statuses.

A :class:`Run` is a frozen value; each transition is a function from a run (and
``now``) to a new run, allowed only where the table :data:`TRANSITIONS` says so,
otherwise :class:`LifecycleError` (the caller answers 409). The dev server's
scheduler performs the effects (start a process, kill one, wake up later); this
module decides what the run *is*:

- ``pending`` -> ``running``: an attempt starts (attempt numbers count from 0);
- ``running`` -> ``completed``: the attempt reported a result;
- ``running`` -> ``pending`` (a retry is due at ``retry_at``) or ``failed`` (no
  retries left): the attempt failed, timed out, crashed or was interrupted;
- ``pending``/``running`` -> ``canceled``.

A failed attempt that will be retried is never visible as a failed *run*: the run
stays ``pending`` and no terminal event is emitted for it. ``retries`` counts the
attempts started after the first.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any, Final

import attrs

from render_core.backoff import capped_growth
from render_core.models import (
    TaskAttempt,
    TaskAttemptDetails,
    TaskRun,
    TaskRunDetails,
    TaskRunStatus,
)

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_TIMEOUT_SECONDS",
    "TRANSITIONS",
    "Attempt",
    "LifecycleError",
    "RetryPolicy",
    "Run",
    "cancel",
    "complete",
    "fail_attempt",
    "new_run",
    "policy_from_registration",
    "start_attempt",
    "to_details",
    "timeout_from_registration",
    "to_summary",
]

Status = TaskRunStatus

# No wait between attempts is longer than the longest allowed task timeout (24 h).
MAX_RETRY_DELAY_SECONDS: Final = 86_400.0

# The platform's default timeout when a task registers none: 2 hours.
DEFAULT_TIMEOUT_SECONDS: Final = 7200


@attrs.frozen
class RetryPolicy:
    """``max_retries`` further attempts, waiting ``wait_duration_ms * factor**n`` before retry n."""

    max_retries: int = 3
    wait_duration_ms: int = 1000
    factor: float = 2.0

    def delay_seconds(self, retry_number: int) -> float:
        """Capped at :data:`MAX_RETRY_DELAY_SECONDS` (a huge factor never overflows).

        The growth is :func:`render_core.backoff.capped_growth`, the formula of the
        SDK's own backoff, applied in milliseconds as the policy is written.
        """
        cap_ms = MAX_RETRY_DELAY_SECONDS * 1000.0
        return capped_growth(self.wait_duration_ms, self.factor, retry_number, cap_ms) / 1000.0


# What applies when a task registers no retry: Retry(3, 1000 ms, x2).
DEFAULT_POLICY: Final = RetryPolicy()


def policy_from_registration(registration: Mapping[str, Any]) -> RetryPolicy:
    """The retry policy of a registered task (``options.retry``).

    No retry object: :data:`DEFAULT_POLICY`; missing fields: 0 retries, 0 ms, factor 2.
    """
    retry = (registration.get("options") or {}).get("retry")
    if not isinstance(retry, Mapping):
        return DEFAULT_POLICY
    factor = retry.get("factor")
    return RetryPolicy(
        max_retries=int(retry.get("max_retries") or 0),
        wait_duration_ms=int(retry.get("wait_duration_ms") or 0),
        # Without a factor, the documented default of "no Retry object" (2).
        factor=float(factor) if isinstance(factor, int | float) else 2.0,
    )


def timeout_from_registration(registration: Mapping[str, Any]) -> int:
    """``options.timeout_seconds`` of a registered task, or the 2-hour default."""
    value = (registration.get("options") or {}).get("timeout_seconds")
    return int(value) if isinstance(value, int) and value > 0 else DEFAULT_TIMEOUT_SECONDS


class LifecycleError(Exception):
    """A transition that the run's status does not allow (for example canceling a finished run)."""


@attrs.frozen(kw_only=True)
class Attempt:
    number: int
    status: Status
    enqueued_at: _dt.datetime
    started_at: _dt.datetime
    completed_at: _dt.datetime | None = None
    error: str | None = None
    results: list[Any] | None = None


@attrs.frozen(kw_only=True)
class Run:
    id: str
    task_id: str
    task_name: str
    input: list[Any] | dict[str, Any]
    status: Status
    created_at: _dt.datetime
    policy: RetryPolicy = DEFAULT_POLICY
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    parent_id: str = ""
    root_id: str = ""
    parent_attempt: int | None = None
    attempts: tuple[Attempt, ...] = ()
    results: list[Any] | None = None
    error: str | None = None
    started_at: _dt.datetime | None = None
    completed_at: _dt.datetime | None = None
    retry_at: _dt.datetime | None = None
    """When a failed attempt will be retried (the run is ``pending`` until then)."""
    enqueued_at: _dt.datetime | None = None
    idempotency_key: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def current_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def retries(self) -> int:
        return max(0, len(self.attempts) - 1)


# (status, transition) pairs that are allowed; everything else is a LifecycleError.
TRANSITIONS: Final[frozenset[tuple[Status, str]]] = frozenset(
    {
        (Status.PENDING, "start"),
        (Status.RUNNING, "complete"),
        (Status.RUNNING, "fail"),
        (Status.PENDING, "cancel"),
        (Status.RUNNING, "cancel"),
    }
)


def _check(run: Run, transition: str) -> None:
    if (run.status, transition) not in TRANSITIONS:
        raise LifecycleError(f"task run {run.id} is {run.status}: cannot {transition} it")


def new_run(
    *,
    run_id: str,
    task_id: str,
    task_name: str,
    input_data: list[Any] | dict[str, Any],
    now: _dt.datetime,
    policy: RetryPolicy | None = None,
    timeout_seconds: int | None = None,
    parent: Run | None = None,
    idempotency_key: str | None = None,
) -> Run:
    """A new ``pending`` run; a subtask records its parent, root and the parent's attempt."""
    return Run(
        id=run_id,
        task_id=task_id,
        task_name=task_name,
        input=input_data,
        status=Status.PENDING,
        created_at=now,
        enqueued_at=now,
        policy=policy or DEFAULT_POLICY,
        timeout_seconds=timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
        parent_id=parent.id if parent is not None else "",
        root_id=(parent.root_id or parent.id) if parent is not None else run_id,
        parent_attempt=(
            parent.current_attempt.number
            if parent is not None and parent.current_attempt is not None
            else None
        ),
        idempotency_key=idempotency_key,
    )


def is_due(run: Run, now: _dt.datetime) -> bool:
    """A pending run may start now (it is not waiting for a retry's backoff)."""
    return run.status is Status.PENDING and (run.retry_at is None or run.retry_at <= now)


def start_attempt(run: Run, now: _dt.datetime) -> Run:
    """``pending`` -> ``running`` with attempt ``len(attempts)``."""
    _check(run, "start")
    attempt = Attempt(
        number=len(run.attempts),
        status=Status.RUNNING,
        enqueued_at=run.enqueued_at or now,
        started_at=now,
    )
    return attrs.evolve(
        run,
        status=Status.RUNNING,
        attempts=(*run.attempts, attempt),
        started_at=run.started_at or now,
        retry_at=None,
    )


def _close_attempt(run: Run, **changes: Any) -> tuple[Attempt, ...]:
    last = attrs.evolve(run.attempts[-1], **changes)
    return (*run.attempts[:-1], last)


def complete(run: Run, results: list[Any], now: _dt.datetime) -> Run:
    """``running`` -> ``completed`` with ``results`` (the worker's JSON array)."""
    _check(run, "complete")
    return attrs.evolve(
        run,
        status=Status.COMPLETED,
        attempts=_close_attempt(
            run, status=Status.COMPLETED, completed_at=now, results=list(results)
        ),
        results=list(results),
        error=None,
        completed_at=now,
    )


def fail_attempt(run: Run, error: str, now: _dt.datetime) -> Run:
    """The running attempt failed: retry later (``pending``) or give up (``failed``)."""
    _check(run, "fail")
    attempts = _close_attempt(run, status=Status.FAILED, completed_at=now, error=error)
    failed_so_far = len(attempts)
    if failed_so_far <= run.policy.max_retries:
        delay = _dt.timedelta(seconds=run.policy.delay_seconds(failed_so_far - 1))
        return attrs.evolve(
            run,
            status=Status.PENDING,
            attempts=attempts,
            retry_at=now + delay,
            enqueued_at=now + delay,
        )
    return attrs.evolve(run, status=Status.FAILED, attempts=attempts, error=error, completed_at=now)


def cancel(run: Run, now: _dt.datetime) -> Run:
    """``pending``/``running`` -> ``canceled``; a running attempt is marked canceled too."""
    _check(run, "cancel")
    attempts = run.attempts
    if run.status is Status.RUNNING:
        attempts = _close_attempt(run, status=Status.CANCELED, completed_at=now)
    return attrs.evolve(
        run, status=Status.CANCELED, attempts=attempts, completed_at=now, retry_at=None
    )


def _attempt_fields(run: Run, attempt: Attempt) -> dict[str, Any]:
    return {
        "attempt": attempt.number,
        "status": attempt.status,
        "enqueued_at": attempt.enqueued_at,
        "started_at": attempt.started_at,
        "completed_at": attempt.completed_at,
        "task_run_id": run.id,
    }


def _run_fields(run: Run) -> dict[str, Any]:
    """What the summary and the details of a run share, ``attempts`` aside."""
    return {
        "id": run.id,
        "task_id": run.task_id,
        "status": run.status,
        "parent_task_run_id": run.parent_id,
        "root_task_run_id": run.root_id or run.id,
        "retries": run.retries,
        "started_at": run.started_at,
        "completed_at": run.completed_at,
        "parent_task_attempt": run.parent_attempt,
    }


def to_summary(run: Run) -> TaskRun:
    """The wire ``TaskRun``: every required key, ``""`` parent for roots."""
    return TaskRun(
        **_run_fields(run),
        attempts=[TaskAttempt(**_attempt_fields(run, a)) for a in run.attempts],
    )


def to_details(run: Run) -> TaskRunDetails:
    """The wire ``TaskRunDetails`` (see docs/wire-protocol.md#schemas): ``results`` is ``[]``
    unless completed."""
    return TaskRunDetails(
        **_run_fields(run),
        attempts=[
            TaskAttemptDetails(
                **_attempt_fields(run, a),
                error=a.error,
                results=a.results if a.status is Status.COMPLETED else None,
            )
            for a in run.attempts
        ],
        results=list(run.results or []) if run.status is Status.COMPLETED else [],
        input_=run.input,
        error=run.error,
    )
