"""``render.client.types``: the same value types as :mod:`render_sdk.client.types`."""

from render_sdk.client.types import *  # noqa: F403
from render_sdk.client.types import __all__ as __all__  # noqa: PLC0414 (re-exported)
