"""``runs logs`` (with ``--follow``) and ``runs watch``: output that keeps coming.

Both poll with plain GETs at a fixed interval: the event stream only announces
finished runs, while these commands also show attempts and log lines as they come.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from render_core.api import LogEntry
from render_core.models import TaskRunDetails
from render_sdk._cli_format import (
    Output,
    TaskNames,
    attempt_count,
    duration,
    log_json,
    outcome,
    table,
    timestamp,
    wire,
)

if TYPE_CHECKING:
    from render_sdk.client.clients import Render

__all__ = ["print_logs", "watch"]

LOG_PAGE = 100
# Pages read in one go before printing what is there and checking again.
MAX_PAGES_PER_CHECK = 50
# How long --follow keeps checking after a run has ended, for its last lines.
SETTLE_SECONDS = 1.0


class _LogReader:
    """Reads a run's log lines oldest first, each line once, across pages and polls."""

    def __init__(self, client: Render, run_id: str, owner_id: str | None) -> None:
        self._client = client
        self._run_id = run_id
        self._owner_id = owner_id
        self._start: _dt.datetime | None = None
        # Lines at or after ``_start`` already printed: the next request starts at
        # that instant, inclusive, so they come back and must be skipped.
        self._seen: dict[object, _dt.datetime | None] = {}

    @staticmethod
    def _key(entry: LogEntry) -> object:
        return entry.id or (entry.timestamp, entry.message, tuple(sorted(entry.labels.items())))

    def fetch(self) -> list[LogEntry]:
        fresh: list[LogEntry] = []
        for _ in range(MAX_PAGES_PER_CHECK):
            page = self._client.workflows.list_logs(
                [self._run_id],
                owner_id=self._owner_id,
                start_time=self._start,
                direction="forward",
                limit=LOG_PAGE,
            )
            new = [entry for entry in page.logs if self._key(entry) not in self._seen]
            for entry in new:
                self._seen[self._key(entry)] = entry.timestamp
            fresh.extend(new)
            times = [entry.timestamp for entry in page.logs if entry.timestamp is not None]
            if page.has_more and page.next_start_time is not None:
                self._start = page.next_start_time
            elif times:
                self._start = max(times)
            if not (page.has_more and new):
                break
        if self._start is not None:
            start = self._start
            self._seen = {key: at for key, at in self._seen.items() if at is None or at >= start}
        return fresh


def _log_line(entry: LogEntry) -> str:
    return f"{timestamp(entry.timestamp, millis=True)}  {entry.message.rstrip(chr(10))}"


def print_logs(
    client: Render,
    run_id: str,
    out: Output,
    *,
    follow: bool,
    owner_id: str | None,
    interval: float,
) -> int:
    """Print a run's output; with ``follow``, until the run has finished and gone quiet."""
    run = client.workflows.get_task_run(run_id)  # an unknown id is an error, not silence
    reader = _LogReader(client, run_id, owner_id)
    if not follow:
        entries = reader.fetch()
        if out.json_mode:
            out.document([log_json(entry) for entry in entries])
        else:
            for entry in entries:
                out.line(_log_line(entry))
        return 0
    ended_at = time.monotonic() if run.status.is_terminal else None
    while True:
        checked_at = time.monotonic()
        new = reader.fetch()
        for entry in new:
            if out.json_mode:
                out.json_line(log_json(entry))
            else:
                out.line(_log_line(entry))
        # Output can be stored just after the run ends: stop at the first check
        # that finds nothing new, made long enough after the end.
        settled = ended_at is not None and checked_at - ended_at >= max(interval, SETTLE_SECONDS)
        if settled and not new:
            return 0
        time.sleep(interval)
        if ended_at is None and client.workflows.get_task_run(run_id).status.is_terminal:
            ended_at = time.monotonic()


def _signature(run: TaskRunDetails) -> tuple[object, ...]:
    return (str(run.status), tuple(str(attempt.status) for attempt in run.attempts))


def _change_line(run: TaskRunDetails, task: str, task_width: int) -> str:
    now = _dt.datetime.now().strftime("%H:%M:%S")
    attempts = f"attempts {attempt_count(run)}"
    parts = [now, run.id, task.ljust(task_width), str(run.status).ljust(9), attempts]
    detail = outcome(run)
    if detail:
        parts.append(detail)
    return "  ".join(parts)


def _screen(runs: Sequence[TaskRunDetails], names: TaskNames) -> list[str]:
    now = _dt.datetime.now(_dt.timezone.utc)
    rows = [
        [
            run.id,
            names(run.task_id),
            str(run.status),
            attempt_count(run),
            duration(run.started_at, run.completed_at, now=now),
            outcome(run, 40),
        ]
        for run in runs
    ]
    done = sum(run.status.is_terminal for run in runs)
    footer = f"{done} of {len(runs)} finished"
    if done < len(runs):
        footer += " (Ctrl-C stops watching; the runs go on)"
    lines = table(["ID", "TASK", "STATUS", "ATTEMPTS", "ELAPSED", "DETAIL"], rows).splitlines()
    width = max(20, shutil.get_terminal_size().columns - 1)
    return [line[:width] for line in [*lines, "", footer]]


def watch(client: Render, run_ids: Sequence[str], out: Output, *, interval: float) -> int:
    """Poll ``run_ids`` until all have finished; 1 if any failed or was canceled."""
    ids = list(dict.fromkeys(run_ids))
    names = TaskNames(client.workflows.list_tasks)
    live = out.is_tty and not out.json_mode
    latest: dict[str, TaskRunDetails] = {}
    shown: dict[str, tuple[object, ...]] = {}
    drawn = 0
    while True:
        changed = []
        for run_id in ids:
            previous = latest.get(run_id)
            if previous is not None and previous.status.is_terminal:
                continue
            run = client.workflows.get_task_run(run_id)
            latest[run_id] = run
            if _signature(run) != shown.get(run_id):
                shown[run_id] = _signature(run)
                changed.append(run)
        runs = [latest[run_id] for run_id in ids]
        if live:
            lines = _screen(runs, names)
            if drawn:
                out.stdout.write(f"\x1b[{drawn}A\r\x1b[J")
            out.line("\n".join(lines))
            drawn = len(lines)
        elif out.json_mode:
            for run in changed:
                out.json_line(wire(run))
        elif changed:
            width = max(len(names(run.task_id)) for run in runs)
            for run in changed:
                out.line(_change_line(run, names(run.task_id), width))
        if all(run.status.is_terminal for run in runs):
            break
        time.sleep(interval)
    unsuccessful = [run for run in runs if not run.status.is_success]
    if not out.json_mode and not live:
        counts: dict[str, int] = {}
        for run in runs:
            counts[str(run.status)] = counts.get(str(run.status), 0) + 1
        summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
        out.line(f"All {len(runs)} finished: {summary}")
    return 1 if unsuccessful else 0
