"""``render.client``: the same objects as :mod:`render_sdk.client`.

``WorkflowsService`` is the asyncio service and ``SyncWorkflowsService`` the
blocking one, as in the official SDK; both load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from render_sdk._lazy import lazy_getattr
from render_sdk.client import (
    CursorParam as CursorParam,
)
from render_sdk.client import (
    LimitParam as LimitParam,
)
from render_sdk.client import (
    ListTaskRunsParams as ListTaskRunsParams,
)
from render_sdk.client import (
    ListTasksParams as ListTasksParams,
)
from render_sdk.client import (
    OwnerIDParam as OwnerIDParam,
)
from render_sdk.client import (
    Task as Task,
)
from render_sdk.client import (
    TaskAttempt as TaskAttempt,
)
from render_sdk.client import (
    TaskAttemptDetails as TaskAttemptDetails,
)
from render_sdk.client import (
    TaskData as TaskData,
)
from render_sdk.client import (
    TaskRun as TaskRun,
)
from render_sdk.client import (
    TaskRunDetails as TaskRunDetails,
)
from render_sdk.client import (
    TaskRunStatus as TaskRunStatus,
)
from render_sdk.client import (
    TaskSlug as TaskSlug,
)
from render_sdk.client import __all__ as __all__

if TYPE_CHECKING:
    from render_sdk.client import SyncWorkflowsService as SyncWorkflowsService
    from render_sdk.client import WorkflowsService as WorkflowsService


__getattr__ = lazy_getattr(globals(), {name: ("render_sdk.client", name) for name in __all__})
