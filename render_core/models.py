"""Plain values for every REST object of the Render Workflows API.

These classes know nothing of the wire: no camelCase, no ``to_dict``. The JSON
dialects live in :mod:`render_core.codec`. Attribute names follow the documented
SDK (``input_`` with a trailing underscore, ``results``, ``attempts``...).

Readers are tolerant: an unknown status becomes a
:class:`TaskRunStatus` pseudo-member instead of an error, a key we do not know is
kept in ``extra`` (not compared, not printed, never written back), and a missing
optional key takes its documented default.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Generator, Iterable, Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "TERMINAL_STATUSES",
    "Error",
    "ListTaskRunsParams",
    "ListTasksParams",
    "Task",
    "TaskAttempt",
    "TaskAttemptDetails",
    "TaskRun",
    "TaskRunDetails",
    "TaskRunStatus",
    "TaskRunWithCursor",
    "TaskWithCursor",
]

JSONValue = Any
"""Any value ``json.loads`` can produce."""


class TaskRunStatus(str, enum.Enum):
    """The status of a task run or attempt.

    ``completed`` is the success value servers send today; ``succeeded`` is its
    announced successor and is treated the same way. A value this SDK does not
    know parses to a pseudo-member (``TaskRunStatus("later")``) that compares
    equal to its string and is neither terminal nor successful.
    """

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    PAUSED = "paused"

    @classmethod
    def _missing_(cls, value: object) -> TaskRunStatus | None:
        if not isinstance(value, str):
            return None
        # A pseudo-member, not registered on the class: tolerant of statuses
        # the server adds later, without letting them pass as known ones.
        member = str.__new__(cls, value)
        member._name_ = value.upper()
        member._value_ = value
        return member

    def __str__(self) -> str:
        return str(self.value)

    @property
    def is_known(self) -> bool:
        """True for the seven documented statuses."""
        # By identity, not by name: the pseudo-member for "Completed" is named
        # COMPLETED too, yet it is not the documented member.
        return type(self).__members__.get(self._name_) is self

    @property
    def is_terminal(self) -> bool:
        """The run will not change any more (completed, succeeded, failed, canceled)."""
        return self in TERMINAL_STATUSES

    @property
    def is_success(self) -> bool:
        return self in _SUCCESS_STATUSES


TERMINAL_STATUSES: frozenset[TaskRunStatus] = frozenset(
    {
        TaskRunStatus.COMPLETED,
        TaskRunStatus.SUCCEEDED,
        TaskRunStatus.FAILED,
        TaskRunStatus.CANCELED,
    }
)
_SUCCESS_STATUSES = frozenset({TaskRunStatus.COMPLETED, TaskRunStatus.SUCCEEDED})


def _status(value: TaskRunStatus | str) -> TaskRunStatus:
    return value if isinstance(value, TaskRunStatus) else TaskRunStatus(value)


def _extra_field() -> Any:
    return attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class TaskAttempt:
    """One execution attempt of a run, as listed in ``TaskRun.attempts``."""

    status: TaskRunStatus = attrs.field(converter=_status)
    started_at: _dt.datetime | None = None
    attempt: int | None = None
    """0-indexed attempt number (required by 1.x clients, absent from 0.6.1 servers)."""
    enqueued_at: _dt.datetime | None = None
    completed_at: _dt.datetime | None = None
    task_run_id: str | None = None
    extra: Mapping[str, JSONValue] = _extra_field()


@attrs.frozen(kw_only=True)
class TaskAttemptDetails(TaskAttempt):
    """One execution attempt with its outcome, as listed in ``TaskRunDetails.attempts``:
    the fields of :class:`TaskAttempt`, and ``error`` and ``results``."""

    error: str | None = None
    results: list[JSONValue] | None = None


@attrs.frozen(kw_only=True)
class TaskRun:
    """The summary of a task run (``POST /v1/task-runs``, list items).

    ``cursor`` is set on runs returned by ``list_task_runs``: pass it as
    ``ListTaskRunsParams(cursor=...)`` to read the page after this run.
    """

    id: str
    task_id: str = ""
    status: TaskRunStatus = attrs.field(converter=_status)
    parent_task_run_id: str = ""
    """The parent run's id, or ``""`` for a root run."""
    root_task_run_id: str = ""
    retries: int = 0
    attempts: list[TaskAttempt] = attrs.field(factory=list)
    started_at: _dt.datetime | None = None
    completed_at: _dt.datetime | None = None
    parent_task_attempt: int | None = None
    cursor: str | None = attrs.field(default=None, eq=False)
    extra: Mapping[str, JSONValue] = _extra_field()

    @property
    def task_run(self) -> TaskRun:
        """This run itself: keeps code written for the official wrapper items working."""
        return self

    @property
    def is_root(self) -> bool:
        return not self.parent_task_run_id or self.parent_task_run_id == self.id


