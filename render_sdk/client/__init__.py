"""The client's names at ``render_sdk.client`` (the path the official SDKs use).

``WorkflowsService`` is the asyncio service (``RenderAsync().workflows``) and
``SyncWorkflowsService`` the blocking one (``Render().workflows``), as in the official
SDKs; both are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from render_sdk.client.types import (
    CursorParam,
    LimitParam,
    ListTaskRunsParams,
    ListTasksParams,
    OwnerIDParam,
    Task,
    TaskAttempt,
    TaskAttemptDetails,
    TaskData,
    TaskRun,
    TaskRunDetails,
    TaskRunStatus,
    TaskSlug,
)

if TYPE_CHECKING:
    from render_transports.clients import AsyncWorkflowsService as WorkflowsService
    from render_transports.clients import SyncWorkflowsService

__all__ = [
    "CursorParam",
    "LimitParam",
    "ListTaskRunsParams",
    "ListTasksParams",
    "OwnerIDParam",
    "SyncWorkflowsService",
    "Task",
    "TaskAttempt",
    "TaskAttemptDetails",
    "TaskData",
    "TaskRun",
    "TaskRunDetails",
    "TaskRunStatus",
    "TaskSlug",
    "WorkflowsService",
]

_SERVICES = {
    "WorkflowsService": "AsyncWorkflowsService",
    "SyncWorkflowsService": "SyncWorkflowsService",
}


def __getattr__(name: str) -> Any:
    target = _SERVICES.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from render_transports import clients

    value = getattr(clients, target)
    globals()[name] = value
    return value
