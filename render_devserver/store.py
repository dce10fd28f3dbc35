"""SQLite persistence for the dev server: tasks, runs, terminal events and logs.

One database file (``:memory:`` allowed) in WAL mode. Runs are stored as JSON
documents next to the columns that queries filter on; every transition is written
through, so a restarted server finds every run where it was (and recovers the ones
that were in flight, see ``scheduler.py``). The event log gives SSE its increasing
``id:`` values and lets ``Last-Event-ID`` resume across restarts.

All methods are synchronous and short: the server calls them from its event loop.
With :meth:`Store.defer_commits` the writes of one turn of that loop share one
transaction, committed at the start of the next turn (before anything that was
told of those writes, an event-stream subscriber say, runs): one commit for the
several rows a run's transition writes. The runs written or read most recently
are also kept as objects (they are immutable), so that the scheduler's many reads of
the runs in flight cost no query and no decoding.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from render_core.codec import format_timestamp, parse_timestamp
from render_core.lifecycle import Attempt, RetryPolicy, Run
from render_core.models import TaskRunStatus

__all__ = ["LogRecord", "Store", "TaskRecord"]

# Runs kept decoded (see the module docstring): every run in flight and its
# children, on a dev server, with room to spare; a few MiB at most.
RUN_CACHE_SIZE = 4096

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    registration TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    task_id TEXT NOT NULL,
    root_id TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    status TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_root ON runs (root_id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_by_task ON runs (task_id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, id);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    stream TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_run ON logs (run_id, id);
"""


@attrs.frozen(kw_only=True)
class TaskRecord:
    id: str
    name: str
    created_at: _dt.datetime
    registration: dict[str, Any]
    """The task as registered over the task socket (options, parameters)."""


@attrs.frozen(kw_only=True)
class LogRecord:
    id: int
    run_id: str
    timestamp: _dt.datetime
    stream: str
    message: str