@attrs.frozen(kw_only=True)
class TaskRunDetails:
    """The full state of a task run, including input, results and error.

    ``results`` is ``[]`` unless the run completed; for runs produced by this SDK's
    workers it is ``[return_value]``.
    """

    id: str
    task_id: str = ""
    status: TaskRunStatus = attrs.field(converter=_status)
    parent_task_run_id: str = ""
    root_task_run_id: str = ""
    retries: int = 0
    attempts: list[TaskAttemptDetails] = attrs.field(factory=list)
    started_at: _dt.datetime | None = None
    completed_at: _dt.datetime | None = None
    parent_task_attempt: int | None = None
    results: list[JSONValue] = attrs.field(factory=list)
    input_: list[JSONValue] | dict[str, JSONValue] = attrs.field(factory=list)
    error: str | None = None
    extra: Mapping[str, JSONValue] = _extra_field()

    @property
    def is_root(self) -> bool:
        return not self.parent_task_run_id or self.parent_task_run_id == self.id

    def __await__(self) -> Generator[Any, None, TaskRunDetails]:
        """``await details`` is ``details``: the older reference awaits finished runs.

        Code written for the older async client (``finished = await started`` after
        a ``run_task`` that already waited) keeps working unchanged.
        """
        yield from ()
        return self

    @property
    def result(self) -> JSONValue:
        """The task's return value: ``results[0]`` when there is exactly one result.

        Raises ``ValueError`` when the run has not completed or the results array
        does not hold exactly one value (a worker that did not wrap its result).
        """
        if not self.status.is_success:
            raise ValueError(f"task run {self.id} has no result: its status is {self.status}")
        if len(self.results) != 1:
            raise ValueError(
                f"task run {self.id} has {len(self.results)} results; read .results instead"
            )
        return self.results[0]


@attrs.frozen(kw_only=True)
class Task:
    """A registered task (``GET /v1/tasks``)."""

    id: str
    name: str = ""
    created_at: _dt.datetime | None = None
    workflow_id: str | None = None
    workflow_version_id: str | None = None
    cursor: str | None = attrs.field(default=None, eq=False)
    extra: Mapping[str, JSONValue] = _extra_field()


@attrs.frozen(kw_only=True)
class TaskRunWithCursor:
    """A list item of ``GET /v1/task-runs``."""

    task_run: TaskRun
    cursor: str = ""
    extra: Mapping[str, JSONValue] = _extra_field()


@attrs.frozen(kw_only=True)
class TaskWithCursor:
    """A list item of ``GET /v1/tasks``."""

    task: Task
    cursor: str = ""
    extra: Mapping[str, JSONValue] = _extra_field()


@attrs.frozen(kw_only=True)
class Error:
    """The JSON body of an API error (``{"id": ..., "message": ...}``)."""

    id: str | None = None
    message: str | None = None
    code: str | None = None
    extra: Mapping[str, JSONValue] = _extra_field()


# ---------------------------------------------------------------------------
# Query parameters


def _str_list(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """Accept one non-empty string or an iterable of them; keep None as "not set"."""
    if value is None:
        return None
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise TypeError(f"expected non-empty strings, got {item!r}")
    return items


def _validate_limit(_inst: object, _attr: object, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"limit must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"limit must be at least 1, got {value}")


def _validate_cursor(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"cursor must be a str, got {type(value).__name__}")


@attrs.frozen(kw_only=True, init=False)
class ListTaskRunsParams:
    """Filters and paging for ``list_task_runs``.

    ``owner_id`` (newer docs) and ``owners`` (older docs) are the same filter;
    pass either. Every list filter accepts one string or a list of strings.
    """

    limit: int | None = attrs.field(default=None, validator=_validate_limit)
    cursor: str | None = attrs.field(default=None, validator=_validate_cursor)
    owner_id: tuple[str, ...] | None = None
    task_slug: tuple[str, ...] | None = None
    root_task_run_id: tuple[str, ...] | None = None
    workflow_id: tuple[str, ...] | None = None
    workflow_version_id: tuple[str, ...] | None = None

    def __init__(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        owner_id: str | Sequence[str] | None = None,
        owners: str | Sequence[str] | None = None,
        task_slug: str | Sequence[str] | None = None,
        root_task_run_id: str | Sequence[str] | None = None,
        workflow_id: str | Sequence[str] | None = None,
        workflow_version_id: str | Sequence[str] | None = None,
    ) -> None:
        # Each iterable is read once: a generator cannot be read twice.
        owner_ids, owners_ = _str_list(owner_id), _str_list(owners)
        if owner_ids is not None and owners_ is not None and owner_ids != owners_:
            raise ValueError("owner_id and owners are the same filter; pass only one of them")
        self.__attrs_init__(
            limit=limit,
            cursor=cursor,
            owner_id=owner_ids if owner_ids is not None else owners_,
            task_slug=_str_list(task_slug),
            root_task_run_id=_str_list(root_task_run_id),
            workflow_id=_str_list(workflow_id),
            workflow_version_id=_str_list(workflow_version_id),
        )

    @property
    def owners(self) -> tuple[str, ...] | None:
        """Alias of ``owner_id`` (the older reference's name)."""
        return self.owner_id

    def with_cursor(self, cursor: str | None) -> ListTaskRunsParams:
        """The same filters, starting after ``cursor``."""
        return attrs.evolve(self, cursor=cursor)


@attrs.frozen(kw_only=True)
class ListTasksParams:
    """Filters and paging for ``list_tasks``; every list filter accepts one string or
    a list of strings."""

    limit: int | None = attrs.field(default=None, validator=_validate_limit)
    cursor: str | None = attrs.field(default=None, validator=_validate_cursor)
    owner_id: tuple[str, ...] | None = attrs.field(default=None, converter=_str_list)
    task_slug: tuple[str, ...] | None = attrs.field(default=None, converter=_str_list)
    workflow_id: tuple[str, ...] | None = attrs.field(default=None, converter=_str_list)
    workflow_version_id: tuple[str, ...] | None = attrs.field(default=None, converter=_str_list)

    def with_cursor(self, cursor: str | None) -> ListTasksParams:
        return attrs.evolve(self, cursor=cursor)
