"""Task definitions at ``render_sdk.workflows`` (also importable from ``render_sdk``)."""

from render_core.tasks import Retry
from render_transports.worker import TaskCallable, TaskContext, TaskInstance, Workflows

__all__ = ["Retry", "TaskCallable", "TaskContext", "TaskInstance", "Workflows"]
