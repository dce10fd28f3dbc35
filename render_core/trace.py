"""What a run tree did, in time: the segments of each run, a trace-event file, trace ids.

Theory of operation
-------------------
The REST API already says when things happened: each attempt of a run has
``enqueuedAt`` (when it was queued, or when a retry became due), ``startedAt`` and
``completedAt``. :func:`run_segments` turns one run into consecutive segments on a
time axis:

- ``queued``: waiting for a slot (from creation, or from the moment a retry was due,
  until the attempt started);
- ``attempt``: one attempt running, with its status and error;
- ``retry-wait``: the back-off between a failed attempt and the moment its retry
  became due.

A segment whose end is not known yet (the run is still going) has ``end=None``; the
caller decides what "now" is. The dev server can say a little more than the public
API (when a run was created before any attempt started, when the next retry is
due) and passes it in as keyword arguments.

:func:`chrome_trace` lays a whole tree out as a Chrome trace-event file (the JSON
object format that Perfetto and ``chrome://tracing`` open): one process for the
tree, one thread per run (parents before their children), a complete event
(``"ph": "X"``) for each run and each of its segments, and a flow arrow from the
parent's thread to each subtask.

:func:`trace_id_for` and :func:`span_id_for` derive OpenTelemetry ids from run ids,
so that every process of one tree names the same trace without anything new on the
wire.

Everything here is pure: models and datetimes in, values out. Nothing reads a clock.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from render_core import models
from render_core.codec import format_timestamp
from render_core.models import TaskRunStatus

__all__ = [
    "ATTEMPT",
    "QUEUED",
    "RETRY_WAIT",
    "Segment",
    "TimelineRun",
    "chrome_trace",
    "run_segments",
    "segment_json",
    "span_id_for",
    "trace_id_for",
]

QUEUED: Final = "queued"
ATTEMPT: Final = "attempt"
RETRY_WAIT: Final = "retry-wait"

_MICROSECOND = _dt.timedelta(microseconds=1)
# The process id every event of a tree shares (one process per file).
TRACE_PID: Final = 1


@attrs.frozen(kw_only=True)
class Segment:
    """One stretch of a run's life; ``end`` is None while it is still going on."""

    kind: str
    start: _dt.datetime
    end: _dt.datetime | None
    attempt: int | None = None
    """The attempt number (from 0) for ``attempt`` segments and the wait/queue before one."""
    status: TaskRunStatus | None = None
    error: str | None = None


def _attempt_number(attempt: models.TaskAttempt | models.TaskAttemptDetails, index: int) -> int:
    number = attempt.attempt
    return number if isinstance(number, int) else index


