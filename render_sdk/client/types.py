"""The client's value types (``render_sdk.client.types``), defined in ``render_core.models``.

Also the official SDKs' type aliases: ``TaskSlug`` (``"workflow-slug/task-name"``),
``TaskData`` (a run's input: a list of positional or a dict of named arguments) and
the parameter types of ``ListTaskRunsParams``.
"""

from typing import Any

from render_core import models
from render_core.models import *  # noqa: F403

TaskSlug = str
TaskData = list[Any] | dict[str, Any]
LimitParam = int | None
CursorParam = str | None
OwnerIDParam = list[str] | None

__all__ = ["CursorParam", "LimitParam", "OwnerIDParam", "TaskData", "TaskSlug"]
__all__ += models.__all__
