"""``render.client.errors``: the same exceptions as :mod:`render_sdk.client.errors`."""

from render_sdk.client.errors import *  # noqa: F403
from render_sdk.client.errors import __all__ as __all__  # noqa: PLC0414 (re-exported)
