"""The dev server's SQLite store, on a real database (``:memory:`` and a WAL file).

Runs are built with the lifecycle functions only, so every stored document is one
the scheduler could write. Clocks are fixed datetimes; ids come from counters.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render_core.lifecycle import (
    LifecycleError,
    RetryPolicy,
    Run,
    cancel,
    complete,
    fail_attempt,
    new_run,
    start_attempt,
)
from render_core.models import TaskRunStatus as Status
from render_devserver.store import (
    LogRecord,
    Store,
    TaskRecord,
    run_from_document,
    run_to_document,
)

UTC = _dt.timezone.utc
T0 = _dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> _dt.datetime:
    return T0 + _dt.timedelta(seconds=seconds)


def make_run(
    run_id: str,
    *,
    task_id: str = "tsk-a",
    parent: Run | None = None,
    key: str | None = None,
    policy: RetryPolicy | None = None,
) -> Run:
    return new_run(
        run_id=run_id,
        task_id=task_id,
        task_name=task_id.removeprefix("tsk-"),
        input_data=[run_id],
        now=T0,
        parent=parent,
        idempotency_key=key,
        policy=policy,
    )


def with_status(run: Run, status: Status) -> Run:
    """``run`` driven by the lifecycle to ``status``."""
    if status is Status.PENDING:
        return run
    if status is Status.CANCELED:
        return cancel(run, at(1))
    run = start_attempt(run, at(1))
    if status is Status.COMPLETED:
        return complete(run, [run.id], at(2))
    if status is Status.FAILED:
        while not run.is_terminal:
            run = fail_attempt(run, "boom", at(2))
            if not run.is_terminal:
                run = start_attempt(run, at(3))
    return run


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    path = ":memory:" if request.param == "memory" else str(tmp_path / "dev.db")
    with closing(Store(path)) as opened:
        yield opened


def counter_ids() -> Callable[[str], str]:
    numbers = itertools.count()
    return lambda prefix: f"{prefix}{next(numbers)}"


# --- documents --------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
zones = st.sampled_from(
    [UTC, _dt.timezone(_dt.timedelta(hours=2)), _dt.timezone(-_dt.timedelta(hours=5, minutes=30))]
)
instants = st.datetimes(
    min_value=_dt.datetime(2000, 1, 1), max_value=_dt.datetime(2100, 1, 1), timezones=zones
)
OPERATIONS = ["start", "complete", "fail", "cancel"]


@st.composite
def runs(draw: st.DrawFn) -> Run:
    """A run built by new_run and a random walk of lifecycle transitions."""
    now = draw(instants)
    policy = RetryPolicy(
        max_retries=draw(st.integers(0, 4)),
        wait_duration_ms=draw(st.integers(0, 5000)),
        factor=draw(st.sampled_from([1.0, 1.5, 2.0, 3.0])),
    )
    parent = None
    if draw(st.booleans()):
        parent = start_attempt(make_run("trn-parent"), now)
    run = new_run(
        run_id=draw(st.text("abcdef0123", min_size=1, max_size=8).map("trn-".__add__)),
        task_id="tsk-x",
        task_name=draw(st.text(max_size=8)),
        input_data=draw(
            st.lists(json_values, max_size=3) | st.dictionaries(st.text(), json_values)
        ),
        now=now,
        policy=policy,
        timeout_seconds=draw(st.none() | st.integers(1, 7200)),
        parent=parent,
        idempotency_key=draw(st.none() | st.text(min_size=1, max_size=8)),
    )
    for operation in draw(st.lists(st.sampled_from(OPERATIONS), max_size=12)):
        now += _dt.timedelta(microseconds=draw(st.integers(0, 10**7)))
        try:
            if operation == "start":
                run = start_attempt(run, now)
            elif operation == "complete":
                run = complete(run, draw(st.lists(json_values, max_size=2)), now)
            elif operation == "fail":
                run = fail_attempt(run, draw(st.text(max_size=8)), now)
            else:
                run = cancel(run, now)
        except LifecycleError:
            pass
    return run


@settings(max_examples=60, deadline=None)
@given(run=runs())
def test_document_round_trip(run: Run) -> None:
    doc = run_to_document(run)
    decoded = json.loads(json.dumps(doc))
    assert run_from_document(decoded) == run
    assert run_to_document(run_from_document(decoded)) == doc
    with closing(Store()) as store:
        store.put_run(run)
        assert store.get_run(run.id) == run
        if run.idempotency_key is not None:
            assert store.run_by_idempotency_key(run.idempotency_key) == run


def test_document_keeps_every_field() -> None:
    policy = RetryPolicy(max_retries=1, wait_duration_ms=250, factor=1.5)
    run = fail_attempt(start_attempt(make_run("trn-1", policy=policy), at(1)), "boom", at(2))
    doc = run_to_document(run)
    assert doc == {
        "id": "trn-1",
        "task_id": "tsk-a",
        "task_name": "a",
        "input": ["trn-1"],
        "status": "pending",
        "created_at": "2026-01-01T12:00:00.000000Z",
        "policy": {"max_retries": 1, "wait_duration_ms": 250, "factor": 1.5},
        "timeout_seconds": 7200,
        "parent_id": "",
        "root_id": "trn-1",
        "parent_attempt": None,
        "attempts": [
            {
                "number": 0,
                "status": "failed",
                "enqueued_at": "2026-01-01T12:00:00.000000Z",
                "started_at": "2026-01-01T12:00:01.000000Z",
                "completed_at": "2026-01-01T12:00:02.000000Z",
                "error": "boom",
                "results": None,
            }
        ],
        "results": None,
        "error": None,
        "started_at": "2026-01-01T12:00:01.000000Z",
        "completed_at": None,
        "retry_at": "2026-01-01T12:00:02.250000Z",
        "enqueued_at": "2026-01-01T12:00:02.250000Z",
        "idempotency_key": None,
    }


# --- runs -------------------------------------------------------------------------


def test_put_get_and_upsert(store: Store) -> None:
    assert store.get_run("trn-1") is None
    run = make_run("trn-1")
    store.put_run(run)
    assert store.get_run("trn-1") == run
    running = start_attempt(run, at(1))
    store.put_run(running)
    assert store.get_run("trn-1") == running
    done = complete(running, [9], at(2))
    store.put_run(done)
    assert store.get_run("trn-1") == done
    assert store.list_runs(limit=10) == [done]  # one row, updated in place
    assert store.runs_with_status([Status.RUNNING]) == []
    assert store.runs_with_status([Status.COMPLETED]) == [done]


def test_idempotency_key_lookup(store: Store) -> None:
    run = make_run("trn-1", key="order-42")
    store.put_run(run)
    store.put_run(make_run("trn-2"))
    store.put_run(make_run("trn-3"))  # several runs without a key are fine
    assert store.run_by_idempotency_key("order-42") == run
    assert store.run_by_idempotency_key("order-43") is None
    started = start_attempt(run, at(1))
    store.put_run(started)
    assert store.run_by_idempotency_key("order-42") == started
    with pytest.raises(sqlite3.IntegrityError):
        store.put_run(make_run("trn-4", key="order-42"))


def test_runs_with_status(store: Store) -> None:
    statuses = [Status.PENDING, Status.RUNNING, Status.COMPLETED, Status.FAILED, Status.CANCELED]
    built = {}
    for n, status in enumerate(statuses * 2):
        built[f"trn-{n}"] = with_status(make_run(f"trn-{n}"), status)
        store.put_run(built[f"trn-{n}"])
    assert [r.id for r in store.runs_with_status([Status.RUNNING])] == ["trn-1", "trn-6"]
    assert [r.id for r in store.runs_with_status([Status.PENDING, Status.RUNNING])] == [
        "trn-0",
        "trn-1",
        "trn-5",
        "trn-6",
    ]
    assert store.runs_with_status([]) == []
    assert store.runs_with_status([Status.PAUSED]) == []
    for run in store.runs_with_status(statuses):
        assert run == built[run.id]


def test_descendants_of_a_three_level_tree(store: Store) -> None:
    root = start_attempt(make_run("trn-root"), at(1))
    a = start_attempt(make_run("trn-a", parent=root), at(2))
    b = start_attempt(make_run("trn-b", parent=root), at(2))
    a1 = make_run("trn-a1", parent=a)
    a2 = make_run("trn-a2", parent=a)
    b1 = make_run("trn-b1", parent=b)
    other = make_run("trn-other")
    other_child = make_run("trn-other-child", parent=start_attempt(other, at(1)))
    for run in (root, a, b, a1, other, other_child, a2, b1):
        store.put_run(run)
    # Level by level, each level in insertion order.
    assert [r.id for r in store.descendants("trn-root")] == [
        "trn-a",
        "trn-b",
        "trn-a1",
        "trn-a2",
        "trn-b1",
    ]
    assert {r.root_id for r in store.descendants("trn-root")} == {"trn-root"}
    assert [r.id for r in store.descendants("trn-a")] == ["trn-a1", "trn-a2"]
    assert store.descendants("trn-b1") == []
    assert store.descendants("trn-missing") == []
    assert store.descendants("trn-root")[2] == a1


@pytest.fixture
def table(store: Store) -> list[Run]:
    """45 runs in insertion order: 3 tasks, 5 statuses, roots and children."""
    created = []
    statuses = [Status.PENDING, Status.RUNNING, Status.COMPLETED, Status.FAILED, Status.CANCELED]
    roots: list[Run] = []
    for n in range(45):
        task_id = f"tsk-{'abc'[n % 3]}"
        if n < 3:
            run = start_attempt(make_run(f"trn-{n:02}", task_id=task_id), at(1))
            roots.append(run)
        else:
            parent = roots[n % 3] if n % 4 == 0 else None
            run = make_run(f"trn-{n:02}", task_id=task_id, parent=parent)
            run = with_status(run, statuses[n % 5])
        store.put_run(run)
        created.append(run)
    return created


def page_through(store: Store, limit: int, **filters: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    for _ in range(100):  # a cursor that does not advance must fail, not hang
        page = store.list_runs(limit=limit, cursor=cursor, **filters)
        assert page is not None
        if not page:
            return pages
        pages.append([run.id for run in page])
        cursor = page[-1].id
    raise AssertionError("pagination does not end")


@pytest.mark.parametrize("limit", [1, 7, 10, 45, 100])
def test_list_runs_pages_newest_first_without_duplicates(
    store: Store, table: list[Run], limit: int
) -> None:
    pages = page_through(store, limit)
    flat = [run_id for page in pages for run_id in page]
    assert flat == [run.id for run in reversed(table)]
    assert len(flat) == len(set(flat)) == 45
    assert all(len(page) == limit for page in pages[:-1])
    assert len(pages) == -(-45 // limit)


def test_list_runs_returns_whole_runs(store: Store, table: list[Run]) -> None:
    assert store.list_runs(limit=3) == list(reversed(table))[:3]
    assert store.list_runs(limit=0) == []


def test_list_runs_unknown_cursor(store: Store, table: list[Run]) -> None:
    assert store.list_runs(limit=10, cursor="trn-nope") is None
    assert store.list_runs(limit=10, cursor="trn-00") == []


def test_list_runs_filters(store: Store, table: list[Run]) -> None:
    def newest(predicate: Callable[[Run], bool]) -> list[str]:
        return [run.id for run in reversed(table) if predicate(run)]

    cases: list[tuple[dict[str, Any], Callable[[Run], bool]]] = [
        ({"task_ids": ["tsk-a"]}, lambda r: r.task_id == "tsk-a"),
        ({"task_ids": ["tsk-a", "tsk-c"]}, lambda r: r.task_id in ("tsk-a", "tsk-c")),
        ({"root_ids": ["trn-01"]}, lambda r: (r.root_id or r.id) == "trn-01"),
        ({"statuses": ["failed"]}, lambda r: r.status is Status.FAILED),
        (
            {"statuses": ["pending", "canceled"], "task_ids": ["tsk-b"]},
            lambda r: r.status in (Status.PENDING, Status.CANCELED) and r.task_id == "tsk-b",
        ),
        ({"task_ids": ["tsk-zzz"]}, lambda r: False),
    ]
    for filters, predicate in cases:
        expected = newest(predicate)
        for limit in (2, 5, 50):
            pages = page_through(store, limit, **filters)
            assert [run_id for page in pages for run_id in page] == expected, filters
    # The roots filter finds the children of trn-01 (and trn-01 itself).
    assert len(newest(lambda r: (r.root_id or r.id) == "trn-01")) > 1


def test_upsert_does_not_move_a_run_in_the_listing(store: Store) -> None:
    first, second = make_run("trn-1"), make_run("trn-2")
    store.put_run(first)
    store.put_run(second)
    store.put_run(start_attempt(first, at(1)))
    assert [r.id for r in store.list_runs(limit=10) or []] == ["trn-2", "trn-1"]


# --- tasks ------------------------------------------------------------------------


def registration(name: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "options": options}


def test_replace_tasks(store: Store) -> None:
    new_id = counter_ids()
    first = store.replace_tasks([registration("a"), registration("b")], T0, new_id)
    assert first == [
        TaskRecord(id="tsk-0", name="a", created_at=T0, registration=registration("a")),
        TaskRecord(id="tsk-1", name="b", created_at=T0, registration=registration("b")),
    ]
    b_retry = registration("b", retry={"max_retries": 1})
    second = store.replace_tasks([b_retry, registration("c")], at(60), new_id)
    assert second == [
        # Known names keep their id and creation time; the registration is the new one.
        TaskRecord(id="tsk-1", name="b", created_at=T0, registration=b_retry),
        TaskRecord(id="tsk-2", name="c", created_at=at(60), registration=registration("c")),
    ]
    assert store.tasks() == second
    # "a" is no longer registered: not listed, not found by name, still found by id
    # (its runs keep pointing at it).
    assert store.task_by_name("a") is None
    assert store.task_by_id("tsk-0") == first[0]
    assert [t.name for t in store.tasks(active_only=False)] == ["a", "b", "c"]
    assert store.task_by_name("b") == second[0]
    assert store.task_by_id("tsk-404") is None
    # Registering "a" again brings back its id.
    third = store.replace_tasks([registration("a")], at(120), new_id)
    assert third == [first[0]]
    assert store.tasks() == third


def test_replace_tasks_with_nothing(store: Store) -> None:
    new_id = counter_ids()
    store.replace_tasks([registration("a")], T0, new_id)
    assert store.replace_tasks([], T0, new_id) == []
    assert store.tasks() == []
    assert store.task_by_id("tsk-0") is not None


def test_replace_tasks_is_all_or_nothing(store: Store) -> None:
    new_id = counter_ids()
    before = store.replace_tasks([registration("a"), registration("b")], T0, new_id)

    def failing_id(prefix: str) -> str:
        raise RuntimeError("no more ids")

    assert store.task_by_name("b") == before[1]  # looked up (and remembered) first
    with pytest.raises(RuntimeError, match="no more ids"):
        store.replace_tasks([registration("b", changed=True), registration("new")], T0, failing_id)
    assert store.tasks() == before
    assert store.task_by_name("b") == before[1]
    assert store.task_by_name("new") is None


def test_tasks_looked_up_by_name_follow_each_registration(store: Store) -> None:
    """Lookups by name are remembered (every run makes one) until tasks are replaced."""
    new_id = counter_ids()
    first = store.replace_tasks([registration("a"), registration("b")], T0, new_id)
    assert store.task_by_name("a") == first[0]
    assert store.task_by_name("c") is None
    b_retry = registration("b", retry={"max_retries": 1})
    second = store.replace_tasks([b_retry, registration("c")], at(60), new_id)
    assert store.task_by_name("a") is None
    assert store.task_by_name("b") == second[0]
    assert store.task_by_name("b").registration == b_retry  # type: ignore[union-attr]
    assert store.task_by_name("c") == second[1]


# --- events -----------------------------------------------------------------------


def test_append_event_ids_increase(store: Store) -> None:
    ids = [store.append_event(f"trn-{n % 3}", f"data {n}") for n in range(10)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 10
    assert ids[0] >= 1


def test_latest_events(store: Store) -> None:
    e1 = store.append_event("trn-1", "one-a")
    e2 = store.append_event("trn-2", "two-a")
    e3 = store.append_event("trn-1", "one-b")
    e4 = store.append_event("trn-3", "three")
    e5 = store.append_event("trn-2", "two-b")
    everyone = ["trn-1", "trn-2", "trn-3", "trn-none"]
    assert store.latest_events(everyone) == [
        (e3, "trn-1", "one-b"),
        (e4, "trn-3", "three"),
        (e5, "trn-2", "two-b"),
    ]
    assert store.latest_events(everyone, after=e1) == store.latest_events(everyone)
    assert store.latest_events(everyone, after=e3) == [
        (e4, "trn-3", "three"),
        (e5, "trn-2", "two-b"),
    ]
    assert store.latest_events(everyone, after=e4) == [(e5, "trn-2", "two-b")]
    assert store.latest_events(everyone, after=e5) == []
    assert store.latest_events(iter(["trn-2"])) == [(e5, "trn-2", "two-b")]
    assert store.latest_events(["trn-none"]) == []
    assert store.latest_events([]) == []
    assert e2 < e3


# --- logs -------------------------------------------------------------------------

PLUS_2 = _dt.timezone(_dt.timedelta(hours=2))


@pytest.fixture
def logged(store: Store) -> list[LogRecord]:
    store.append_logs(
        [
            ("trn-1", at(0), "stdout", "starting square"),
            ("trn-2", at(1), "stdout", "starting cube"),
            ("trn-1", at(2), "stderr", "warning: slow"),
            # The same instant as at(3), written with another offset.
            ("trn-2", at(3).astimezone(PLUS_2), "stdout", "cube done"),
            ("trn-1", at(4), "stdout", "square done"),
        ]
    )
    records = store.logs()
    assert [r.id for r in records] == sorted(r.id for r in records)
    return records


def messages(records: list[LogRecord]) -> list[str]:
    return [r.message for r in records]


def test_logs_are_kept_whole(logged: list[LogRecord]) -> None:
    assert len(logged) == 5
    first = logged[0]
    assert (first.run_id, first.timestamp, first.stream, first.message) == (
        "trn-1",
        at(0),
        "stdout",
        "starting square",
    )
    assert logged[3].timestamp == at(3)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["starting square", "starting cube", "warning: slow", "cube done", "square done"]),
        ({"run_ids": ["trn-1"]}, ["starting square", "warning: slow", "square done"]),
        ({"run_ids": ["trn-1", "trn-2"], "limit": 2}, ["starting square", "starting cube"]),
        ({"run_ids": ["trn-9"]}, []),
        ({"start": at(2)}, ["warning: slow", "cube done", "square done"]),
        ({"end": at(1)}, ["starting square", "starting cube"]),
        ({"start": at(1), "end": at(3)}, ["starting cube", "warning: slow", "cube done"]),
        ({"start": at(3).astimezone(PLUS_2), "end": at(3)}, ["cube done"]),
        ({"text": ["done"]}, ["cube done", "square done"]),
        ({"text": ["slow", "cube"]}, ["starting cube", "warning: slow", "cube done"]),
        ({"text": ["Done"]}, []),
        ({"text": ["square"], "run_ids": ["trn-1"], "end": at(3)}, ["starting square"]),
        ({"limit": 1, "text": ["done"]}, ["cube done"]),
        ({"limit": 0}, []),
        ({"limit": 0, "text": ["done"]}, []),
    ],
)
def test_log_filters(store: Store, logged: list[LogRecord], filters: Any, expected: Any) -> None:
    assert messages(store.logs(**filters)) == expected


def test_logs_after_id(store: Store, logged: list[LogRecord]) -> None:
    assert store.logs(after_id=logged[2].id) == logged[3:]
    assert store.logs(after_id=logged[-1].id) == []
    assert store.logs(after_id=logged[0].id, run_ids=["trn-1"], limit=1) == [logged[2]]


def test_log_filters_find_matches_after_many_other_lines(store: Store) -> None:
    noise = [("trn-1", at(n), "stdout", f"line {n}") for n in range(200)]
    store.append_logs([*noise, ("trn-1", at(500), "stdout", "needle")])
    assert messages(store.logs(text=["needle"], limit=5)) == ["needle"]
    assert messages(store.logs(start=at(500), limit=1)) == ["needle"]
    assert messages(store.logs(end=at(199), start=at(198), limit=10)) == ["line 198", "line 199"]


def test_last_log_lines(store: Store, logged: list[LogRecord]) -> None:
    assert store.last_log_lines("trn-1") == ["starting square", "warning: slow", "square done"]
    assert store.last_log_lines("trn-1", count=2) == ["warning: slow", "square done"]
    assert store.last_log_lines("trn-2", count=1) == ["cube done"]
    assert store.last_log_lines("trn-9") == []


# --- persistence ------------------------------------------------------------------


def test_everything_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "nested" / "dev.db"  # directories are created
    new_id = counter_ids()
    with closing(Store(str(path))) as store:
        assert store.path == str(path)
        tasks = store.replace_tasks([registration("a"), registration("b")], T0, new_id)
        store.replace_tasks([registration("b")], T0, new_id)
        root = start_attempt(make_run("trn-root", key="k-1"), at(1))
        child = with_status(make_run("trn-child", parent=root), Status.FAILED)
        waiting = fail_attempt(
            start_attempt(make_run("trn-wait", policy=RetryPolicy(1, 1000, 2.0)), at(1)),
            "boom",
            at(2),
        )
        for run in (root, child, waiting):
            store.put_run(run)
        event_ids = [store.append_event("trn-child", "final"), store.append_event("trn-x", "x")]
        store.append_logs([("trn-root", at(1), "stdout", "hello")])
        logs = store.logs()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()
    with closing(Store(str(path))) as store:
        assert store.tasks() == [tasks[1]]
        assert store.task_by_id(tasks[0].id) == tasks[0]
        assert store.get_run("trn-root") == root
        assert store.get_run("trn-child") == child
        assert store.get_run("trn-wait") == waiting
        assert store.run_by_idempotency_key("k-1") == root
        assert store.runs_with_status([Status.RUNNING]) == [root]
        assert store.descendants("trn-root") == [child]
        assert [r.id for r in store.list_runs(limit=10) or []] == [
            "trn-wait",
            "trn-child",
            "trn-root",
        ]
        assert store.latest_events(["trn-child"]) == [(event_ids[0], "trn-child", "final")]
        assert store.logs() == logs
        # Event ids keep increasing across restarts (SSE Last-Event-ID resumes).
        assert store.append_event("trn-child", "again") > max(event_ids)
        # Known names keep their ids across restarts too.
        assert store.replace_tasks([registration("a")], at(9), new_id) == [tasks[0]]


# --- the dashboard's queries ------------------------------------------------------


def _created(run_id: str, seconds: float, task_id: str = "tsk-a", parent: Run | None = None) -> Run:
    return new_run(
        run_id=run_id,
        task_id=task_id,
        task_name=task_id.removeprefix("tsk-"),
        input_data=[],
        now=at(seconds),
        parent=parent,
    )


def test_search_by_id_prefix_and_creation_time(store: Store) -> None:
    root = _created("trn-abc1", 0)
    runs = [root, _created("trn-abd2", 10), _created("trn-xyz3", 20, parent=root)]
    for run in runs:
        store.put_run(run)

    def ids(**filters: Any) -> list[str]:
        page = store.list_runs(limit=10, **filters)
        assert page is not None
        return [run.id for run in page]

    assert ids(id_prefix="trn-ab") == ["trn-abd2", "trn-abc1"]
    assert ids(id_prefix="abc") == ["trn-abc1"]  # "trn-" may be left out
    assert ids(id_prefix="ABC") == []  # ids are lower case, and so is the match
    assert ids(id_prefix="zz") == []
    assert ids(created_after=at(10)) == ["trn-xyz3", "trn-abd2"]  # inclusive
    assert ids(created_before=at(10)) == ["trn-abc1"]  # exclusive
    # Bounds in another time zone mean the same instant.
    east = _dt.timezone(_dt.timedelta(hours=3))
    assert ids(created_after=at(10).astimezone(east), created_before=at(20)) == ["trn-abd2"]
    assert ids(roots_only=True) == ["trn-abd2", "trn-abc1"]
    assert ids(id_prefix="trn-", roots_only=True, created_after=at(5)) == ["trn-abd2"]
    for bad in ("a*", "a?", "[a]", "a b", "é", "x" * 65):
        with pytest.raises(ValueError, match="not an id prefix"):
            store.list_runs(limit=10, id_prefix=bad)


def test_run_tree_reruns_and_status_counts(store: Store) -> None:
    root = start_attempt(_created("trn-root", 0), at(1))
    children = [_created(f"trn-c{i}", 2 + i, parent=root) for i in range(4)]
    other = _created("trn-other", 9)
    for run in [root, *children, other]:
        store.put_run(run)
    root_id, tree, truncated = store.run_tree("trn-c2", limit=10)
    assert root_id == "trn-root"
    assert [run.id for run, _ in tree] == ["trn-root", "trn-c0", "trn-c1", "trn-c2", "trn-c3"]
    assert not truncated
    _, first_three, truncated = store.run_tree("trn-root", limit=3)
    assert [run.id for run, _ in first_three] == ["trn-root", "trn-c0", "trn-c1"]
    assert truncated
    with pytest.raises(KeyError):
        store.run_tree("trn-nope", limit=10)

    store.set_rerun_of("trn-other", "trn-root")
    assert store.rerun_of("trn-other") == "trn-root"
    assert store.rerun_of("trn-root") is None
    assert store.rerun_of("trn-nope") is None
    assert store.reruns("trn-root") == ["trn-other"]
    ((_, origin),) = [(run, origin) for run, origin in store.run_tree("trn-other", 5)[1]]
    assert origin == "trn-root"
    # put_run (every transition) keeps the link.
    store.put_run(start_attempt(other, at(10)))
    assert store.rerun_of("trn-other") == "trn-root"
    assert store.count_by_status() == {"running": 2, "pending": 4}


def test_attempt_durations_are_nearest_rank_percentiles(store: Store) -> None:
    # Task a: 20 attempts of 1..20 ms; task b: one failed attempt and one retry.
    for index in range(20):
        run = start_attempt(_created(f"trn-a{index}", 0), at(0))
        store.put_run(complete(run, [], at((index + 1) / 1000)))
    flaky = make_run("trn-b", task_id="tsk-b", policy=RetryPolicy(1, 0, 1.0))
    flaky = fail_attempt(start_attempt(flaky, at(0)), "boom", at(0.5))
    store.put_run(flaky)
    flaky = start_attempt(flaky, at(1))
    store.put_run(flaky)  # running: not counted yet
    assert store.attempt_durations() == [("tsk-a", 20, 10.0, 19.0), ("tsk-b", 1, 500.0, 500.0)]
    store.put_run(complete(flaky, [], at(1.25)))
    assert store.attempt_durations()[1] == ("tsk-b", 2, 250.0, 500.0)
    # A canceled attempt says nothing about how long the task takes.
    store.put_run(cancel(start_attempt(_created("trn-c", 0, task_id="tsk-c"), at(0)), at(9)))
    assert [row[0] for row in store.attempt_durations()] == ["tsk-a", "tsk-b"]


def test_an_older_database_is_brought_up_to_date(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    finished = complete(start_attempt(make_run("trn-old"), at(1)), [1], at(3))
    with closing(sqlite3.connect(path)) as db:
        # The schema before the dashboard's search: no created_at, rerun_of or attempts.
        db.executescript(
            """
            CREATE TABLE runs (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                task_id TEXT NOT NULL, root_id TEXT NOT NULL, parent_id TEXT NOT NULL,
                status TEXT NOT NULL, idempotency_key TEXT UNIQUE, doc TEXT NOT NULL
            );
            """
        )
        db.execute(
            "INSERT INTO runs (id, task_id, root_id, parent_id, status, doc)"
            " VALUES ('trn-old', 'tsk-a', 'trn-old', '', 'completed', ?)",
            (json.dumps(run_to_document(finished)),),
        )
        db.commit()
    with closing(Store(path)) as store:
        assert store.get_run("trn-old") == finished
        page = store.list_runs(limit=5, created_after=at(-1), id_prefix="old")
        assert page is not None
        assert [run.id for run in page] == ["trn-old"]
        assert store.attempt_durations() == [("tsk-a", 1, 2000.0, 2000.0)]
        store.set_rerun_of("trn-old", "trn-old")
    with closing(Store(path)) as store:  # opened again: nothing is migrated twice
        assert store.attempt_durations() == [("tsk-a", 1, 2000.0, 2000.0)]
        assert store.rerun_of("trn-old") == "trn-old"
