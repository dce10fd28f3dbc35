"""Tests of the plain REST values (render_core.models), wire-free.

What is pinned here: the seven documented statuses and the tolerance for new ones,
keyword-only frozen models whose client-side extras (``cursor``,
``extra``) never take part in equality, ``TaskRunDetails.result``, and the list
parameters with both documented spellings of the owner filter.
The JSON side of the same classes is tested in ``test_codec.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render_core.models import (
    TERMINAL_STATUSES,
    Error,
    ListTaskRunsParams,
    ListTasksParams,
    Task,
    TaskAttempt,
    TaskAttemptDetails,
    TaskRun,
    TaskRunDetails,
    TaskRunStatus,
    TaskRunWithCursor,
    TaskWithCursor,
)

PROPERTY_SETTINGS = settings(max_examples=50, deadline=None)

DOCUMENTED = ["pending", "running", "completed", "succeeded", "failed", "canceled", "paused"]
T0 = dt.datetime(2026, 8, 20, 12, 0, tzinfo=dt.timezone.utc)


# ---------------------------------------------------------------------------
# TaskRunStatus


def test_status_has_exactly_the_seven_documented_values() -> None:
    assert [status.value for status in TaskRunStatus] == DOCUMENTED
    assert len(TaskRunStatus.__members__) == 7


@pytest.mark.parametrize("value", DOCUMENTED)
def test_documented_status_is_the_member_and_its_string(value: str) -> None:
    status = TaskRunStatus(value)
    assert status is TaskRunStatus[value.upper()]
    assert status == value
    assert str(status) == value
    assert f"{status}" == value
    assert status.is_known


@pytest.mark.parametrize(
    ("value", "terminal", "success"),
    [
        ("pending", False, False),
        ("running", False, False),
        ("paused", False, False),
        ("completed", True, True),
        ("succeeded", True, True),
        ("failed", True, False),
        ("canceled", True, False),
    ],
)
def test_status_terminal_and_success_sets(value: str, terminal: bool, success: bool) -> None:
    status = TaskRunStatus(value)
    assert status.is_terminal is terminal
    assert status.is_success is success
    assert (status in TERMINAL_STATUSES) is terminal


def test_terminal_set_is_the_documented_four() -> None:
    assert {"completed", "succeeded", "failed", "canceled"} == TERMINAL_STATUSES
    # Members hash like their strings, so plain strings find them too.
    assert "failed" in TERMINAL_STATUSES
    assert "running" not in TERMINAL_STATUSES


@pytest.mark.parametrize("value", ["paused_later", "", "queued", "Completed", "FAILED", " failed"])
def test_unknown_status_is_a_tolerated_pseudo_member(value: str) -> None:
    status = TaskRunStatus(value)
    assert isinstance(status, TaskRunStatus)
    assert status == value
    assert hash(status) == hash(value)
    assert str(status) == value
    assert status.value == value
    assert not status.is_known
    assert not status.is_terminal
    assert not status.is_success
    # Not registered: the enum still has its seven members and the next lookup
    # builds a fresh (equal) pseudo-member.
    assert len(TaskRunStatus.__members__) == 7
    assert value not in [member.value for member in TaskRunStatus]
    assert TaskRunStatus(value) == status


def test_case_variant_of_a_known_status_is_not_that_status() -> None:
    # The pseudo-member for "Completed" is named COMPLETED; it must still not
    # count as the documented member (nor as a success).
    status = TaskRunStatus("Completed")
    assert status != TaskRunStatus.COMPLETED
    assert not status.is_known
    assert not status.is_success


@pytest.mark.parametrize("value", [5, None, 1.5, b"running", ["running"], True])
def test_non_string_status_is_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="is not a valid TaskRunStatus"):
        TaskRunStatus(value)


@PROPERTY_SETTINGS
@given(st.text())
def test_any_string_is_a_status_equal_to_itself(value: str) -> None:
    status = TaskRunStatus(value)
    assert status == value
    assert str(status) == value
    assert status.is_known is (value in DOCUMENTED)
    assert status.is_terminal is (value in {"completed", "succeeded", "failed", "canceled"})
    assert len(TaskRunStatus.__members__) == 7


# ---------------------------------------------------------------------------
# The models


def attempt() -> TaskAttempt:
    return TaskAttempt(status="running", started_at=T0, attempt=0)


def attempt_details() -> TaskAttemptDetails:
    return TaskAttemptDetails(
        status="failed", started_at=T0, attempt=0, completed_at=T0, error="boom"
    )


def task_run(**changes: Any) -> TaskRun:
    values: dict[str, Any] = {
        "id": "trn-1",
        "task_id": "tsk-1",
        "status": "running",
        "root_task_run_id": "trn-1",
        "attempts": [attempt()],
        "started_at": T0,
    }
    return TaskRun(**{**values, **changes})


def task_run_details(**changes: Any) -> TaskRunDetails:
    values: dict[str, Any] = {
        "id": "trn-1",
        "task_id": "tsk-1",
        "status": "completed",
        "root_task_run_id": "trn-1",
        "attempts": [attempt_details()],
        "results": [5],
        "input_": [2, 3],
    }
    return TaskRunDetails(**{**values, **changes})


def task(**changes: Any) -> Task:
    return Task(**{"id": "tsk-1", "name": "wf/add", "created_at": T0, **changes})


# Every model with a factory for a typical instance.
FACTORIES: dict[str, Callable[..., Any]] = {
    "TaskAttempt": lambda **kw: TaskAttempt(**{"status": "running", "started_at": T0, **kw}),
    "TaskAttemptDetails": lambda **kw: TaskAttemptDetails(
        **{"status": "failed", "started_at": T0, "error": "x", **kw}
    ),
    "TaskRun": task_run,
    "TaskRunDetails": task_run_details,
    "Task": task,
    "TaskRunWithCursor": lambda **kw: TaskRunWithCursor(
        **{"task_run": task_run(), "cursor": "c1", **kw}
    ),
    "TaskWithCursor": lambda **kw: TaskWithCursor(**{"task": task(), "cursor": "c1", **kw}),
    "Error": lambda **kw: Error(**{"id": "e", "message": "nope", **kw}),
}


@pytest.mark.parametrize("name", FACTORIES)
def test_models_are_frozen(name: str) -> None:
    value = FACTORIES[name]()
    first = attrs.fields(type(value))[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(value, first, getattr(value, first))


@pytest.mark.parametrize("name", FACTORIES)
def test_models_are_keyword_only(name: str) -> None:
    cls = type(FACTORIES[name]())
    with pytest.raises(TypeError):
        cls("positional")


@pytest.mark.parametrize("name", FACTORIES)
def test_extra_is_neither_compared_nor_printed(name: str) -> None:
    plain = FACTORIES[name]()
    annotated = FACTORIES[name](extra={"futureKey": "secret-value"})
    assert annotated.extra == {"futureKey": "secret-value"}
    assert plain.extra == {}
    assert plain == annotated
    assert "secret-value" not in repr(annotated)
    assert "extra" not in repr(annotated)


@pytest.mark.parametrize(
    "cls", [TaskAttempt, TaskAttemptDetails, TaskRun, TaskRunDetails], ids=lambda c: c.__name__
)
def test_str_status_is_converted(cls: type) -> None:
    kwargs: dict[str, Any] = {"status": "failed"}
    if cls in (TaskRun, TaskRunDetails):
        kwargs["id"] = "trn-1"
    value = cls(**kwargs)
    assert value.status is TaskRunStatus.FAILED
    unknown = cls(**{**kwargs, "status": "later"})
    assert isinstance(unknown.status, TaskRunStatus)
    assert unknown.status == "later"
    with pytest.raises(ValueError, match="TaskRunStatus"):
        cls(**{**kwargs, "status": 3})


def test_task_run_defaults_and_keyword_construction() -> None:
    run = TaskRun(id="trn-1", status=TaskRunStatus.PENDING)
    assert run.task_id == ""
    assert run.parent_task_run_id == ""
    assert run.root_task_run_id == ""
    assert run.retries == 0
    assert run.attempts == []
    assert run.started_at is None
    assert run.completed_at is None
    assert run.parent_task_attempt is None
    assert run.cursor is None
    assert run.extra == {}
    with pytest.raises(TypeError):
        TaskRun(id="trn-1")  # type: ignore[call-arg]


def test_task_run_details_defaults() -> None:
    details = TaskRunDetails(id="trn-1", status="running")
    assert details.results == []
    assert details.input_ == []
    assert details.error is None
    assert details.attempts == []


def test_task_run_is_its_own_task_run() -> None:
    # Code written for the official wrapper items (item.task_run.id) keeps working.
    run = task_run(cursor="cfQ74cE2sDI=")
    assert run.task_run is run
    assert run.task_run.task_run.id == "trn-1"


def test_cursor_is_not_part_of_equality() -> None:
    assert task_run(cursor="a") == task_run(cursor="b") == task_run()
    assert task(cursor="a") == task()
    # On the wrapper items the cursor is real data.
    assert TaskRunWithCursor(task_run=task_run(), cursor="a") != TaskRunWithCursor(
        task_run=task_run(), cursor="b"
    )
    assert TaskWithCursor(task=task(), cursor="a") != TaskWithCursor(task=task(), cursor="b")


def test_equality_still_sees_real_fields() -> None:
    assert task_run() != task_run(retries=1)
    assert task_run_details() != task_run_details(results=[6])
    assert task_run_details() != task_run_details(input_={"a": 2})
    assert Error(message="a") != Error(message="a", code="c")


@pytest.mark.parametrize(
    ("parent", "root"),
    [("", True), ("trn-1", True), ("trn-0", False)],
)
def test_is_root(parent: str, root: bool) -> None:
    assert task_run(parent_task_run_id=parent).is_root is root
    assert task_run_details(parent_task_run_id=parent).is_root is root


@pytest.mark.parametrize("status", ["completed", "succeeded"])
def test_result_is_the_single_result_of_a_successful_run(status: str) -> None:
    assert task_run_details(status=status, results=[5]).result == 5
    assert task_run_details(status=status, results=[None]).result is None
    assert task_run_details(status=status, results=[[1, 2]]).result == [1, 2]


@pytest.mark.parametrize("status", ["failed", "canceled", "running", "pending", "paused", "later"])
def test_result_of_an_unsuccessful_run_is_a_value_error(status: str) -> None:
    details = task_run_details(status=status, results=[5])
    with pytest.raises(ValueError, match=f"has no result: its status is {status}"):
        _ = details.result


@pytest.mark.parametrize("results", [[], [1, 2]])
def test_result_needs_exactly_one_value(results: list[Any]) -> None:
    details = task_run_details(results=results)
    with pytest.raises(ValueError, match=f"has {len(results)} results"):
        _ = details.result


def test_attempt_models_default_to_none() -> None:
    bare = TaskAttempt(status="pending")
    assert (bare.started_at, bare.attempt, bare.enqueued_at) == (None, None, None)
    assert (bare.completed_at, bare.task_run_id) == (None, None)
    details = TaskAttemptDetails(status="pending")
    assert (details.error, details.results) == (None, None)


def test_error_model_defaults() -> None:
    assert Error() == Error(id=None, message=None, code=None)
    assert Error(code="too_many_resources").code == "too_many_resources"


# ---------------------------------------------------------------------------
# ListTaskRunsParams / ListTasksParams


def test_documented_samples_construct() -> None:
    # seed-000 (owner_id, from render_sdk.client.types) and seed-001 (owners).
    newer = ListTaskRunsParams(
        limit=10, cursor="cfQ74cE2sDI=", owner_id=["tea-d3jm7ai4d50c73fale60"]
    )
    older = ListTaskRunsParams(limit=10, cursor="cfQ74cE2sDI=", owners=["tea-d3jm7ai4d50c73fale60"])
    assert newer == older
    assert newer.limit == 10
    assert newer.cursor == "cfQ74cE2sDI="
    assert newer.owner_id == ("tea-d3jm7ai4d50c73fale60",)
    assert older.owners == ("tea-d3jm7ai4d50c73fale60",)


def test_both_import_paths_give_the_same_classes() -> None:
    from render_sdk.client import ListTaskRunsParams as FromClient
    from render_sdk.client import ListTasksParams as TasksFromClient
    from render_sdk.client.types import ListTaskRunsParams as FromTypes
    from render_sdk.client.types import TaskRunDetails as DetailsFromTypes

    assert FromClient is FromTypes is ListTaskRunsParams
    assert TasksFromClient is ListTasksParams
    assert DetailsFromTypes is TaskRunDetails


def test_list_task_runs_params_defaults() -> None:
    params = ListTaskRunsParams()
    assert attrs.asdict(params) == {
        "limit": None,
        "cursor": None,
        "owner_id": None,
        "task_slug": None,
        "root_task_run_id": None,
        "workflow_id": None,
        "workflow_version_id": None,
    }
    assert params.owners is None


def test_owner_aliases() -> None:
    assert ListTaskRunsParams(owners="tea-1").owner_id == ("tea-1",)
    assert ListTaskRunsParams(owner_id="tea-1").owners == ("tea-1",)
    # Both given and equal (in any spelling) is fine.
    both = ListTaskRunsParams(owner_id="tea-1", owners=["tea-1"])
    assert both.owner_id == ("tea-1",)
    with pytest.raises(ValueError, match="same filter"):
        ListTaskRunsParams(owner_id="tea-1", owners="tea-2")
    with pytest.raises(ValueError, match="same filter"):
        ListTaskRunsParams(owner_id=["tea-1", "tea-2"], owners=["tea-2", "tea-1"])


def test_owner_aliases_read_generators_once() -> None:
    both = ListTaskRunsParams(owner_id=(o for o in ["a", "b"]), owners=iter(["a", "b"]))
    assert both.owner_id == ("a", "b")
    single = ListTaskRunsParams(owners=(o for o in ["a"]))
    assert single.owner_id == ("a",)


@pytest.mark.parametrize(
    "field", ["owner_id", "task_slug", "root_task_run_id", "workflow_id", "workflow_version_id"]
)
def test_list_filters_accept_a_string_or_an_iterable(field: str) -> None:
    assert getattr(ListTaskRunsParams(**{field: "x"}), field) == ("x",)
    assert getattr(ListTaskRunsParams(**{field: ["x", "y"]}), field) == ("x", "y")
    assert getattr(ListTaskRunsParams(**{field: ("x",)}), field) == ("x",)
    assert getattr(ListTaskRunsParams(**{field: []}), field) == ()
    with pytest.raises(TypeError, match="non-empty strings"):
        ListTaskRunsParams(**{field: ["x", 3]})
    with pytest.raises(TypeError, match="non-empty strings"):
        ListTaskRunsParams(**{field: [""]})
    with pytest.raises(TypeError, match="non-empty strings"):
        ListTaskRunsParams(**{field: ""})
    with pytest.raises(TypeError):
        ListTaskRunsParams(**{field: 5})


@pytest.mark.parametrize("cls", [ListTaskRunsParams, ListTasksParams], ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("limit", "error"),
    [(0, ValueError), (-1, ValueError), (True, TypeError), ("10", TypeError), (1.5, TypeError)],
)
def test_limit_validation(cls: type, limit: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="limit"):
        cls(limit=limit)


@pytest.mark.parametrize("cls", [ListTaskRunsParams, ListTasksParams], ids=lambda c: c.__name__)
def test_limit_and_cursor_accepted(cls: type) -> None:
    params = cls(limit=1, cursor="")
    assert (params.limit, params.cursor) == (1, "")
    assert cls(limit=100).limit == 100
    with pytest.raises(TypeError, match="cursor"):
        cls(cursor=5)
    with pytest.raises(TypeError, match="cursor"):
        cls(cursor=b"abc")


def test_list_task_runs_with_cursor_keeps_filters() -> None:
    params = ListTaskRunsParams(
        limit=5,
        owners="tea-1",
        task_slug=["wf/a", "wf/b"],
        root_task_run_id="trn-r",
        workflow_id="wfl-1",
        workflow_version_id="wfv-1",
    )
    page2 = params.with_cursor("cur-2")
    assert page2.cursor == "cur-2"
    assert attrs.evolve(page2, cursor=None) == params
    assert page2.owner_id == ("tea-1",)
    assert page2.task_slug == ("wf/a", "wf/b")
    assert page2.with_cursor(None) == params
    with pytest.raises(TypeError, match="cursor"):
        params.with_cursor(7)  # type: ignore[arg-type]


def test_list_tasks_params() -> None:
    params = ListTasksParams(
        limit=10, owner_id="tea-1", task_slug=["wf/a"], workflow_id="w", workflow_version_id="v"
    )
    assert params.owner_id == ("tea-1",)
    assert params.task_slug == ("wf/a",)
    assert params.workflow_id == ("w",)
    assert params.workflow_version_id == ("v",)
    page2 = params.with_cursor("c")
    assert page2.cursor == "c"
    assert page2.with_cursor(None) == params
    assert ListTasksParams().owner_id is None
    with pytest.raises(TypeError):
        ListTasksParams(owners="tea-1")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="non-empty strings"):
        ListTasksParams(task_slug=[None])  # type: ignore[list-item]


def test_params_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ListTaskRunsParams().limit = 5  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ListTasksParams().cursor = "c"  # type: ignore[misc]


@PROPERTY_SETTINGS
@given(
    limit=st.none() | st.integers(min_value=1, max_value=10_000),
    cursor=st.none() | st.text(),
    owners=st.none() | st.text(min_size=1) | st.lists(st.text(min_size=1), max_size=3),
    alias=st.sampled_from(["owner_id", "owners"]),
)
def test_params_construct_and_page_for_any_valid_input(
    limit: int | None, cursor: str | None, owners: str | list[str] | None, alias: str
) -> None:
    params = ListTaskRunsParams(limit=limit, cursor=cursor, **{alias: owners})
    expected = None if owners is None else (owners,) if isinstance(owners, str) else tuple(owners)
    assert params.owner_id == params.owners == expected
    assert params.with_cursor("next").with_cursor(cursor) == params
