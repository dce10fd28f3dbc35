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

from typing import TYPE_CHECKING

from render_core import __version__
from render_sdk._lazy import lazy_getattr

if TYPE_CHECKING:
    from render_core.tasks import Options, Retry
    from render_sdk.client.clients import AwaitableTaskRun, Render, RenderAsync
    from render_sdk.worker.runtime import (
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
    "Render": "render_sdk.client.clients",
    "RenderAsync": "render_sdk.client.clients",
    "AwaitableTaskRun": "render_sdk.client.clients",
    "Options": "render_core.tasks",
    "Retry": "render_core.tasks",
    "Workflows": "render_sdk.worker.runtime",
    "TaskContext": "render_sdk.worker.runtime",
    "TaskInstance": "render_sdk.worker.runtime",
    "TaskRunMetadata": "render_sdk.worker.runtime",
    "start": "render_sdk.worker.runtime",
    "task": "render_sdk.worker.runtime",
}


__getattr__ = lazy_getattr(globals(), {name: (module, name) for name, module in _LAZY.items()})


def __dir__() -> list[str]:
    return sorted(__all__)
