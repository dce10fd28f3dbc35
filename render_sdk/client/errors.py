"""The SDK's exceptions at their documented path (``render_sdk.client.errors``):
every name of ``render_core.errors``, the very same objects."""

from render_core.errors import *  # noqa: F403
from render_core.errors import __all__ as __all__  # noqa: PLC0414 (re-exported)
