"""Output of the ``render-workflows`` API commands: tables, times and wire JSON."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

from render_core import codec
from render_core.api import LogEntry
from render_core.errors import RenderError
from render_core.flows import next_page
from render_core.models import (
    ListTasksParams,
    Task,
    TaskAttemptDetails,
    TaskRun,
    TaskRunDetails,
)

__all__ = [
    "Output",
    "TaskNames",
    "all_tasks",
    "attempt_count",
    "compact",
    "duration",
    "first_line",
    "log_json",
    "outcome",
    "run_fields",
    "table",
    "task_label",
    "timestamp",
    "wire",
]

# Longest JSON value shown in a table cell before it is cut with "...".
CELL_WIDTH = 60


class Output:
    """Where a command writes: documents and tables on stdout, notes on stderr."""

    def __init__(self, stdout: IO[str], stderr: IO[str], *, json_mode: bool) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.json_mode = json_mode

    @property
    def is_tty(self) -> bool:
        isatty = getattr(self.stdout, "isatty", None)
        return bool(isatty and isatty())

    def line(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def document(self, value: Any) -> None:
        """One JSON document, indented for reading."""
        self.line(json.dumps(value, indent=2, ensure_ascii=False))

    def json_line(self, value: Any) -> None:
        """One JSON document on one line (for output that streams)."""
        self.line(json.dumps(value, separators=(",", ":"), ensure_ascii=False))

    def note(self, text: str) -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()


def wire(model: Any) -> Any:
    """A model as the API's JSON (camelCase), with the keys this SDK does not model."""
    document = codec.unstructure(model)
    extra = getattr(model, "extra", None)
    if isinstance(document, dict):
        if extra:
            document.update(extra)
        attempts = getattr(model, "attempts", None)
        if attempts and isinstance(document.get("attempts"), list):
            document["attempts"] = [wire(attempt) for attempt in attempts]
    return document


def log_json(entry: LogEntry) -> dict[str, Any]:
    """A log line in the shape of ``GET /v1/logs``."""
    return {
        "id": entry.id,
        "timestamp": None if entry.timestamp is None else codec.format_timestamp(entry.timestamp),
        "message": entry.message,
        "labels": [{"name": name, "value": value} for name, value in entry.labels.items()],
    }


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns aligned on two spaces; the last column is not padded."""
    grid = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in grid) for i in range(len(headers))]
    lines = []
    for row in grid:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths[:-1], strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def timestamp(value: _dt.datetime | None, *, millis: bool = False) -> str:
    """Local time, ``YYYY-MM-DD HH:MM:SS`` (with milliseconds for log lines); ``-`` if unset."""
    if value is None:
        return "-"
    local = value.astimezone()
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if millis:
        text += f".{local.microsecond // 1000:03d}"
    return text


def duration(
    start: _dt.datetime | None, end: _dt.datetime | None, *, now: _dt.datetime | None = None
) -> str:
    """``0.42s``, ``12.3s``, ``4m05s``, ``2h03m``; ``-`` before the start; up to ``now`` if open."""
    if start is None:
        return "-"
    if end is None:
        if now is None:
            return "-"
        end = now
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def compact(value: Any, width: int = CELL_WIDTH) -> str:
    """A JSON value on one line, cut to ``width`` characters."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


def first_line(text: str | None, width: int = CELL_WIDTH) -> str:
    if not text:
        return ""
    lines = text.strip().splitlines()
    line = lines[0] if lines else ""
    if len(line) > width or len(lines) > 1:
        line = line[: width - 3] + "..."
    return line


def attempt_count(run: TaskRun | TaskRunDetails) -> str:
    return str(len(run.attempts)) if run.attempts else "-"


def outcome(run: TaskRunDetails, width: int = CELL_WIDTH) -> str:
    """``result: ...`` for a completed run, ``error: ...`` for a failed one, else ``""``."""
    if run.status.is_success:
        shown = run.results[0] if len(run.results) == 1 else run.results
        return "result: " + compact(shown, width)
    if run.error:
        return "error: " + first_line(run.error, width)
    return ""


def all_tasks(
    list_tasks: Callable[[ListTasksParams | None], list[Task]], *, max_pages: int | None = None
) -> Iterator[Task]:
    """Every registered task, fetched 100 a page (at most ``max_pages`` pages) with the
    core's paging rule, ``render_core.flows.next_page``."""
    params: ListTasksParams | None = ListTasksParams(limit=100)
    pages = 0
    while params is not None and (max_pages is None or pages < max_pages):
        page = list_tasks(params)
        yield from page
        params = next_page(params, page)
        pages += 1


class TaskNames:
    """Task ids to the names people know (``slug`` when the server sends one).

    Looked up once, on the first id it does not know; any error falls back to
    showing ids, since a name is a nicety and never worth failing a command for.
    """

    def __init__(self, list_tasks: Callable[[ListTasksParams | None], list[Task]]) -> None:
        self._list_tasks = list_tasks
        self._names: dict[str, str] | None = None

    def __call__(self, task_id: str) -> str:
        if not task_id:
            return "-"
        if self._names is None:
            self._names = {}
            try:
                for task in all_tasks(self._list_tasks, max_pages=10):
                    self._names[task.id] = task_label(task)
            except RenderError:
                pass
        return self._names.get(task_id, task_id)


def task_label(task: Task) -> str:
    slug = task.extra.get("slug")
    return slug if isinstance(slug, str) and slug else task.name or task.id


def _attempt_number(index: int, attempt: TaskAttemptDetails) -> str:
    return str((attempt.attempt if attempt.attempt is not None else index) + 1)


def run_fields(run: TaskRunDetails, task_name: str) -> str:
    """The detail view of ``runs get``: one field a line, then the attempts."""
    fields: list[tuple[str, str]] = [
        ("ID", run.id),
        ("Task", f"{task_name} ({run.task_id})" if task_name != run.task_id else run.task_id),
        ("Status", str(run.status)),
        ("Started", timestamp(run.started_at)),
        ("Completed", timestamp(run.completed_at)),
        ("Duration", duration(run.started_at, run.completed_at)),
    ]
    if not run.is_root:
        fields.append(("Parent", run.parent_task_run_id))
        fields.append(("Root", run.root_task_run_id or "-"))
    fields.append(("Input", compact(run.input_, 10_000)))
    if run.status.is_success:
        if len(run.results) == 1:
            fields.append(("Result", compact(run.results[0], 10_000)))
        else:
            fields.append(("Results", compact(run.results, 10_000)))
    width = max(len(name) for name, _ in fields) + 2
    lines = [name.ljust(width) + value for name, value in fields]
    if run.error:
        error_lines = run.error.rstrip().splitlines() or [""]
        lines.append("Error".ljust(width) + error_lines[0])
        lines.extend(" " * width + line for line in error_lines[1:])
    if run.attempts:
        lines.append("")
        lines.append(
            table(
                ["ATTEMPT", "STATUS", "STARTED", "DURATION", "ERROR"],
                [
                    [
                        _attempt_number(index, attempt),
                        str(attempt.status),
                        timestamp(attempt.started_at),
                        duration(attempt.started_at, attempt.completed_at),
                        first_line(attempt.error),
                    ]
                    for index, attempt in enumerate(run.attempts)
                ],
            )
        )
    return "\n".join(lines)
