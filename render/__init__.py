"""This SDK under the official SDK's 1.x import name: ``import render``.

Every name is the very object ``render_sdk`` exports (``render.Workflows is
render_sdk.Workflows``), so code written for either import name runs unchanged and
both can be mixed in one program. Names load on first use, as in ``render_sdk``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from render_sdk import __all__ as __all__
from render_sdk import __version__ as __version__
from render_sdk._lazy import lazy_getattr

if TYPE_CHECKING:
    from render_sdk import (
        AwaitableTaskRun as AwaitableTaskRun,
    )
    from render_sdk import (
        Options as Options,
    )
    from render_sdk import (
        Render as Render,
    )
    from render_sdk import (
        RenderAsync as RenderAsync,
    )
    from render_sdk import (
        Retry as Retry,
    )
    from render_sdk import (
        TaskContext as TaskContext,
    )
    from render_sdk import (
        TaskInstance as TaskInstance,
    )
    from render_sdk import (
        TaskRunMetadata as TaskRunMetadata,
    )
    from render_sdk import (
        Workflows as Workflows,
    )
    from render_sdk import (
        start as start,
    )
    from render_sdk import (
        task as task,
    )


__getattr__ = lazy_getattr(globals(), {name: ("render_sdk", name) for name in __all__})


def __dir__() -> list[str]:
    return sorted(__all__)