def run_segments(
    run: models.TaskRun | models.TaskRunDetails,
    *,
    created_at: _dt.datetime | None = None,
    next_enqueued_at: _dt.datetime | None = None,
) -> list[Segment]:
    """The consecutive segments of ``run`` (see the module docstring), oldest first.

    ``created_at`` places the wait of a run whose first attempt has not started (the
    public API has no creation time); ``next_enqueued_at`` is when a run that is
    waiting after a failed attempt becomes due again. Without them, such waits are
    left out or reported as one ``retry-wait`` up to "now".
    """
    segments: list[Segment] = []
    terminal = run.status.is_terminal
    run_end = run.completed_at if terminal else None
    attempts: Sequence[models.TaskAttempt | models.TaskAttemptDetails] = run.attempts
    started = [
        (index, attempt) for index, attempt in enumerate(attempts) if attempt.started_at is not None
    ]
    started.sort(key=lambda pair: (pair[1].started_at, _attempt_number(pair[1], pair[0])))
    previous_end: _dt.datetime | None = None
    for position, (index, attempt) in enumerate(started):
        number = _attempt_number(attempt, index)
        begin = attempt.started_at
        assert begin is not None
        queued_from = attempt.enqueued_at
        if position == 0:
            queued_from = queued_from or created_at
        elif previous_end is not None:
            due = queued_from if queued_from is not None else previous_end
            due = min(max(due, previous_end), begin)
            if due > previous_end:
                segments.append(
                    Segment(kind=RETRY_WAIT, start=previous_end, end=due, attempt=number)
                )
            queued_from = due
        if queued_from is not None and queued_from < begin:
            segments.append(Segment(kind=QUEUED, start=queued_from, end=begin, attempt=number))
        end = attempt.completed_at or run_end
        segments.append(
            Segment(
                kind=ATTEMPT,
                start=begin,
                end=end,
                attempt=number,
                status=attempt.status,
                error=getattr(attempt, "error", None),
            )
        )
        previous_end = end
    if not started:
        if created_at is not None:
            segments.append(Segment(kind=QUEUED, start=created_at, end=run_end, attempt=0))
        return segments
    if previous_end is None:
        return segments  # an attempt still running
    waiting = run.status is TaskRunStatus.PENDING or (
        run_end is not None and run_end > previous_end
    )
    if not waiting:
        return segments
    next_number = _attempt_number(started[-1][1], started[-1][0]) + 1
    if next_enqueued_at is not None and next_enqueued_at > previous_end:
        due = next_enqueued_at
        wait_end = due if run_end is None else min(due, run_end)
        segments.append(
            Segment(kind=RETRY_WAIT, start=previous_end, end=wait_end, attempt=next_number)
        )
        if run_end is None or run_end > due:
            segments.append(Segment(kind=QUEUED, start=due, end=run_end, attempt=next_number))
    else:
        segments.append(
            Segment(kind=RETRY_WAIT, start=previous_end, end=run_end, attempt=next_number)
        )
    return segments


