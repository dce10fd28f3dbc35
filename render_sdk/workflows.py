"""Task definitions at ``render_sdk.workflows`` (also importable from ``render_sdk``):
every name of ``render_transports.worker``, the very same objects."""

from render_transports.worker import *  # noqa: F403
from render_transports.worker import __all__ as __all__  # noqa: PLC0414 (re-exported)
