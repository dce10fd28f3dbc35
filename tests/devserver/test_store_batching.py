"""Store.defer_commits: the writes of one loop turn share one transaction.

A second connection to the same database file stands for anyone else reading it
(another process, a restarted server): it sees a turn's writes only once the
scheduled commit ran, and all of them at once.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import attrs

from render_core.lifecycle import Run, new_run
from render_core.models import TaskRunStatus
from render_devserver.ids import new_id
from render_devserver.store import Store

T0 = _dt.datetime(2026, 1, 1, tzinfo=_dt.timezone.utc)


def _run(run_id: str) -> Run:
    return new_run(run_id=run_id, task_id="tsk-a", task_name="a", input_data=[1], now=T0)


def _count(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as other:
        return int(other.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_one_commit_per_turn_and_nothing_visible_before_it(tmp_path: Path) -> None:
    path = tmp_path / "dev.sqlite3"
    store = Store(str(path))
    scheduled: list[Callable[[], None]] = []
    store.defer_commits(scheduled.append)
    store.put_run(_run("trn-1"))
    store.append_event("trn-1", "{}")
    store.append_logs([("trn-1", T0, "stdout", "hello")])
    assert len(scheduled) == 1  # three writes, one commit
    assert store.get_run("trn-1") is not None  # the writer reads its own writes
    assert _count(path, "runs") == 0
    scheduled.pop()()
    assert (_count(path, "runs"), _count(path, "events"), _count(path, "logs")) == (1, 1, 1)
    store.put_run(_run("trn-2"))  # the next turn opens the next transaction
    assert len(scheduled) == 1
    store.close()  # commits what is pending
    assert _count(path, "runs") == 2


def test_reregistering_and_turning_it_off_commit_first(tmp_path: Path) -> None:
    path = tmp_path / "dev.sqlite3"
    store = Store(str(path))
    scheduled: list[Callable[[], None]] = []
    store.defer_commits(scheduled.append)
    store.put_run(_run("trn-1"))
    store.replace_tasks([{"name": "a", "options": {}}], T0, new_id)
    assert _count(path, "runs") == 1
    assert _count(path, "tasks") == 1
    store.put_run(_run("trn-2"))
    store.defer_commits(None)
    assert _count(path, "runs") == 2
    store.put_run(_run("trn-3"))  # committed at once again
    assert _count(path, "runs") == 3
    for commit in scheduled:
        commit()  # a commit that comes late finds nothing to do
    store.close()


def test_recent_runs_are_served_from_memory_and_stay_current(tmp_path: Path) -> None:
    path = tmp_path / "dev.sqlite3"
    store = Store(str(path))
    first = _run("trn-1")
    store.put_run(first)
    assert store.get_run("trn-1") is first  # no decoding: the object written
    with closing(sqlite3.connect(path)) as other:
        doc = other.execute("SELECT doc FROM runs WHERE id = 'trn-1'").fetchone()[0]
    assert '"trn-1"' in doc  # and it is in the database as well
    second = _run("trn-2")
    store.put_run(second)
    reopened = Store(str(path))  # a fresh store reads it back from disk
    assert reopened.get_run("trn-2") == second
    store.close()
    reopened.close()


def test_a_run_put_twice_in_a_turn_is_written_once_and_every_query_sees_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dev.sqlite3"
    store = Store(str(path))
    scheduled: list[Callable[[], None]] = []
    store.defer_commits(scheduled.append)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    pending = _run("trn-1")
    store.put_run(pending)
    started = attrs.evolve(pending, status=TaskRunStatus.RUNNING)
    store.put_run(started)
    assert not [s for s in statements if "INSERT INTO runs" in s]  # held back so far
    # A query of the runs in the same turn writes what is held back first.
    assert store.count_by_status() == {"running": 1}
    assert len([s for s in statements if "INSERT INTO runs" in s]) == 1  # the last state
    child = new_run(
        run_id="trn-2", task_id="tsk-a", task_name="a", input_data=[2], now=T0, parent=started
    )
    store.put_run(child)
    assert [run.id for run in store.descendants("trn-1")] == ["trn-2"]
    store.put_run(attrs.evolve(child, status=TaskRunStatus.RUNNING))
    store.set_rerun_of("trn-2", "trn-1")
    assert store.rerun_of("trn-2") == "trn-1"
    assert len(scheduled) == 1
    scheduled.pop()()  # the turn's commit writes the rest
    with closing(sqlite3.connect(path)) as other:
        rows = other.execute("SELECT id, status FROM runs ORDER BY seq").fetchall()
    assert rows == [("trn-1", "running"), ("trn-2", "running")]
    store.close()
    reopened = Store(str(path))
    assert reopened.get_run("trn-2") == attrs.evolve(child, status=TaskRunStatus.RUNNING)
    reopened.close()
