"""The Render Workflows SDK for Python: the documented import surface.

``from render_sdk.client.errors import RenderError, ...`` and
``from render_sdk.client.types import TaskRunDetails, ListTaskRunsParams, ...`` are
the documented paths; the protocol lives in ``render_core``.
"""

from render_core import __version__

__all__ = ["__version__"]
