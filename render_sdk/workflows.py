"""Task definitions at ``render_sdk.workflows`` (also importable from ``render_sdk``):
every name of ``render_sdk.worker.runtime``, the very same objects."""

from render_sdk.worker.runtime import *  # noqa: F403
from render_sdk.worker.runtime import __all__ as __all__  # noqa: PLC0414 (re-exported)
