"""``render.workflows``: the same task-side objects as :mod:`render_sdk.workflows`."""

from render_sdk.workflows import *  # noqa: F403
from render_sdk.workflows import __all__ as __all__  # noqa: PLC0414 (re-exported)
