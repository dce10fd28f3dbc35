"""Client-side types at the path the older reference documents (``render_sdk.client``)."""

from render_sdk.client.types import (
    ListTaskRunsParams,
    ListTasksParams,
    Task,
    TaskAttempt,
    TaskAttemptDetails,
    TaskRun,
    TaskRunDetails,
    TaskRunStatus,
)

__all__ = [
    "ListTaskRunsParams",
    "ListTasksParams",
    "Task",
    "TaskAttempt",
    "TaskAttemptDetails",
    "TaskRun",
    "TaskRunDetails",
    "TaskRunStatus",
]
