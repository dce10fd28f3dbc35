"""The client's value types (``render_sdk.client.types``), defined in ``render_core.models``."""

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