def _iso(value: _dt.datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def segment_json(segment: Segment) -> dict[str, Any]:
    """A segment as camelCase JSON (times as RFC 3339, ``end`` null while open)."""
    return {"kind": segment.kind, **_segment_fields(segment)}


def _segment_fields(segment: Segment) -> dict[str, Any]:
    """``start``, ``end`` and what is set of ``attempt``, ``status``, ``error``."""
    fields: dict[str, Any] = {"start": _iso(segment.start), "end": _iso(segment.end)}
    if segment.attempt is not None:
        fields["attempt"] = segment.attempt
    if segment.status is not None:
        fields["status"] = segment.status.value
    if segment.error is not None:
        fields["error"] = segment.error
    return fields


@attrs.frozen(kw_only=True)
class TimelineRun:
    """One run of a tree, as :func:`chrome_trace` lays it out."""

    id: str
    task_name: str
    status: TaskRunStatus
    parent_id: str
    segments: Sequence[Segment]


def _tree_order(runs: Sequence[TimelineRun]) -> list[TimelineRun]:
    """Depth first from the roots, children in the order given; nothing is dropped."""
    ids = {run.id for run in runs}
    children: dict[str, list[TimelineRun]] = {}
    roots: list[TimelineRun] = []
    for run in runs:
        if run.parent_id and run.parent_id in ids and run.parent_id != run.id:
            children.setdefault(run.parent_id, []).append(run)
        else:
            roots.append(run)
    ordered: list[TimelineRun] = []
    seen: set[str] = set()
    stack = list(reversed(roots))
    while stack:
        run = stack.pop()
        if run.id in seen:
            continue
        seen.add(run.id)
        ordered.append(run)
        stack.extend(reversed(children.get(run.id, [])))
    ordered.extend(run for run in runs if run.id not in seen)  # a cycle: keep them anyway
    return ordered


_SEGMENT_NAMES = {QUEUED: "queued", ATTEMPT: "attempt", RETRY_WAIT: "retry wait"}


def chrome_trace(
    runs: Sequence[TimelineRun],
    *,
    now: _dt.datetime,
    root_id: str,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The tree as a trace-event JSON object (see the module docstring).

    Times are microseconds from the earliest segment; ``otherData.startTime`` says
    when that was. Open segments end at ``now``. ``metadata`` is added to
    ``otherData``.
    """
    ordered = _tree_order(runs)
    starts = [segment.start for run in ordered for segment in run.segments]
    base = min(starts) if starts else now

    def micros(value: _dt.datetime) -> int:
        return (value - base) // _MICROSECOND

    events: list[dict[str, Any]] = [
        {
            "name": "process_name",
            "ph": "M",
            "pid": TRACE_PID,
            "tid": 0,
            "args": {"name": f"task run tree {root_id}"},
        }
    ]
    tids: dict[str, int] = {}
    first_ts: dict[str, int] = {}
    for index, run in enumerate(ordered, 1):
        tids[run.id] = index
        events.append(
            {
                "name": "thread_name",
                "ph": "M",
                "pid": TRACE_PID,
                "tid": index,
                "args": {"name": f"{run.task_name} {run.id}"},
            }
        )
        events.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": TRACE_PID,
                "tid": index,
                "args": {"sort_index": index},
            }
        )
        if not run.segments:
            continue
        spans = [
            (micros(s.start), micros(s.end if s.end is not None else max(now, s.start)), s)
            for s in run.segments
        ]
        run_start = min(start for start, _, _ in spans)
        run_end = max(end for _, end, _ in spans)
        first_ts[run.id] = run_start
        events.append(
            {
                "name": run.task_name,
                "cat": "run",
                "ph": "X",
                "ts": run_start,
                "dur": max(0, run_end - run_start),
                "pid": TRACE_PID,
                "tid": index,
                "args": {
                    "taskRunId": run.id,
                    "status": run.status.value,
                    "parentTaskRunId": run.parent_id,
                },
            }
        )
        for start, end, segment in spans:
            name = _SEGMENT_NAMES.get(segment.kind, segment.kind)
            if segment.kind == ATTEMPT and segment.attempt is not None:
                name = f"attempt {segment.attempt + 1}"
            args: dict[str, Any] = {"taskRunId": run.id, **_segment_fields(segment)}
            if segment.end is None:
                args["unfinished"] = True
            events.append(
                {
                    "name": name,
                    "cat": segment.kind,
                    "ph": "X",
                    "ts": start,
                    "dur": max(0, end - start),
                    "pid": TRACE_PID,
                    "tid": index,
                    "args": args,
                }
            )
    flow_id = 0
    for run in ordered:
        parent_tid = tids.get(run.parent_id) if run.parent_id != run.id else None
        if parent_tid is None or run.id not in first_ts:
            continue
        flow_id += 1
        ts = first_ts[run.id]
        common = {"name": "subtask", "cat": "subtask", "id": flow_id, "pid": TRACE_PID, "ts": ts}
        events.append({**common, "ph": "s", "tid": parent_tid})
        events.append({**common, "ph": "f", "bp": "e", "tid": tids[run.id]})
    other: dict[str, Any] = {
        "rootTaskRunId": root_id,
        "startTime": format_timestamp(base),
        "runs": len(ordered),
    }
    other.update(metadata or {})
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}


# -- OpenTelemetry ids ------------------------------------------------------------------


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(("render-workflows", *parts)).encode()).digest()


def trace_id_for(root_run_id: str) -> int:
    """The 128-bit trace id of the tree whose root run is ``root_run_id`` (never 0)."""
    value = int.from_bytes(_digest("trace", root_run_id)[:16], "big")
    return value or 1


def span_id_for(kind: str, run_id: str, number: int | None = None) -> int:
    """A 64-bit span id for ``kind`` of ``run_id`` (attempt ``number``), never 0.

    Two processes that know the same run id compute the same span id: that is how
    a subtask's attempts find the span of the call that started them.
    """
    parts: Iterable[str] = (kind, run_id) if number is None else (kind, run_id, str(number))
    value = int.from_bytes(_digest("span", *parts)[:8], "big")
    return value or 1
