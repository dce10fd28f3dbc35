"""The client's names at ``render_sdk.client`` (the path the official SDKs use).

``WorkflowsService`` is the asyncio service (``RenderAsync().workflows``) and
``SyncWorkflowsService`` the blocking one (``Render().workflows``), as in the official
SDKs; both are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from render_sdk._lazy import lazy_getattr
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
    from render_sdk.client.clients import AsyncWorkflowsService as WorkflowsService
    from render_sdk.client.clients import SyncWorkflowsService

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

__getattr__ = lazy_getattr(
    globals(),
    {
        "WorkflowsService": ("render_sdk.client.clients", "AsyncWorkflowsService"),
        "SyncWorkflowsService": ("render_sdk.client.clients", "SyncWorkflowsService"),
    },
)
