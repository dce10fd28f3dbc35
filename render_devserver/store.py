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
import functools
import json
import math
import os
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from render_core.codec import format_timestamp, parse_timestamp
from render_core.lifecycle import Attempt, RetryPolicy, Run
from render_core.models import TaskRunStatus

__all__ = ["LogRecord", "Owner", "ProcessRecord", "Store", "TaskRecord"]

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
    doc TEXT NOT NULL,
    created_at TEXT,
    rerun_of TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_root ON runs (root_id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_by_task ON runs (task_id);
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_id);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    completed_at TEXT,
    duration_ms REAL,
    PRIMARY KEY (run_id, number)
);
CREATE INDEX IF NOT EXISTS attempts_by_task ON attempts (task_id, duration_ms);
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
CREATE TABLE IF NOT EXISTS processes (
    pid INTEGER PRIMARY KEY,
    token TEXT,
    run_id TEXT NOT NULL,
    socket_dir TEXT NOT NULL,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS owner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER NOT NULL,
    token TEXT,
    instance TEXT NOT NULL
);
"""

# Version 1 added runs.created_at (time filters), runs.rerun_of (the dashboard's
# "Run again" link) and the attempts table (duration metrics). Older files are
# brought up to date when opened.
_SCHEMA_VERSION = 1

_UTC = _dt.timezone.utc
_TIMED = frozenset({TaskRunStatus.COMPLETED, TaskRunStatus.FAILED})
_ID_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,64}")


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


@attrs.frozen(kw_only=True)
class ProcessRecord:
    """A task process (the leader of its own process group) while it runs."""

    pid: int
    token: str | None
    """Its start time as ``processes.start_token`` gives it: a recycled pid differs."""
    run_id: str
    """The run it works for; empty for the register-mode process."""
    socket_dir: str
    started_at: _dt.datetime


@attrs.frozen(kw_only=True)
class Owner:
    """The server using the database: its process and its scheduler instance."""

    pid: int
    token: str | None
    instance: str


def _ts(value: _dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is _UTC:  # every time the scheduler writes
        return _utc_text(value)
    return format_timestamp(value)


def _dt_or_none(value: str | None) -> _dt.datetime | None:
    return None if value is None else parse_timestamp(value)


def _duration_ms(attempt: Attempt) -> float | None:
    """How long a completed or failed attempt ran; None for one running or canceled
    (a canceled attempt's length says nothing about the task)."""
    if attempt.completed_at is None or attempt.status not in _TIMED:
        return None
    return (attempt.completed_at - attempt.started_at).total_seconds() * 1000.0


@functools.lru_cache(maxsize=1024)
def _utc_text(value: _dt.datetime) -> str:
    """UTC with a fixed width, so that stored times compare as text.

    Cached: a run is written several times and each write spells all of its times
    again. Equal datetimes are the same instant, so they share one UTC spelling.
    """
    return format_timestamp(value.astimezone(_UTC))


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
        # Runs put in this turn of the loop and not written yet (batched writes only),
        # in the order they were first put: see put_run.
        self._unwritten: dict[str, Run] = {}
        # Tests (and scripts) may query the store from another thread than the loop's:
        # holding back and writing out are one step under this lock, so no run put
        # meanwhile is skipped, and rows keep the order their runs were first put in.
        self._unwritten_lock = threading.RLock()
        # The active tasks by name, read once per registration: every run looks its
        # task up, and only replace_tasks changes them.
        self._active_tasks: dict[str, TaskRecord] | None = None
        self._migrate()

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(runs)")}
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if "created_at" not in columns:
                self._db.execute("ALTER TABLE runs ADD COLUMN created_at TEXT")
                self._db.execute("UPDATE runs SET created_at = json_extract(doc, '$.created_at')")
            if "rerun_of" not in columns:
                self._db.execute("ALTER TABLE runs ADD COLUMN rerun_of TEXT")
            self._db.execute("CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at)")
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS runs_by_origin ON runs (rerun_of)"
                " WHERE rerun_of IS NOT NULL"
            )
            if version < 1:
                rows = self._db.execute("SELECT doc FROM runs").fetchall()
                for row in rows:
                    self._put_attempts(run_from_document(json.loads(row["doc"])))
            if version < _SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

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
        self._flush()
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def _flush(self) -> None:
        """Write the runs put since the last write (into the open transaction)."""
        if not self._unwritten:
            return
        with self._unwritten_lock:
            while self._unwritten:
                unwritten, self._unwritten = self._unwritten, {}
                for run in unwritten.values():
                    doc = json.dumps(run_to_document(run), separators=(",", ":"))
                    self._write_run(run, doc)

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        """A query of the runs or attempts tables: what put_run holds back is written first."""
        self._flush()
        return self._db.execute(sql, parameters)

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
        self._active_tasks = None
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
        """The active task called ``name``, if any."""
        if self._active_tasks is None:
            self._active_tasks = {task.name: task for task in self.tasks()}
        return self._active_tasks.get(name)

    def task_by_id(self, task_id: str) -> TaskRecord | None:
        row = self._db.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else self._task(row)

    # -- runs -------------------------------------------------------------------

    def put_run(self, run: Run) -> None:
        """Store ``run`` (its latest state: runs are immutable, each put replaces it).

        With batched writes, the row is written when the turn's transaction is
        committed, or before any query of the runs: a run put twice in one turn (a new
        run that starts at once) is encoded and written once, after the request that
        created it has been answered.
        """
        self._remember(run)
        self._writing()
        if self._db.in_transaction:  # batched: written and committed at the turn's end
            with self._unwritten_lock:
                self._unwritten[run.id] = run
            return
        doc = json.dumps(run_to_document(run), separators=(",", ":"))
        with self._db:  # the run and its attempts in one transaction
            self._db.execute("BEGIN")
            self._write_run(run, doc)

    def _write_run(self, run: Run, doc: str) -> None:
        self._db.execute(
            "INSERT INTO runs"
            " (id, task_id, root_id, parent_id, status, idempotency_key, doc, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET status = excluded.status, doc = excluded.doc",
            (
                run.id,
                run.task_id,
                run.root_id or run.id,
                run.parent_id,
                run.status.value,
                run.idempotency_key,
                doc,
                _utc_text(run.created_at),
            ),
        )
        self._put_attempts(run)

    def _put_attempts(self, run: Run) -> None:
        self._db.executemany(
            "INSERT INTO attempts"
            " (run_id, number, task_id, status, started_at, completed_at, duration_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(run_id, number) DO UPDATE SET status = excluded.status,"
            " completed_at = excluded.completed_at, duration_ms = excluded.duration_ms",
            [
                (
                    run.id,
                    attempt.number,
                    run.task_id,
                    attempt.status.value,
                    _utc_text(attempt.started_at),
                    None if attempt.completed_at is None else _utc_text(attempt.completed_at),
                    _duration_ms(attempt),
                )
                for attempt in run.attempts
            ],
        )

    def set_rerun_of(self, run_id: str, origin_id: str) -> None:
        """Record that ``run_id`` was started as a re-run of ``origin_id`` (dev-only)."""
        self._read("UPDATE runs SET rerun_of = ? WHERE id = ?", (origin_id, run_id))

    def rerun_of(self, run_id: str) -> str | None:
        row = self._read("SELECT rerun_of FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else row["rerun_of"]

    def reruns(self, run_id: str, limit: int = 100) -> list[str]:
        """The runs started as re-runs of ``run_id``, oldest first."""
        rows = self._read(
            "SELECT id FROM runs WHERE rerun_of = ? ORDER BY seq LIMIT ?", (run_id, limit)
        )
        return [row["id"] for row in rows]

    def run_tree(self, run_id: str, limit: int) -> tuple[str, list[tuple[Run, str | None]], bool]:
        """The tree ``run_id`` belongs to, in creation order: ``(root id, runs, truncated)``.

        Each run comes with the run it re-runs (or None). Raises KeyError for an
        unknown id. At most ``limit`` runs; ``truncated`` says there were more.
        """
        row = self._read("SELECT root_id FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(run_id)
        root_id = str(row["root_id"])
        rows = self._read(
            "SELECT doc, rerun_of FROM runs WHERE root_id = ? ORDER BY seq LIMIT ?",
            (root_id, limit + 1),
        ).fetchall()
        runs = [(run_from_document(json.loads(r["doc"])), r["rerun_of"]) for r in rows[:limit]]
        return root_id, runs, len(rows) > limit

    def count_by_status(self) -> dict[str, int]:
        rows = self._read("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")
        return {row["status"]: int(row["n"]) for row in rows}

    def attempt_durations(self) -> list[tuple[str, int, float, float]]:
        """``(task id, finished attempts, p50 ms, p95 ms)`` over every finished attempt.

        Nearest-rank percentiles of the attempts that completed or failed, each read
        from the ``(task_id, duration_ms)`` index at its rank: a few index lookups per
        task, however many attempts there are.
        """
        counts = self._read(
            "SELECT task_id, COUNT(*) AS n FROM attempts WHERE duration_ms IS NOT NULL"
            " GROUP BY task_id ORDER BY task_id"
        ).fetchall()
        out = []
        for row in counts:
            total = int(row["n"])
            ranks = [max(1, math.ceil(share * total)) for share in (0.50, 0.95)]
            p50, p95 = (
                float(
                    self._read(
                        "SELECT duration_ms FROM attempts WHERE task_id = ? AND"
                        " duration_ms IS NOT NULL ORDER BY duration_ms LIMIT 1 OFFSET ?",
                        (row["task_id"], rank - 1),
                    ).fetchone()[0]
                )
                for rank in ranks
            )
            out.append((str(row["task_id"]), total, p50, p95))
        return out

    def get_run(self, run_id: str) -> Run | None:
        cached = self._runs.get(run_id)
        if cached is not None:
            # Another thread (a test reading the store) may have evicted it meanwhile.
            with contextlib.suppress(KeyError):
                self._runs.move_to_end(run_id)
            return cached
        row = self._read("SELECT doc FROM runs WHERE id = ?", (run_id,)).fetchone()
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
        row = self._read("SELECT doc FROM runs WHERE idempotency_key = ?", (key,)).fetchone()
        return None if row is None else run_from_document(json.loads(row["doc"]))

    def runs_with_status(self, statuses: Iterable[TaskRunStatus]) -> list[Run]:
        values = [status.value for status in statuses]
        marks = ",".join("?" * len(values))
        rows = self._read(f"SELECT doc FROM runs WHERE status IN ({marks}) ORDER BY seq", values)
        return [run_from_document(json.loads(row["doc"])) for row in rows]

    def descendants(self, run_id: str) -> list[Run]:
        """Every run below ``run_id`` in its tree (children, grandchildren...)."""
        found: list[Run] = []
        frontier = [run_id]
        while frontier:
            marks = ",".join("?" * len(frontier))
            rows = self._read(
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
        id_prefix: str | None = None,
        created_after: _dt.datetime | None = None,
        created_before: _dt.datetime | None = None,
        roots_only: bool = False,
    ) -> list[Run] | None:
        """One page, newest first, after ``cursor`` (a run id); None if the cursor is unknown.

        ``id_prefix`` (letters, digits, ``-`` and ``_`` only; ``trn-`` may be left
        out) and the creation-time bounds (``created_after`` inclusive,
        ``created_before`` exclusive) are the dashboard's search.
        """
        clauses: list[str] = []
        params: list[Any] = []
        if cursor is not None:
            row = self._read("SELECT seq FROM runs WHERE id = ?", (cursor,)).fetchone()
            if row is None:
                return None
            clauses.append("seq < ?")
            params.append(row["seq"])
        for column, values in (("task_id", task_ids), ("root_id", root_ids), ("status", statuses)):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        if id_prefix:
            if not _ID_PREFIX.fullmatch(id_prefix):
                raise ValueError(f"not an id prefix: {id_prefix!r}")
            # GLOB is case-sensitive like the ids, so SQLite can use the id index.
            if not (id_prefix.startswith("trn-") or "trn-".startswith(id_prefix)):
                id_prefix = "trn-" + id_prefix
            clauses.append("id GLOB ?")
            params.append(f"{id_prefix}*")
        if created_after is not None:
            clauses.append("created_at >= ?")
            params.append(_utc_text(created_after))
        if created_before is not None:
            clauses.append("created_at < ?")
            params.append(_utc_text(created_before))
        if roots_only:
            clauses.append("parent_id = ''")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        # The page's seqs first (from the indexes alone when a filter needs a sort),
        # then only those documents.
        rows = self._read(
            f"SELECT doc FROM runs WHERE seq IN (SELECT seq FROM runs{where}"
            " ORDER BY seq DESC LIMIT ?) ORDER BY seq DESC",
            [*params, limit],
        )
        return [run_from_document(json.loads(row["doc"])) for row in rows]

    # -- events -----------------------------------------------------------------

    def append_event(self, run_id: str, data: str) -> int:
        self._writing()
        cursor = self._db.execute("INSERT INTO events (run_id, data) VALUES (?, ?)", (run_id, data))
        return int(cursor.lastrowid or 0)

    def latest_events(self, run_ids: Iterable[str], after: int = 0) -> list[tuple[int, str, str]]:
        """The newest event of each run in ``run_ids`` with an id above ``after``, by id."""
        return self.event_replay(run_ids, after)[0]

    def event_replay(
        self, run_ids: Iterable[str], after: int = 0
    ) -> tuple[list[tuple[int, str, str]], set[str]]:
        """:meth:`latest_events`, and the runs of ``run_ids`` that have an event at all
        (whatever its id): those have ended, since only a run's end is an event."""
        ids = list(run_ids)
        if not ids:
            return [], set()
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            f"SELECT MAX(id) AS id, run_id FROM events WHERE run_id IN ({marks}) GROUP BY run_id",
            ids,
        ).fetchall()
        ended = {str(row["run_id"]) for row in rows}
        wanted = sorted(row["id"] for row in rows if row["id"] > after)
        out = []
        for event_id in wanted:
            row = self._db.execute(
                "SELECT id, run_id, data FROM events WHERE id = ?", (event_id,)
            ).fetchone()
            out.append((int(row["id"]), str(row["run_id"]), str(row["data"])))
        return out, ended

    # -- task processes and the owner ---------------------------------------------

    def add_process(self, record: ProcessRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO processes (pid, token, run_id, socket_dir, started_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                record.pid,
                record.token,
                record.run_id,
                record.socket_dir,
                format_timestamp(record.started_at),
            ),
        )

    def remove_process(self, pid: int) -> None:
        self._db.execute("DELETE FROM processes WHERE pid = ?", (pid,))

    def processes(self) -> list[ProcessRecord]:
        """Task processes recorded as running (by this server or one before it)."""
        return [
            ProcessRecord(
                pid=row["pid"],
                token=row["token"],
                run_id=row["run_id"],
                socket_dir=row["socket_dir"],
                started_at=parse_timestamp(row["started_at"]),
            )
            for row in self._db.execute("SELECT * FROM processes ORDER BY pid")
        ]

    def claim(self, owner: Owner, in_use: Callable[[Owner], bool]) -> Owner | None:
        """Become the database's owner unless ``in_use(current owner)``; returns that owner.

        Returns None when the claim succeeded. One transaction, so two servers
        starting at once cannot both succeed.
        """
        self.commit()  # what is pending first: this is a transaction of its own
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT pid, token, instance FROM owner").fetchone()
            if row is not None:
                current = Owner(pid=row["pid"], token=row["token"], instance=row["instance"])
                if in_use(current):
                    return current
            self._db.execute(
                "INSERT OR REPLACE INTO owner (id, pid, token, instance) VALUES (1, ?, ?, ?)",
                (owner.pid, owner.token, owner.instance),
            )
        return None

    def release(self, instance: str) -> None:
        self._db.execute("DELETE FROM owner WHERE instance = ?", (instance,))

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