def _ts(value: _dt.datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _dt_or_none(value: str | None) -> _dt.datetime | None:
    return None if value is None else parse_timestamp(value)


def run_to_document(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "task_id": run.task_id,
        "task_name": run.task_name,
        "input": run.input,
        "status": run.status.value,
        "created_at": _ts(run.created_at),
        "policy": attrs.asdict(run.policy),
        "timeout_seconds": run.timeout_seconds,
        "parent_id": run.parent_id,
        "root_id": run.root_id,
        "parent_attempt": run.parent_attempt,
        "attempts": [
            {
                "number": a.number,
                "status": a.status.value,
                "enqueued_at": _ts(a.enqueued_at),
                "started_at": _ts(a.started_at),
                "completed_at": _ts(a.completed_at),
                "error": a.error,
                "results": a.results,
            }
            for a in run.attempts
        ],
        "results": run.results,
        "error": run.error,
        "started_at": _ts(run.started_at),
        "completed_at": _ts(run.completed_at),
        "retry_at": _ts(run.retry_at),
        "enqueued_at": _ts(run.enqueued_at),
        "idempotency_key": run.idempotency_key,
    }


def run_from_document(doc: dict[str, Any]) -> Run:
    created = parse_timestamp(doc["created_at"])
    return Run(
        id=doc["id"],
        task_id=doc["task_id"],
        task_name=doc["task_name"],
        input=doc["input"],
        status=TaskRunStatus(doc["status"]),
        created_at=created,
        policy=RetryPolicy(**doc["policy"]),
        timeout_seconds=doc["timeout_seconds"],
        parent_id=doc["parent_id"],
        root_id=doc["root_id"],
        parent_attempt=doc["parent_attempt"],
        attempts=tuple(
            Attempt(
                number=a["number"],
                status=TaskRunStatus(a["status"]),
                enqueued_at=parse_timestamp(a["enqueued_at"]),
                started_at=parse_timestamp(a["started_at"]),
                completed_at=_dt_or_none(a["completed_at"]),
                error=a["error"],
                results=a["results"],
            )
            for a in doc["attempts"]
        ),
        results=doc["results"],
        error=doc["error"],
        started_at=_dt_or_none(doc["started_at"]),
        completed_at=_dt_or_none(doc["completed_at"]),
        retry_at=_dt_or_none(doc["retry_at"]),
        enqueued_at=_dt_or_none(doc["enqueued_at"]),
        idempotency_key=doc["idempotency_key"],
    )


class Store:
    """The dev server's database (see the module docstring)."""

    def __init__(self, path: str = ":memory:") -> None:
        if path != ":memory:":
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._schedule: Callable[[Callable[[], None]], object] | None = None
        self._runs: OrderedDict[str, Run] = OrderedDict()

    def close(self) -> None:
        self.commit()
        self._db.close()

    def defer_commits(self, schedule: Callable[[Callable[[], None]], object] | None) -> None:
        """Batch writes: the first write opens a transaction and ``schedule(commit)``
        is asked to end it (``loop.call_soon``); None goes back to committing each
        write at once (after committing what is pending)."""
        self.commit()
        self._schedule = schedule

    def commit(self) -> None:
        """Commit the writes that are waiting for the end of the loop's turn, if any."""
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def _writing(self) -> None:
        if self._schedule is not None and not self._db.in_transaction:
            self._db.execute("BEGIN")
            self._schedule(self.commit)

    # -- tasks ------------------------------------------------------------------

    def replace_tasks(
        self, registrations: Sequence[dict[str, Any]], now: _dt.datetime, new_id: Any
    ) -> list[TaskRecord]:
        """The registered set becomes exactly ``registrations``; known names keep their ids."""
        names = [item["name"] for item in registrations]
        self.commit()  # what is pending first: this is a transaction of its own
        # The connection autocommits each statement: without an explicit transaction
        # a failure half-way would leave every task deactivated.
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("UPDATE tasks SET active = 0")
            for item in registrations:
                row = self._db.execute(
                    "SELECT id FROM tasks WHERE name = ?", (item["name"],)
                ).fetchone()
                if row is None:
                    self._db.execute(
                        "INSERT INTO tasks (id, name, created_at, registration, active)"
                        " VALUES (?, ?, ?, ?, 1)",
                        (new_id("tsk-"), item["name"], format_timestamp(now), json.dumps(item)),
                    )
                else:
                    self._db.execute(
                        "UPDATE tasks SET registration = ?, active = 1 WHERE name = ?",
                        (json.dumps(item), item["name"]),
                    )
        return [task for task in self.tasks() if task.name in names]

    def _task(self, row: sqlite3.Row) -> TaskRecord:
        return TaskRecord(
            id=row["id"],
            name=row["name"],
            created_at=parse_timestamp(row["created_at"]),
            registration=json.loads(row["registration"]),
        )

    def tasks(self, *, active_only: bool = True) -> list[TaskRecord]:
        query = "SELECT * FROM tasks" + (" WHERE active = 1" if active_only else "")
        return [self._task(row) for row in self._db.execute(query + " ORDER BY seq")]

    def task_by_name(self, name: str) -> TaskRecord | None:
        row = self._db.execute(
            "SELECT * FROM tasks WHERE name = ? AND active = 1", (name,)
        ).fetchone()
        return None if row is None else self._task(row)

    def task_by_id(self, task_id: str) -> TaskRecord | None:
        row = self._db.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else self._task(row)

    # -- runs -------------------------------------------------------------------

    def put_run(self, run: Run) -> None:
        doc = json.dumps(run_to_document(run), separators=(",", ":"))
        self._remember(run)
        self._writing()
        self._db.execute(
            "INSERT INTO runs (id, task_id, root_id, parent_id, status, idempotency_key, doc)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET status = excluded.status, doc = excluded.doc",
            (
                run.id,
                run.task_id,
                run.root_id or run.id,
                run.parent_id,
                run.status.value,
                run.idempotency_key,
                doc,
            ),
        )

    def get_run(self, run_id: str) -> Run | None:
        cached = self._runs.get(run_id)
        if cached is not None:
            # Another thread (a test reading the store) may have evicted it meanwhile.
            with contextlib.suppress(KeyError):
                self._runs.move_to_end(run_id)
            return cached
        row = self._db.execute("SELECT doc FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        run = run_from_document(json.loads(row["doc"]))
        self._remember(run)
        return run

    def _remember(self, run: Run) -> None:
        runs = self._runs
        runs[run.id] = run
        runs.move_to_end(run.id)
        if len(runs) > RUN_CACHE_SIZE:
            runs.popitem(last=False)

    def run_by_idempotency_key(self, key: str) -> Run | None:
        row = self._db.execute("SELECT doc FROM runs WHERE idempotency_key = ?", (key,)).fetchone()
        return None if row is None else run_from_document(json.loads(row["doc"]))

    def runs_with_status(self, statuses: Iterable[TaskRunStatus]) -> list[Run]:
        values = [status.value for status in statuses]
        marks = ",".join("?" * len(values))
        rows = self._db.execute(
            f"SELECT doc FROM runs WHERE status IN ({marks}) ORDER BY seq", values
        )
        return [run_from_document(json.loads(row["doc"])) for row in rows]

    def descendants(self, run_id: str) -> list[Run]:
        """Every run below ``run_id`` in its tree (children, grandchildren...)."""
        found: list[Run] = []
        frontier = [run_id]
        while frontier:
            marks = ",".join("?" * len(frontier))
            rows = self._db.execute(
                f"SELECT doc FROM runs WHERE parent_id IN ({marks}) ORDER BY seq", frontier
            ).fetchall()
            children = [run_from_document(json.loads(row["doc"])) for row in rows]
            found.extend(children)
            frontier = [child.id for child in children]
        return found

    def list_runs(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        task_ids: Sequence[str] = (),
        root_ids: Sequence[str] = (),
        statuses: Sequence[str] = (),
    ) -> list[Run] | None:
        """One page, newest first, after ``cursor`` (a run id); None if the cursor is unknown."""
        clauses: list[str] = []
        params: list[Any] = []
        if cursor is not None:
            row = self._db.execute("SELECT seq FROM runs WHERE id = ?", (cursor,)).fetchone()
            if row is None:
                return None
            clauses.append("seq < ?")
            params.append(row["seq"])
        for column, values in (("task_id", task_ids), ("root_id", root_ids), ("status", statuses)):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT doc FROM runs{where} ORDER BY seq DESC LIMIT ?", [*params, limit]
        )
        return [run_from_document(json.loads(row["doc"])) for row in rows]

    # -- events -----------------------------------------------------------------

    def append_event(self, run_id: str, data: str) -> int:
        self._writing()
        cursor = self._db.execute("INSERT INTO events (run_id, data) VALUES (?, ?)", (run_id, data))
        return int(cursor.lastrowid or 0)

    def latest_events(self, run_ids: Iterable[str], after: int = 0) -> list[tuple[int, str, str]]:
        """The newest event of each run in ``run_ids`` with an id above ``after``, by id."""
        ids = list(run_ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            f"SELECT MAX(id) AS id, run_id FROM events WHERE run_id IN ({marks}) GROUP BY run_id",
            ids,
        ).fetchall()
        wanted = sorted(row["id"] for row in rows if row["id"] > after)
        out = []
        for event_id in wanted:
            row = self._db.execute(
                "SELECT id, run_id, data FROM events WHERE id = ?", (event_id,)
            ).fetchone()
            out.append((int(row["id"]), str(row["run_id"]), str(row["data"])))
        return out

    # -- logs -------------------------------------------------------------------

    def append_logs(self, records: Iterable[tuple[str, _dt.datetime, str, str]]) -> None:
        self._writing()
        self._db.executemany(
            "INSERT INTO logs (run_id, timestamp, stream, message) VALUES (?, ?, ?, ?)",
            [(run_id, format_timestamp(ts), stream, msg) for run_id, ts, stream, msg in records],
        )

    def logs(
        self,
        *,
        run_ids: Sequence[str] = (),
        start: _dt.datetime | None = None,
        end: _dt.datetime | None = None,
        text: Sequence[str] = (),
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[LogRecord]:
        """Log lines in id order: ``run_ids`` (any), ``start``/``end`` (inclusive),
        ``text`` (any fragment, case-sensitive), above ``after_id``, at most ``limit``."""
        if limit <= 0:
            return []
        clauses = ["id > ?"]
        params: list[Any] = [after_id]
        if run_ids:
            clauses.append(f"run_id IN ({','.join('?' * len(run_ids))})")
            params.extend(run_ids)
        query = f"SELECT * FROM logs WHERE {' AND '.join(clauses)} ORDER BY id"
        if start is None and end is None and not text:
            query += " LIMIT ?"
            params.append(limit)
        # Time and text are matched here (stored timestamps may carry any offset), so
        # the rows are read lazily until ``limit`` match: a fixed-size prefetch would
        # miss matches that come after many other lines.
        out: list[LogRecord] = []
        with contextlib.closing(self._db.execute(query, params)) as rows:
            for row in rows:
                record = LogRecord(
                    id=row["id"],
                    run_id=row["run_id"],
                    timestamp=parse_timestamp(row["timestamp"]),
                    stream=row["stream"],
                    message=row["message"],
                )
                if start is not None and record.timestamp < start:
                    continue
                if end is not None and record.timestamp > end:
                    continue
                if text and not any(fragment in record.message for fragment in text):
                    continue
                out.append(record)
                if len(out) >= limit:
                    break
        return out

    def last_log_lines(self, run_id: str, count: int = 10) -> list[str]:
        rows = self._db.execute(
            "SELECT message FROM logs WHERE run_id = ? ORDER BY id DESC LIMIT ?", (run_id, count)
        ).fetchall()
        return [row["message"] for row in reversed(rows)]
