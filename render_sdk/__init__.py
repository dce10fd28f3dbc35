"""The Render Workflows SDK for Python.

``from render_sdk import Workflows, Retry`` defines tasks; ``from render_sdk import
Render, RenderAsync`` gives the sync and asyncio clients;
errors live in ``render_sdk.client.errors`` and value types in
``render_sdk.client.types``. Names are imported on first use, so ``import
render_sdk`` stays cheap and pulls in neither ``requests`` nor ``aiohttp``.

The same objects are importable as ``render`` (the official SDK's 1.x import name):
``render.Workflows is render_sdk.Workflows``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from render_core import __version__

if TYPE_CHECKING:
    from render_core.tasks import Options, Retry
    from render_transports.clients import AwaitableTaskRun, Render, RenderAsync
    from render_transports.worker import (
        TaskContext,
        TaskInstance,
        TaskRunMetadata,
        Workflows,
        start,
        task,
    )

__all__ = [
    "AwaitableTaskRun",
    "Options",
    "Render",
    "RenderAsync",
    "Retry",
    "TaskContext",
    "TaskInstance",
    "TaskRunMetadata",
    "Workflows",
    "__version__",
    # Deprecated by the official SDKs, kept for the code that uses them:
    # prefer @app.task and app.start().
    "start",
    "task",
]

_LAZY = {
    "Render": "render_transports.clients",
    "RenderAsync": "render_transports.clients",
    "AwaitableTaskRun": "render_transports.clients",
    "Options": "render_core.tasks",
    "Retry": "render_core.tasks",
    "Workflows": "render_transports.worker",
    "TaskContext": "render_transports.worker",
    "TaskInstance": "render_transports.worker",
    "TaskRunMetadata": "render_transports.worker",
    "start": "render_transports.worker",
    "task": "render_transports.worker",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'render_sdk' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
