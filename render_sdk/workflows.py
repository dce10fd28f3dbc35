"""Task definitions at ``render_sdk.workflows`` (also importable from ``render_sdk``)."""

from render_core.tasks import Options, Retry, TaskRegistry
from render_transports.worker import (
    TaskCallable,
    TaskContext,
    TaskDefinition,
    TaskInstance,
    TaskRunMetadata,
    Workflows,
    WorkflowTaskContext,
    start,
    task,
)

__all__ = [
    "Options",
    "Retry",
    "TaskCallable",
    "TaskContext",
    "TaskDefinition",
    "TaskInstance",
    "TaskRegistry",
    "TaskRunMetadata",
    "WorkflowTaskContext",
    "Workflows",
    "start",
    "task",
]
